"""The Agent Skills discovery index: /.well-known/agent-skills/index.json.

The well-known URI document of the Agent Skills discovery schema (0.2.0): one
entry per published skill served to this session, `type: skill-md`, its `url`
an immutable versioned path (`<name>/v<N>/SKILL.md`: the bytes at a path never
change; a new version gets a new path) and its `digest` the SHA-256 of exactly
those bytes. Authenticated like the skills API (a key with skills:read); skills
on trial follow the session's arm (X-Hivemind-Session), as everywhere else.
"""

from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from workspaces.auth import presented_key
from workspaces.errors import DomainError
from workspaces.models import ApiKey, Scope
from workspaces.services import api_key_authenticate

from .publication import (
    agent_header_stored,
    fetch_log_record,
    published_set_get,
    session_of,
    session_set,
)
from .selectors import published_skill_list, skill_md

SCHEMA = "https://schemas.agentskills.io/discovery/0.2.0/schema.json"
PREFIX = "/.well-known/agent-skills/"


def _key(request: HttpRequest) -> ApiKey:
    return api_key_authenticate(raw_key=presented_key(request), scope=Scope.SKILLS_READ)


def _withheld(request: HttpRequest, key: ApiKey) -> frozenset[str]:
    published = published_set_get(workspace_id=key.workspace_id)
    if not published.trials:
        return frozenset()
    return session_set(
        workspace_id=key.workspace_id, session_id=session_of(request, key),
        trials=published.trials,
    ).withheld  # fmt: skip


def _error(exc: DomainError) -> JsonResponse:
    return JsonResponse({"detail": exc.detail}, status=exc.status_code)


def digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


@require_GET
def skills_index(request: HttpRequest) -> HttpResponse:
    try:
        key = _key(request)
    except DomainError as exc:
        return _error(exc)
    withheld = _withheld(request, key)
    served = [p for p in published_skill_list(workspace_id=key.workspace_id)
              if p.skill.name not in withheld]  # fmt: skip
    skills = [
        {"name": p.skill.name, "type": "skill-md", "description": p.version.description,
         "url": f"{PREFIX}{p.skill.name}/v{p.version.number}/SKILL.md",
         "digest": digest(skill_md(p.version).encode())}
        for p in served
    ]  # fmt: skip
    fetch_log_record(api_key=key, agent=agent_header_stored(request=request, api_key=key),
                     session_id=session_of(request, key), endpoint="list",
                     refs_json=json.dumps([p.ref for p in served]))  # fmt: skip
    response = JsonResponse({"$schema": SCHEMA, "skills": skills})
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def skill_document(request: HttpRequest, name: str, number: int) -> HttpResponse:
    try:
        key = _key(request)
    except DomainError as exc:
        return _error(exc)
    found = published_skill_list(workspace_id=key.workspace_id, name=name)
    if not found or name in _withheld(request, key):
        return JsonResponse({"detail": f"No published skill {name!r} is served to this session."},
                            status=404)  # fmt: skip
    version = found[0].version
    if number != version.number:
        current = f"{PREFIX}{name}/v{version.number}/SKILL.md"
        return JsonResponse(
            {"detail": f"Version {number} of {name!r} is not served; the published version "
                       f"is {version.number}: {current}", "current": current},
            status=410 if number < version.number else 404,
        )  # fmt: skip
    response = HttpResponse(skill_md(version).encode(), content_type="text/markdown; charset=utf-8")
    # The bytes at a versioned path never change.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
