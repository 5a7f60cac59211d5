"""The agents' skills API: read-only, published skills only."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router
from ninja.pagination import LimitOffsetPagination, paginate

from failures.embedding import get_embedder
from workspaces.auth import ApiKeyAuth
from workspaces.errors import NotFound
from workspaces.models import Scope
from workspaces.schemas import ErrorOut

from .models import Skill, SkillStatus
from .publication import etag_from_rows, fetch_log_record, published_set_get
from .schemas import SkillOut
from .selectors import skill_md

router = Router(tags=["skills"])
AUTH = ApiKeyAuth(scope=Scope.SKILLS_READ)


def published(workspace, *, with_body: bool = True, name: str = "") -> list[Skill]:  # type: ignore[no-untyped-def]
    qs = (
        Skill.objects.filter(workspace=workspace, status=SkillStatus.PUBLISHED)
        .exclude(published_version=None)
        .select_related("published_version")
        .order_by("name")
    )
    if name:
        qs = qs.filter(name=name)
    if not with_body:
        # Ranking never shows bodies; not loading them keeps a 50-skill request cheap.
        qs = qs.only("name", "updated_at", "published_version__number",
                     "published_version__description", "published_version__skill_id")  # fmt: skip
    return list(qs)


def etag_for(skills: list[Skill]) -> str:
    """Strong ETag over these skills: names, versions and update times."""
    return etag_from_rows([(s.name, s.published_version.number, s.updated_at) for s in skills])


_vectors: dict[int, np.ndarray] = {}  # description vectors by version id (versions are immutable)


def rank(skills: list[Skill], task: str) -> list[tuple[Skill, float]]:
    missing = [s for s in skills if s.published_version_id not in _vectors]
    if missing:
        texts = [f"{s.name}: {s.published_version.description}" for s in missing]
        for skill, vector in zip(missing, get_embedder().embed(texts), strict=True):
            _vectors[skill.published_version_id] = vector
    query = get_embedder().embed([task])[0]
    scored = [(s, float(_vectors[s.published_version_id] @ query)) for s in skills]
    return sorted(scored, key=lambda pair: -pair[1])


def log_fetch(request: HttpRequest, endpoint: str, skills: list[Skill]) -> None:
    log_fetch_refs(request, endpoint, [f"{s.name}@{s.published_version.number}" for s in skills])


def log_fetch_refs(request: HttpRequest, endpoint: str, refs: list[str]) -> None:
    fetch_log_record(
        api_key=request.auth,  # type: ignore[attr-defined]
        agent=request.headers.get("X-Hivemind-Agent", ""),
        session_id=request.headers.get("X-Hivemind-Session", ""),
        endpoint=endpoint,
        refs_json=json.dumps(refs),
    )


@router.get(
    "/skills",
    auth=AUTH,
    response={200: list[SkillOut], 401: ErrorOut, 403: ErrorOut},
    summary="Published skills (ETag / If-None-Match supported)",
)
@paginate(LimitOffsetPagination)
def skills_list(
    request: HttpRequest,
    task: str = Query("", max_length=2000, description="Rank by relevance to this task."),
    k: int = Query(5, ge=1, le=100, description="With ?task=, how many to return."),
) -> list[SkillOut]:
    """Only published skills, never proposals. Send `X-Hivemind-Agent` and
    `X-Hivemind-Session` so success rates can be attributed to what you fetched."""
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    if task.strip():
        return _ranked(request, workspace, task, k)
    # The unparameterised list is answered by SkillsETagMiddleware from the same set.
    published_set = published_set_get(workspace_id=workspace.pk)
    request.skills_etag = published_set.etag  # type: ignore[attr-defined]  # for the middleware
    log_fetch_refs(request, "list", published_set.refs)
    return [SkillOut(**item) for item in published_set.items]


def _ranked(request: HttpRequest, workspace, task: str, k: int) -> list[SkillOut]:  # type: ignore[no-untyped-def]
    skills = published(workspace, with_body=False)
    base = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/skills/"
    scored = rank(skills, task)[:k] if skills else []
    log_fetch(request, "list", [s for s, _ in scored])
    return [
        SkillOut(name=s.name, version=s.published_version.number,
                 description=s.published_version.description, updated_at=s.updated_at,
                 url=base + s.name, score=score)
        for s, score in scored
    ]  # fmt: skip


@router.get(
    "/skills.zip",
    auth=AUTH,
    response={200: None, 401: ErrorOut, 403: ErrorOut},
    summary="Every published skill as <name>/SKILL.md in a zip (a .claude/skills/ tree)",
)
def skills_zip(request: HttpRequest) -> HttpResponse:
    skills = published(request.auth.workspace)  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for skill in skills:
            archive.writestr(f"{skill.name}/SKILL.md", skill_md(skill.published_version))
    log_fetch(request, "zip", skills)
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="skills.zip"'
    response["ETag"] = published_set_get(workspace_id=request.auth.workspace_id).etag  # type: ignore[attr-defined]
    return response


@router.get(
    "/skills/{name}",
    auth=AUTH,
    response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="One published skill's SKILL.md (text/markdown)",
)
def skill_file(request: HttpRequest, name: str) -> HttpResponse:
    skill = next(iter(published(request.auth.workspace, name=name)), None)  # type: ignore[attr-defined]
    if skill is None:
        raise NotFound(f"No published skill named {name!r} in this workspace.")
    log_fetch(request, "file", [skill])
    response = HttpResponse(
        skill_md(skill.published_version), content_type="text/markdown; charset=utf-8"
    )
    response["ETag"] = etag_for([skill])
    return response
