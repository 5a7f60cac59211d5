"""The agents' ingest API: batches of traces, and late outcomes."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BaseModel, ConfigDict, Field

from hivemind_web.api import body_schema
from workspaces.auth import ApiKeyAuth
from workspaces.errors import BadRequest, InvalidInput
from workspaces.models import Scope
from workspaces.schemas import ErrorOut

from .body import read_body
from .claude_code import hook_ingest
from .models import FailureMode, Snapshot
from .schemas import (
    IncidentHitOut,
    IncidentSearchOut,
    IsoDatetime,
    ModeHitOut,
    ModeRefOut,
    OutcomeIn,
    OutcomeOut,
    TraceBatchIn,
    TraceBatchOut,
    utc,
)
from .search import SearchFilters, SearchHit, incident_search
from .selectors import snapshot_list
from .services import capture_policy_get, outcome_record, trace_ingest_batch
from .snapshots import SnapshotFilter, snapshot_create, snapshot_file_response

router = Router(tags=["traces"])

CAPTURE_HEADER = "X-Hivemind-Capture"


def read_json_body(request: HttpRequest) -> Any:
    """The request body as JSON, size-capped and gunzipped; clear errors otherwise."""
    try:
        return json.loads(read_body(request))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"Body is not valid JSON: {exc}.") from None


def _batch_items(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("traces"), list):
        return body["traces"]
    if isinstance(body, list):
        return body
    raise InvalidInput('Body must be {"traces": [ ... ]}: a JSON object with a list of traces.')


@router.post(
    "/traces",
    auth=ApiKeyAuth(scope=Scope.INGEST),
    response={
        200: TraceBatchOut,
        202: TraceBatchOut,
        207: TraceBatchOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        413: ErrorOut,
        422: TraceBatchOut | ErrorOut,
        429: ErrorOut,
    },
    summary="Send a batch of traces (create or update)",
    openapi_extra=body_schema(TraceBatchIn),
)
def traces_ingest(request: HttpRequest) -> Status:
    """Create or update traces by `external_id` (re-sending is safe: it never duplicates).

    Every trace is judged on its own: the response lists, in order, `created`,
    `updated` or `rejected` with the reason and the offending fields. 200 when all
    were stored, 207 when some were rejected, 422 when none could be stored.
    Header `X-Hivemind-Capture: off` asks that nothing from this request be stored
    (202, every trace `skipped`). PII is redacted before anything is stored.
    """
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    items = _batch_items(read_json_body(request))
    if request.headers.get(CAPTURE_HEADER, "").lower() in {"off", "0", "false", "no"}:
        capture_policy_get(workspace=workspace)
        return Status(202, _skipped(items))
    batch = trace_ingest_batch(workspace=workspace, items=items)
    rejected = batch.count("rejected")
    status = 200 if not rejected else (422 if rejected == len(batch.results) else 207)
    return Status(
        status,
        {
            "created": batch.count("created"),
            "updated": batch.count("updated"),
            "rejected": rejected,
            "results": [r.__dict__ for r in batch.results],
        },
    )


def _skipped(items: list[Any]) -> dict[str, Any]:
    detail = f"{CAPTURE_HEADER}: off; nothing from this request was stored."
    results = [
        {
            "index": i,
            "external_id": item.get("external_id") if isinstance(item, dict) else None,
            "status": "skipped",
            "detail": detail,
        }
        for i, item in enumerate(items)
    ]
    return {"created": 0, "updated": 0, "rejected": 0, "results": results}


@router.post(
    "/traces/{external_id}/outcome",
    auth=ApiKeyAuth(scope=Scope.INGEST),
    response={
        200: OutcomeOut,
        202: OutcomeOut,
        401: ErrorOut,
        403: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
    },  # fmt: skip
    summary="Record a trace's outcome (status, reward, scores), now or before it arrives",
)
def trace_outcome(
    request: HttpRequest,
    data: OutcomeIn,
    external_id: str = Path(..., max_length=200),
) -> Status:
    """The latest outcome decides the trace's status and reward. An outcome for a
    trace not received yet is kept (202) and applied when the trace arrives."""
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    outcome = outcome_record(workspace=workspace, external_id=external_id, data=data)
    if outcome.trace_id is None:
        return Status(
            202,
            OutcomeOut(
                external_id=external_id,
                applied=False,
                trace_status=None,
                detail="Trace not received yet; the outcome will be applied when it arrives.",
            ),
        )
    return Status(
        200,
        OutcomeOut(
            external_id=external_id,
            applied=True,
            trace_status=outcome.trace.status,
            detail="Outcome applied.",
        ),
    )


@router.get(
    "/incidents/search",
    auth=ApiKeyAuth(),
    response={200: IncidentSearchOut, 401: ErrorOut, 422: ErrorOut},
    summary="Search incidents in plain words",
)
def incidents_search(
    request: HttpRequest,
    q: str = Query(
        ...,
        min_length=1,
        max_length=500,
        description="e.g. rate-limit errors in checkout this week",
    ),
    agent: str = Query("", max_length=200),
    tool: str = Query("", max_length=200),
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    k: int = Query(20, ge=1, le=100),
) -> IncidentSearchOut:
    """Vector similarity and keyword match over incident signatures, within the key's
    workspace. Time phrases ("this week") and agent names in `q` become filters;
    `understood` says which."""
    try:
        since, until = utc(since), utc(until)
    except ValueError as exc:
        raise InvalidInput(f"since/until: {exc}.") from None
    filters = SearchFilters(agent=agent, tool=tool, since=since, until=until)
    result = incident_search(workspace=request.auth.workspace, query=q, filters=filters, k=k)  # type: ignore[attr-defined]
    return IncidentSearchOut(
        query=result.query,
        understood=result.understood,
        incidents=[_hit_out(hit) for hit in result.hits],
        modes=[ModeHitOut(failure_mode=_mode_ref(m["mode"]), hits=m["hits"]) for m in result.modes],
    )


def _mode_ref(mode: FailureMode | None) -> ModeRefOut | None:
    return ModeRefOut(id=mode.pk, label=mode.label, status=mode.status) if mode else None


def _hit_out(hit: SearchHit) -> IncidentHitOut:
    incident = hit.incident
    return IncidentHitOut(
        id=incident.pk,
        trace_external_id=incident.trace.external_id,
        agent=incident.trace.agent,
        tool=incident.tool,
        error=incident.error_text,
        signature=incident.signature,
        occurred_at=incident.occurred_at,
        score=hit.score,
        similarity=hit.similarity,
        failure_mode=_mode_ref(incident.failure_mode),
    )


@router.post(
    "/hooks/claude-code",
    auth=ApiKeyAuth(scope=Scope.INGEST),
    response={200: TraceBatchOut, 202: TraceBatchOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut,
              413: ErrorOut, 422: TraceBatchOut | ErrorOut, 429: ErrorOut},
    summary="Receive one raw Claude Code hook payload",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["session_id", "hook_event_name"],
        "properties": {"session_id": {"type": "string", "minLength": 1},
                       "hook_event_name": {"type": "string", "minLength": 1}},
        "additionalProperties": True}}}}},
)  # fmt: skip
def claude_code_hook(request: HttpRequest) -> Status:
    """One trace per `session_id`. Send the hook's stdin as the body (the
    `hivemind_client capture` command does this). Unknown events and fields are kept."""
    payload = read_json_body(request)
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    if request.headers.get(CAPTURE_HEADER, "").lower() in {"off", "0", "false", "no"}:
        capture_policy_get(workspace=workspace)
        return Status(202, _skipped([payload]))
    batch = hook_ingest(workspace=workspace, payload=payload,
                        event_id=request.headers.get("X-Hivemind-Event-Id", "")[:100])  # fmt: skip
    rejected = batch.count("rejected")
    return Status(
        422 if rejected else 200,
        {"created": batch.count("created"), "updated": batch.count("updated"), "rejected": rejected,
         "results": [r.__dict__ for r in batch.results]},
    )  # fmt: skip


# --- training snapshots -----------------------------------------------------------------


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)
    min_reward: float | None = Field(None, description="Keep traces with reward above this.")
    agent: str = Field("", max_length=200)
    since: date | None = None
    until: date | None = None
    failure_mode: int | None = Field(None, description="Only traces with an incident in this mode.")
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
def snapshot_make(request: HttpRequest, payload: SnapshotIn) -> Status:
    """Immutable once made: the filter and the counts are recorded with it."""
    api_key = request.auth  # type: ignore[attr-defined]
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
def snapshot_list_api(request: HttpRequest) -> list[SnapshotOut]:
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    return [snapshot_out(s) for s in snapshot_list(workspace=workspace)]


@router.get(
    "/snapshots/{version}/{filename}",
    auth=ApiKeyAuth(scope=Scope.EXPORT),
    response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Download one file of a snapshot (JSONL)",
)
def snapshot_file_api(request: HttpRequest, version: int, filename: str) -> HttpResponse:
    workspace = request.auth.workspace  # type: ignore[attr-defined]
    return snapshot_file_response(workspace=workspace, version=version, filename=filename)
