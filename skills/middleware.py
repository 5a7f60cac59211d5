"""The agents' skill-list poll, answered before the view layer.

Agents fetch the skill list on every run; nearly always nothing changed. For a
plain `GET /api/v1/skills` (no query string) the key is checked and the
workspace's published set loaded in one query, and the stored ETag and
serialised first page answer it: 304 when `If-None-Match` matches, else 200
(the fetch is logged either way, for attribution). Anything else, including
every failure (missing or bad key, scope), falls through to the ninja view,
which answers with its reasons. `skills.zip` gets the same early 304. A
workspace with a skill on trial serves each session its own set, so the view
answers those polls (skills.publication.session_set).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

from workspaces.errors import DomainError
from workspaces.models import Scope

LIST_PATH = "/api/v1/skills"
ZIP_PATH = "/api/v1/skills.zip"


class SkillsETagMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if request.method != "GET" or path not in (LIST_PATH, ZIP_PATH):
            return self.get_response(request)
        plain = not request.META.get("QUERY_STRING")
        if (plain and path == LIST_PATH) or request.headers.get("If-None-Match"):
            early = self._answer(request, full=plain and path == LIST_PATH)
            if early is not None:
                return early
        response = self.get_response(request)
        if response.status_code == 200 and not request.GET.get("task"):
            etag = response.get("ETag") or getattr(request, "skills_etag", "")
            if etag:
                response["ETag"] = etag
                # While skills are on trial the view answers (the set depends on the
                # session's arm); its ETag is per arm, so an unchanged pull is a 304.
                wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
                if etag in wanted or "*" in wanted:
                    response = HttpResponseNotModified()
                    response["ETag"] = etag
        note = getattr(request, "skills_trial_note", "")
        if note:
            response["X-Hivemind-Trial"] = note
        return response

    def _answer(self, request: HttpRequest, *, full: bool) -> HttpResponse | None:
        from workspaces.auth import presented_key
        from workspaces.services import api_key_prefix, api_key_verify

        from .publication import fetch_log_for_request, poll_lookup, published_set_refresh

        if request.GET.get("task"):
            return None  # ranked lists depend on the task: never cached
        try:
            raw_key = presented_key(request)
            poll = poll_lookup(prefix=api_key_prefix(raw_key))
            api_key = api_key_verify(api_key=poll.api_key, raw_key=raw_key, scope=Scope.SKILLS_READ)
        except DomainError:
            return None  # the view answers with the reason
        if poll.on_trial:
            return None  # the set depends on the session: the view answers
        etag, first_page, refs_json = poll.etag, poll.first_page, poll.refs_json
        if etag is None:  # no set kept yet for this workspace
            published = published_set_refresh(workspace_id=api_key.workspace_id)
            if published.trials:
                return None
            etag, first_page = published.etag, published.first_page
            refs_json = json.dumps(published.refs)
        wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
        matched = etag in wanted or "*" in wanted
        if not matched and not full:
            return None
        fetch_log_for_request(
            request=request, api_key=api_key,
            endpoint="list" if request.path == LIST_PATH else "zip", refs_json=refs_json,
        )  # fmt: skip
        if matched:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(first_page, content_type="application/json")
        response["ETag"] = etag
        return response
