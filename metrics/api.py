"""The metrics API: training snapshots (key scope `export`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from ninja import Router, Status
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BaseModel, ConfigDict, Field

from workspaces.auth import ApiKeyAuth
from workspaces.models import Scope
from workspaces.requests import ApiRequest
from workspaces.schemas import ErrorOut

from .models import Snapshot
from .selectors import snapshot_list
from .snapshots import SnapshotFilter, snapshot_create, snapshot_file_response

router = Router(tags=["training data"])


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field("", max_length=100)
    min_reward: float | None = Field(None, description="Keep traces with reward above this.")
    agent: str = Field("", max_length=200)
    since: date | None = None
    until: date | None = None
    failure_mode: int | None = Field(
        None,
        description="Only traces with an incident in this mode, with the successful runs of "
        "the same tasks as the answers to prefer (SFT examples, DPO's chosen side).",
    )
    skill: str = Field("", max_length=200, description="Only traces with this skill in scope.")
    heldout_percent: int = Field(10, ge=0, le=50)


class SnapshotOut(BaseModel):
    version: int
    name: str
    filters: dict[str, Any]
    counts: dict[str, int]
    created_at: datetime
    created_by: str
    files: dict[str, str]


def snapshot_out(snapshot: Snapshot) -> SnapshotOut:
    base = f"{settings.HIVEMIND_PUBLIC_URL.rstrip('/')}/api/v1/snapshots/{snapshot.version}/"
    return SnapshotOut(
        version=snapshot.version, name=snapshot.name, filters=snapshot.filters,
        counts=snapshot.counts, created_at=snapshot.created_at,
        created_by=snapshot.created_by_label, files={f: base + f for f in Snapshot.FILES},
    )  # fmt: skip


@router.post(
    "/snapshots",
    auth=ApiKeyAuth(scope=Scope.EXPORT),
    response={201: SnapshotOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Make a training snapshot (SFT JSONL + DPO pairs) from a filter",
)
def snapshot_make(request: ApiRequest, payload: SnapshotIn) -> Status:
    """Immutable once made: the filter and the counts are recorded with it. Runs need
    a reported outcome: a hook session whose status was only read from the session
    is left out (`counts.inferred_left_out`) until its outcome is posted."""
    api_key = request.auth
    snapshot = snapshot_create(
        workspace=api_key.workspace, name=payload.name, actor=None,
        actor_label=f"API key {api_key.name}",
        filters=SnapshotFilter(**payload.model_dump(exclude={"name"})),
    )  # fmt: skip
    return Status(201, snapshot_out(snapshot))


@router.get(
    "/snapshots",
    auth=ApiKeyAuth(scope=Scope.EXPORT),
    response={200: list[SnapshotOut], 401: ErrorOut, 403: ErrorOut},
    summary="Training snapshots of this workspace, newest first",
)
@paginate(LimitOffsetPagination)
def snapshot_list_api(request: ApiRequest) -> list[SnapshotOut]:
    workspace = request.auth.workspace
    return [snapshot_out(s) for s in snapshot_list(workspace=workspace)]


@router.get(
    "/snapshots/{version}/{filename}",
    auth=ApiKeyAuth(scope=Scope.EXPORT),
    response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Download one file of a snapshot (JSONL)",
)
def snapshot_file_api(request: ApiRequest, version: int, filename: str) -> HttpResponse:
    workspace = request.auth.workspace
    return snapshot_file_response(workspace=workspace, version=version, filename=filename)
