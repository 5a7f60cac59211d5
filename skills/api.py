"""The agents' skills API: read-only, published skills only."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
from django.conf import settings
from django.http import HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from ninja import Query, Router
from ninja.pagination import LimitOffsetPagination, paginate

from workspaces.auth import ApiKeyAuth
from workspaces.errors import NotFound
from workspaces.models import Scope
from workspaces.requests import ApiRequest
from workspaces.schemas import ErrorOut

from .models import SkillAlias, SkillStatus
from .publication import (
    SessionSet,
    etag_from_rows,
    fetch_log_for_request,
    published_set_get,
    session_of,
    session_set,
)
from .schemas import SkillOut
from .selectors import Published, published_skill_list, skill_md
from .vectors import description_vectors, text_vector

router = Router(tags=["skills"])
AUTH = ApiKeyAuth(scope=Scope.SKILLS_READ)


def rank(published: list[Published], task: str) -> list[tuple[Published, float]]:
    """Published skills by cosine similarity of their description to the task."""
    vectors = description_vectors(
        [(p.version.pk, f"{p.skill.name}: {p.version.description}") for p in published]
    )
    scores = vectors @ text_vector(task)
    order = np.argsort(-scores, kind="stable")
    return [(published[i], float(scores[i])) for i in order]


UNASSIGNED_NOTE = "skills on trial withheld: send X-Hivemind-Session to be assigned to a trial arm"


def served_to_session(request: ApiRequest) -> SessionSet:
    """Which skills on trial this request's session is not served (and records its
    arms). Sessions without an id get no skill on trial: they cannot be measured."""
    published_set = published_set_get(workspace_id=request.auth.workspace_id)
    served = session_set(
        workspace_id=request.auth.workspace_id, session_id=session_of(request, request.auth),
        trials=published_set.trials,
    )  # fmt: skip
    if served.unassigned:
        request.skills_trial_note = UNASSIGNED_NOTE  # type: ignore[attr-defined]
    return served


def session_etag(etag: str, withheld: frozenset[str]) -> str:
    if not withheld:
        return etag
    digest = hashlib.sha256((etag + "\n" + "\n".join(sorted(withheld))).encode()).hexdigest()
    return f'"{digest[:32]}"'


def log_fetch(request: ApiRequest, endpoint: str, refs: list[str]) -> None:
    """Which skills this key (agent, session) fetched: metrics attribute traces by it."""
    fetch_log_for_request(
        request=request, api_key=request.auth, endpoint=endpoint, refs_json=json.dumps(refs)
    )


def _out(p: Published, score: float | None = None) -> SkillOut:
    base = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/skills/"
    return SkillOut(name=p.skill.name, version=p.version.number, description=p.version.description,
                    updated_at=p.skill.updated_at, url=base + p.skill.name, score=score)  # fmt: skip


@router.get(
    "/skills",
    auth=AUTH,
    response={200: list[SkillOut], 401: ErrorOut, 403: ErrorOut},
    summary="Published skills (ETag / If-None-Match supported)",
)
@paginate(LimitOffsetPagination)
def skills_list(
    request: ApiRequest,
    task: str = Query("", max_length=2000, description="Rank by relevance to this task."),
    k: int = Query(5, ge=1, le=100, description="With ?task=, how many to return."),
) -> list[SkillOut]:
    """Only published skills, never proposals. Send `X-Hivemind-Agent` and
    `X-Hivemind-Session` so success rates can be attributed to what you fetched.

    **Skills on trial** are served to a random share of sessions only, chosen
    by a hash of (skill, session id), so one session always gets the same set.
    A request without `X-Hivemind-Session` cannot be assigned: it gets no skill
    on trial, is counted as unassigned, and the response carries the header
    `X-Hivemind-Trial` saying so."""
    workspace = request.auth.workspace
    if task.strip():
        return _ranked(request, task, k)
    # The unparameterised list is answered by SkillsETagMiddleware from the same set.
    published_set = published_set_get(workspace_id=workspace.pk)
    served = served_to_session(request) if published_set.trials else None
    withheld = served.withheld if served else frozenset()
    request.skills_etag = session_etag(published_set.etag, withheld)  # for the middleware
    log_fetch(request, "list",
              [r for r in published_set.refs if r.split("@")[0] not in withheld])  # fmt: skip
    return [SkillOut(**item) for item in published_set.items if item["name"] not in withheld]


def _ranked(request: ApiRequest, task: str, k: int) -> list[SkillOut]:
    withheld = served_to_session(request).withheld
    published = [
        p
        for p in published_skill_list(workspace_id=request.auth.workspace_id, with_body=False)
        if p.skill.name not in withheld
    ]
    scored = rank(published, task)[:k] if published else []
    log_fetch(request, "list", [p.ref for p, _ in scored])
    return [_out(p, score) for p, score in scored]


@router.get(
    "/skills.zip",
    auth=AUTH,
    response={200: None, 401: ErrorOut, 403: ErrorOut},
    summary="Every published skill as <name>/SKILL.md in a zip (a .claude/skills/ tree)",
)
def skills_zip(request: ApiRequest) -> HttpResponse:
    """Skills on trial are included for the session's treated arm only."""
    withheld = served_to_session(request).withheld
    published = [p for p in published_skill_list(workspace_id=request.auth.workspace_id)
                 if p.skill.name not in withheld]  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for p in published:
            archive.writestr(f"{p.skill.name}/SKILL.md", skill_md(p.version))
    log_fetch(request, "zip", [p.ref for p in published])
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="skills.zip"'
    response["ETag"] = session_etag(
        published_set_get(workspace_id=request.auth.workspace_id).etag, withheld
    )
    return response


@router.get(
    "/skills/{name}",
    auth=AUTH,
    response={200: None, 301: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 410: ErrorOut},
    summary="One published skill's SKILL.md (text/markdown)",
)
def skill_file(request: ApiRequest, name: str) -> HttpResponse:
    """A renamed skill's former name answers 301 to its new name while it is
    published, and 410 once it is not. A skill on trial answers 404 to sessions
    in its holdout arm and to requests without a session id."""
    found = published_skill_list(workspace_id=request.auth.workspace_id, name=name)
    if found and found[0].skill.rollout == "trial":
        served = served_to_session(request)
        if name in served.withheld:
            why = ("send X-Hivemind-Session to be assigned" if served.unassigned
                   else "this session is in its holdout arm")  # fmt: skip
            raise NotFound(f"{name!r} is on trial and not served to this session: {why}.")
    if not found:
        alias = (
            SkillAlias.objects.filter(workspace_id=request.auth.workspace_id, name=name)
            .select_related("skill")
            .first()
        )
        if alias is not None and alias.skill.status == SkillStatus.PUBLISHED:
            base = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/skills/"
            return HttpResponsePermanentRedirect(base + alias.skill.name)
        if alias is not None:
            return JsonResponse(
                {"detail": f"{name!r} was renamed to {alias.skill.name!r}, which is not "
                 "published any more."}, status=410,
            )  # fmt: skip
        raise NotFound(f"No published skill named {name!r} in this workspace.")
    log_fetch(request, "file", [found[0].ref])
    response = HttpResponse(skill_md(found[0].version), content_type="text/markdown; charset=utf-8")
    response["ETag"] = etag_from_rows([(found[0].skill.name, found[0].version.number,
                                        found[0].skill.updated_at)])  # fmt: skip
    return response
