"""Reads for traces and incidents. Every query here is scoped to one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from pgvector.django import CosineDistance

from workspaces.errors import NotFound
from workspaces.models import Workspace

from .models import FailureMode, Incident, ModeDailyCount, ModeStatus, Snapshot, Step, Trace


@dataclass(frozen=True)
class TraceFilters:
    status: str = ""
    agent: str = ""
    since: datetime | None = None
    until: datetime | None = None
    has_incidents: bool | None = None
    q: str = ""


def trace_list(*, workspace: Workspace, filters: TraceFilters | None = None) -> QuerySet[Trace]:
    """A workspace's traces, newest first, narrowed by `filters`."""
    f = filters or TraceFilters()
    qs = Trace.objects.filter(workspace=workspace)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.agent:
        qs = qs.filter(agent=f.agent)
    if f.since:
        qs = qs.filter(started_at__gte=f.since)
    if f.until:
        qs = qs.filter(started_at__lt=f.until)
    if f.has_incidents is True:
        qs = qs.filter(Q(error_count__gt=0) | Q(incidents__isnull=False)).distinct()
    elif f.has_incidents is False:
        qs = qs.filter(error_count=0, incidents__isnull=True)
    if f.q:
        qs = qs.filter(Q(task__icontains=f.q) | Q(external_id__icontains=f.q) | Q(session_id=f.q))
    return qs.order_by("-started_at", "-id")


def trace_agent_list(*, workspace: Workspace) -> list[str]:
    return list(
        Trace.objects.filter(workspace=workspace)
        .exclude(agent="")
        .values_list("agent", flat=True)
        .distinct()
        .order_by("agent")
    )


def trace_get(*, workspace: Workspace, pk: int) -> Trace:
    trace = Trace.objects.filter(workspace=workspace, pk=pk).first()
    if trace is None:
        raise NotFound("No such trace in this workspace.")
    return trace


def step_list(*, trace: Trace) -> QuerySet[Step]:
    # By time first: OTLP steps have indexes derived from span ids, not positions.
    return trace.steps.order_by(F("started_at").asc(nulls_last=True), "index")


def incident_list_for_trace(*, trace: Trace) -> QuerySet[Incident]:
    return trace.incidents.order_by("step_index")


# --- failure modes ----------------------------------------------------------------


def failure_mode_list(
    *, workspace: Workspace, include_merged: bool = False
) -> QuerySet[FailureMode]:
    # skills: the reverse relation from the skills app, shown in the list's last column.
    qs = FailureMode.objects.filter(workspace=workspace, incident_count__gt=0).prefetch_related(
        "skills"
    )
    if not include_merged:
        qs = qs.exclude(status=ModeStatus.MERGED)
    return qs.order_by("-incident_count", "id")


def failure_mode_get(*, workspace: Workspace, pk: int) -> FailureMode:
    mode = FailureMode.objects.filter(workspace=workspace, pk=pk).first()
    if mode is None:
        raise NotFound("No such failure mode in this workspace.")
    return mode


def failed_trace_count(*, workspace: Workspace) -> int:
    return Trace.objects.filter(workspace=workspace, status="failed").count()


def failed_traces_by_mode(*, workspace: Workspace) -> dict[int, int]:
    """Failed traces that hit each mode (a trace that recovered is not a failure)."""
    rows = (
        Incident.objects.filter(
            workspace=workspace, trace__status="failed", failure_mode__isnull=False
        )
        .values("failure_mode")
        .annotate(n=Count("trace", distinct=True))
    )
    return {row["failure_mode"]: row["n"] for row in rows}


def daily_incident_counts(
    *, workspace: Workspace, mode_ids: list[int], days: int = 30
) -> dict[int, list[int]]:
    """Incidents per day over the last `days` days, per mode (oldest day first), from
    the ModeDailyCount rollup."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        ModeDailyCount.objects.filter(
            workspace=workspace, failure_mode__in=mode_ids, day__gte=start
        )
        .values("failure_mode", "day")
        .annotate(n=Sum("incidents"))
    )
    series = {mode_id: [0] * days for mode_id in mode_ids}
    for row in rows:
        index = (row["day"] - start).days
        if 0 <= index < days:
            series[row["failure_mode"]][index] = row["n"]
    return series


def noise_incident_list(*, workspace: Workspace, limit: int = 50) -> QuerySet[Incident]:
    """Embedded incidents that no mode holds: HDBSCAN's noise, shown as such."""
    return (
        Incident.objects.filter(workspace=workspace, failure_mode=None, embedded_at__isnull=False)
        .select_related("trace")
        .order_by("-occurred_at")[:limit]
    )


def noise_incident_count(*, workspace: Workspace) -> int:
    return Incident.objects.filter(
        workspace=workspace, failure_mode=None, embedded_at__isnull=False
    ).count()


def pending_embedding_count(*, workspace: Workspace) -> int:
    return Incident.objects.filter(workspace=workspace, embedded_at=None).count()


def mode_incidents_nearest(*, mode: FailureMode, limit: int = 20) -> list[Incident]:
    """The mode's incidents closest to its centroid: its most typical members."""
    qs = mode.incidents.select_related("trace")
    if mode.centroid is not None:
        qs = (
            qs.exclude(embedding=None)
            .annotate(distance=CosineDistance("embedding", mode.centroid))
            .order_by("distance")
        )
    return list(qs[:limit])


def mode_tools(*, mode: FailureMode) -> list[dict]:
    return list(mode.incidents.values("tool").annotate(n=Count("id")).order_by("-n")[:10])


def mode_tasks(*, mode: FailureMode, limit: int = 8) -> list[dict]:
    """What the agents were trying to do when they hit this mode.

    Tasks are grouped by their normalised form (ids and numbers masked), so
    "Refund order 881" and "Refund order 17" count as one kind of task.
    """
    from .signatures import normalise

    groups: dict[tuple[str, str], dict] = {}
    rows = Trace.objects.filter(incidents__failure_mode=mode).values_list("agent", "task")
    for agent, task in rows[:2000]:
        key = (agent, normalise(task))
        entry = groups.setdefault(key, {"agent": agent, "task": task, "n": 0})
        entry["n"] += 1
    return sorted(groups.values(), key=lambda g: -g["n"])[:limit]


def mode_example_traces(*, mode: FailureMode, limit: int = 10) -> list[Trace]:
    return list(
        Trace.objects.filter(incidents__failure_mode=mode)
        .distinct()
        .order_by("-started_at")[:limit]
    )


def mode_merge_targets(*, mode: FailureMode) -> QuerySet[FailureMode]:
    return failure_mode_list(workspace=mode.workspace).exclude(pk=mode.pk)


def snapshot_list(*, workspace: Workspace) -> QuerySet[Snapshot]:
    """A workspace's snapshots, newest first, without their (large) files."""
    return Snapshot.objects.filter(workspace=workspace).defer(*Snapshot.FILES.values())
