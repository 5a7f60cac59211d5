"""The failures API: incident search in plain words."""

from __future__ import annotations

from ninja import Path, Query, Router, Status

from traces.schemas import IsoDatetime, utc
from workspaces.auth import ApiKeyAuth
from workspaces.errors import InvalidInput
from workspaces.models import Scope
from workspaces.requests import ApiRequest
from workspaces.schemas import ErrorOut

from . import labels
from .models import FailureMode, RunLabel, standing
from .schemas import IncidentHitOut, IncidentSearchOut, LabelIn, LabelOut, ModeHitOut, ModeRefOut
from .search import SearchFilters, SearchHit, incident_search

router = Router(tags=["failures"])


@router.get(
    "/incidents/search",
    auth=ApiKeyAuth(scope=Scope.FAILURES_READ),
    response={200: IncidentSearchOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
    summary="Search incidents in plain words",
)
def incidents_search(
    request: ApiRequest,
    q: str = Query(
        ...,
        max_length=500,
        description="e.g. rate-limit errors in checkout this week (empty: no results)",
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
    if not q.strip():  # nothing to look for (also what is left of a control character)
        return IncidentSearchOut(query=q, understood=[], incidents=[], modes=[])
    filters = SearchFilters(agent=agent, tool=tool, since=since, until=until)
    result = incident_search(workspace=request.auth.workspace, query=q, filters=filters, k=k)
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
        standing=standing(incident.kind),
        run_status=incident.trace.status,
    )


def _trace_of(request: ApiRequest, external_id: str):  # type: ignore[no-untyped-def]
    from traces.models import Trace
    from workspaces.errors import NotFound

    trace = Trace.objects.filter(workspace=request.auth.workspace, external_id=external_id).first()
    if trace is None:
        raise NotFound(f"No trace {external_id!r} in this workspace.")
    return trace


def _label_out(label: RunLabel) -> LabelOut:
    return LabelOut(
        id=label.pk, trace_external_id=label.trace.external_id, step=label.step_index,
        category=label.category, sentence=label.sentence, fix=label.fix, by=label.author_label,
        failure_mode=_mode_ref(label.failure_mode), incident_id=label.incident_id,
        created_at=label.created_at, updated_at=label.updated_at,
    )  # fmt: skip


@router.post(
    "/traces/{external_id}/labels",
    auth=ApiKeyAuth(scope=Scope.FAILURES_WRITE),
    response={
        200: LabelOut,
        201: LabelOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        422: ErrorOut,
    },  # fmt: skip
    summary="Label what went wrong in a run (a person's or a harness's judgement)",
)
def trace_label(
    request: ApiRequest, data: LabelIn, external_id: str = Path(..., max_length=200)
) -> Status:
    """The same label a lead makes in Review runs: it becomes an incident with source
    `human`, in the failure mode its sentence names, never overwritten by a
    re-diagnosis; runs like it are offered to leads as candidates. Labelling the
    same step again replaces its label (200); a new one answers 201."""
    trace = _trace_of(request, external_id)
    existed = RunLabel.objects.filter(trace=trace, step_index=data.step).exists()
    label = labels.label_save(
        workspace=request.auth.workspace, trace=trace, step_index=data.step,
        category=data.category, sentence=data.sentence, fix=data.fix,
        author=labels.Author(key_name=request.auth.name),
    )  # fmt: skip
    return Status(200 if existed else 201, _label_out(label))


@router.get(
    "/traces/{external_id}/labels",
    auth=ApiKeyAuth(scope=Scope.FAILURES_READ),
    response={200: list[LabelOut], 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="The labels of a run",
)
def trace_labels(
    request: ApiRequest, external_id: str = Path(..., max_length=200)
) -> list[LabelOut]:
    trace = _trace_of(request, external_id)
    found = labels.labels_of_trace(workspace=request.auth.workspace, trace=trace)
    return [_label_out(label) for label in found.filter(skip_reason="")]
