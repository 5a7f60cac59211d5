"""The failures API: incident search in plain words."""

from __future__ import annotations

from ninja import Query, Router

from traces.schemas import IsoDatetime, utc
from workspaces.auth import ApiKeyAuth
from workspaces.errors import InvalidInput
from workspaces.models import Scope
from workspaces.requests import ApiRequest
from workspaces.schemas import ErrorOut

from .models import FailureMode
from .schemas import IncidentHitOut, IncidentSearchOut, ModeHitOut, ModeRefOut
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
    )
