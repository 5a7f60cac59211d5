"""Conditional GET for the agents' skills API.

Agents poll the skill list on every run; answering 304 when nothing changed
saves the body and the ranking work. The ETag is computed from the published
set (cheap: one indexed query) before the view runs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CONDITIONAL_PATHS = ("/api/v1/skills", "/api/v1/skills.zip")


class SkillsETagMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method == "GET"
            and request.path in CONDITIONAL_PATHS
            and response.status_code == 200
            and not request.GET.get("task")
        ):
            etag = (
                response.get("ETag") or getattr(request, "skills_etag", "") or self._etag(request)
            )
            if etag:
                response["ETag"] = etag
                if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
                    not_modified = HttpResponse(status=304)
                    not_modified["ETag"] = etag
                    return not_modified
        return response

    def _etag(self, request: HttpRequest) -> str:
        auth = getattr(request, "auth", None)
        workspace = getattr(auth, "workspace", None)
        if workspace is None:
            return ""
        from .api import etag_for, published

        return etag_for(published(workspace))
