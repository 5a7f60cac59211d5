"""Conditional GET for the agents' skills API.

Agents poll the skill list on every run; nearly always nothing changed. When a
request carries If-None-Match, the key is checked and the ETag computed from one
light query before any view runs, and a match answers 304 at once (the fetch is
still logged, for attribution). Otherwise the view runs and the ETag is added to
its response.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from workspaces.errors import DomainError
from workspaces.models import Scope

CONDITIONAL_PATHS = ("/api/v1/skills", "/api/v1/skills.zip")


class SkillsETagMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        conditional = (
            request.method == "GET"
            and request.path in CONDITIONAL_PATHS
            and not request.GET.get("task")
        )
        if conditional and request.headers.get("If-None-Match"):
            early = self._not_modified(request)
            if early is not None:
                return early
        response = self.get_response(request)
        if conditional and response.status_code == 200:
            etag = response.get("ETag") or getattr(request, "skills_etag", "")
            if etag:
                response["ETag"] = etag
        return response

    def _not_modified(self, request: HttpRequest) -> HttpResponse | None:
        from workspaces.auth import ApiKeyAuth

        from .api import etag_from_rows, log_fetch_refs, published_rows

        try:
            api_key = ApiKeyAuth(scope=Scope.SKILLS_READ)(request)
        except DomainError:
            return None  # let the view answer with the reason
        rows = published_rows(api_key.workspace)
        etag = etag_from_rows(rows)
        wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
        if etag not in wanted and "*" not in wanted:
            return None
        request.auth = api_key  # type: ignore[attr-defined]
        log_fetch_refs(request, "list" if request.path.endswith("skills") else "zip",
                       [f"{r[0]}@{r[1]}" for r in rows])  # fmt: skip
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
