"""The agents' skills API: read-only, published skills only."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BaseModel, Field

from traces.embeddings import get_embedder
from workspaces.auth import ApiKeyAuth
from workspaces.errors import NotFound
from workspaces.models import Scope
from workspaces.schemas import ErrorOut

from .models import FetchLog, Skill, SkillStatus
from .selectors import skill_md

router = Router(tags=["skills"])
AUTH = ApiKeyAuth(scope=Scope.SKILLS_READ)


class SkillOut(BaseModel):
    name: str
    version: int
    description: str
    updated_at: datetime
    url: str = Field(..., description="GET this for the SKILL.md text.")
    score: float | None = Field(None, description="Relevance to ?task= (cosine), when given.")


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
        # The list never shows bodies; not loading them keeps a 50-skill poll cheap.
        qs = qs.only("name", "updated_at", "published_version__number",
                     "published_version__description", "published_version__skill_id")  # fmt: skip
    return list(qs)


def etag_for(skills: list[Skill]) -> str:
    """Strong ETag over the published set: names, versions and update times."""
    return etag_from_rows([(s.name, s.published_version.number, s.updated_at) for s in skills])


def etag_from_rows(rows: list[tuple]) -> str:
    digest = hashlib.sha256()
    for name, number, updated_at, *_ in rows:
        digest.update(f"{name}@{number}@{updated_at.isoformat()}\n".encode())
    return f'"{digest.hexdigest()[:32]}"'


def published_rows(workspace) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(name, version, updated_at, description) of published skills, without ORM
    objects: every agent polls the skill list on every run."""
    return list(
        Skill.objects.filter(workspace=workspace, status=SkillStatus.PUBLISHED)
        .exclude(published_version=None)
        .order_by("name")
        .values_list(
            "name", "published_version__number", "updated_at", "published_version__description"
        )
    )


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
    """Record the fetch without waiting for its WAL flush: agents poll this on every
    run, and losing the last fraction of a second of fetch logs in a crash is an
    acceptable price for not paying an fsync per poll."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        _insert_fetch(request, endpoint, refs)


def _insert_fetch(request: HttpRequest, endpoint: str, refs: list[str]) -> None:
    FetchLog.objects.create(
        workspace=request.auth.workspace,  # type: ignore[attr-defined]
        api_key=request.auth,  # type: ignore[attr-defined]
        agent=request.headers.get("X-Hivemind-Agent", "")[:200],
        session_id=request.headers.get("X-Hivemind-Session", "")[:200],
        endpoint=endpoint,
        skills=refs,
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
    rows = published_rows(workspace)
    request.skills_etag = etag_from_rows(rows)  # type: ignore[attr-defined]  # for the ETag middleware
    log_fetch_refs(request, "list", [f"{r[0]}@{r[1]}" for r in rows])
    base = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/skills/"
    return [
        SkillOut(
            name=name, version=number, description=description, updated_at=updated, url=base + name
        )
        for name, number, updated, description in rows
    ]


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
    response["ETag"] = etag_for(skills)
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
