"""Reads for incidents and failure modes. Every query here is scoped to one workspace."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from django.db.models import Count, QuerySet, Sum, Value
from django.utils import timezone
from pgvector.django import CosineDistance

from traces.models import Step, Trace
from workspaces.errors import NotFound
from workspaces.models import Workspace

from .diagnosis.facts import StepView
from .diagnosis.model_calls import MODEL_KIND, with_model_calls
from .models import (
    NOT_CAUSES,
    AgentPolicy,
    ClusterRun,
    DiagnosisSettings,
    DiagnosisState,
    FailureMode,
    Incident,
    IncidentKind,
    IncidentSource,
    ModeDailyCount,
    ModeStatus,
    PendingAnalysis,
    PolicyRule,
    RunState,
    TraceAnalysis,
)
from .signatures import normalise


def run_calls(*, workspace_id: int, trace_ids: set[int] | list[int]) -> dict[int, list[StepView]]:
    """Each run's tool calls in order (a simulated user's `user.*` calls among
    them), without their outputs; for a run that recorded its calls only in its
    model calls, the calls its model answers asked for, and for tool steps that
    recorded no arguments, the arguments the model gave (`diagnosis.model_calls`).
    Runs of another workspace are left out."""
    mine = Trace.objects.filter(workspace_id=workspace_id, pk__in=list(trace_ids))
    calls: dict[int, list[StepView]] = {t: [] for t in mine.values_list("pk", flat=True)}
    for trace_id, index, kind, name, step_input, error in (
        Step.objects.filter(trace_id__in=list(calls), kind="tool_call")
        .order_by("trace_id", "index")
        .values_list("trace_id", "index", "kind", "name", "input", "error")
    ):
        calls[trace_id].append(StepView(index, kind, name, step_input, None, error))
    # Runs with no call of the agent's, or calls that recorded no arguments: their
    # model calls say what was asked (`with_model_calls`).
    bare = [
        t for t, found in calls.items()
        if not any(not s.name.startswith("user.") for s in found)
        or any(not s.name.startswith("user.") and s.input is None for s in found)
    ]  # fmt: skip
    if bare:
        models: dict[int, list[StepView]] = {t: [] for t in bare}
        for trace_id, index, step_input, output in (
            Step.objects.filter(trace_id__in=bare, kind=MODEL_KIND)
            .order_by("trace_id", "index")
            .values_list("trace_id", "index", "input", "output")
        ):
            models[trace_id].append(StepView(index, MODEL_KIND, "", step_input, output, ""))
        for trace_id, steps in models.items():
            run = sorted(calls[trace_id] + steps, key=lambda s: s.index)
            calls[trace_id] = [s for s in with_model_calls(run) if s.kind == "tool_call"]
    return calls


def incident_list_for_trace(*, trace: Trace) -> QuerySet[Incident]:
    """A trace's incidents, people's labels first (they are the most trusted)."""
    from django.db.models import Case, IntegerField, Value, When

    first = Case(When(source="human", then=Value(0)), default=Value(1), output_field=IntegerField())
    return (
        Incident.objects.filter(trace=trace)
        .select_related("failure_mode")
        .order_by(first, "step_index")
    )


def failure_mode_list(
    *, workspace: Workspace, include_merged: bool = False
) -> QuerySet[FailureMode]:
    qs = FailureMode.objects.filter(workspace=workspace, incident_count__gt=0)
    if not include_merged:
        qs = qs.exclude(status=ModeStatus.MERGED)
    return qs.order_by("-incident_count", "id")


def failure_mode_labels(*, workspace: Workspace, ids: list[Any]) -> dict[int, str]:
    """The labels of those of the workspace's modes (merged ones included)."""
    wanted = [i for i in ids if isinstance(i, int)]
    found = FailureMode.objects.filter(workspace=workspace, pk__in=wanted)
    return dict(found.values_list("pk", "label"))


# Two open modes whose centres are this similar (cosine) are offered to a lead to merge.
MERGE_SUGGESTION_SIMILARITY = 0.9


def merge_suggestions(*, workspace: Workspace, limit: int = 10) -> list[dict]:
    """Pairs of live modes that read alike (centroid cosine ≥ the threshold), most
    similar first; a lead confirms each merge (the smaller into the larger)."""
    import numpy as np

    modes = [
        m
        for m in failure_mode_list(workspace=workspace).exclude(status=ModeStatus.IGNORED)
        if m.centroid is not None
    ]
    if len(modes) < 2:
        return []
    matrix = np.stack([np.asarray(m.centroid, dtype=np.float32) for m in modes])
    sims = matrix @ matrix.T
    pairs = []
    for i in range(len(modes)):
        for j in range(i + 1, len(modes)):
            if sims[i, j] >= MERGE_SUGGESTION_SIMILARITY:
                small, large = sorted((modes[i], modes[j]), key=lambda m: m.incident_count)
                pairs.append({"source": small, "target": large, "similarity": float(sims[i, j])})
    pairs.sort(key=lambda p: float(p["similarity"]), reverse=True)  # type: ignore[arg-type]
    return pairs[:limit]


def modes_known_only_from_labels(*, workspace_id: int, mode_ids: list[int]) -> bool:
    """Whether every run in these modes is there because a person labelled it (or
    confirmed a candidate): then a new run joins them only once someone labels it,
    and counting the modes' runs over a period counts labels, not failures."""
    incidents = Incident.objects.filter(workspace_id=workspace_id, failure_mode_id__in=mode_ids)
    return incidents.exists() and not incidents.exclude(source=IncidentSource.HUMAN).exists()


def failure_mode_get(*, workspace: Workspace, pk: int) -> FailureMode:
    mode = FailureMode.objects.filter(workspace=workspace, pk=pk).first()
    if mode is None:
        raise NotFound("No such failure mode in this workspace.")
    return mode


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


def mode_daily_rows(*, mode: FailureMode, days: int = 30, until: date | None = None) -> list[tuple]:
    """(day, agent, incidents, failed runs) of one mode over the `days` days ending
    `until` (default today, UTC)."""
    until = until or timezone.now().date()
    start = until - timedelta(days=days - 1)
    return list(
        ModeDailyCount.objects.filter(failure_mode=mode, day__gte=start, day__lte=until)
        .order_by("day", "agent")
        .values_list("day", "agent", "incidents", "traces")
    )


def daily_incident_counts(
    *, workspace: Workspace, mode_ids: list[int], days: int = 30, until: date | None = None
) -> dict[int, list[int]]:
    """Incidents per day over the `days` days ending `until` (default today, UTC), per
    mode (oldest day first), from the ModeDailyCount rollup."""
    until = until or timezone.now().date()
    start = until - timedelta(days=days - 1)
    rows = (
        ModeDailyCount.objects.filter(
            workspace=workspace, failure_mode__in=mode_ids, day__gte=start, day__lte=until
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
        .exclude(kind__in=NOT_CAUSES)
        .select_related("trace")
        .order_by("-occurred_at")[:limit]
    )


def noise_incident_count(*, workspace: Workspace) -> int:
    return (
        Incident.objects.filter(workspace=workspace, failure_mode=None, embedded_at__isnull=False)
        .exclude(kind__in=NOT_CAUSES)
        .count()
    )


def pending_embedding_count(*, workspace: Workspace) -> int:
    return Incident.objects.filter(workspace=workspace, embedded_at=None).count()


def awaiting_diagnosis_count(*, workspace: Workspace) -> int:
    """Runs of the workspace queued for the diagnosis and not diagnosed yet: until
    they are, the causes found and the runs diagnosed are counts so far. A lower
    bound: a run whose analysis task has not started yet (the worker busy or
    stopped) is queued only then. Counting the runs without an analysis instead
    would read every run of the workspace, or scan other workspaces' analyses."""
    return PendingAnalysis.objects.filter(workspace=workspace).count()


def mode_incidents_nearest(*, mode: FailureMode, limit: int = 20) -> list[Incident]:
    """The mode's incidents closest to its centroid: its most typical members. When
    none of them is embedded yet (an embedding pass still running elsewhere holds
    the workspace's lock), the mode's incidents as they are: a mode with incidents
    always has some to learn from.

    Distances are measured exactly, on the mode's incidents: `+ 0` keeps the
    planner off the HNSW index over every incident of the table, which filters
    by mode only after its search, so the mode of a large table would keep few
    of the index's nearest or none."""
    qs = mode.incidents.select_related("trace")
    if mode.centroid is not None:
        distance = CosineDistance("embedding", mode.centroid) + Value(0.0)
        nearest: list[Incident] = list(
            qs.exclude(embedding=None)
            .annotate(distance=distance)
            .order_by("distance", "pk")[:limit]
        )
        if nearest:
            return nearest
    return list(qs.order_by("-occurred_at", "-pk")[:limit])


def mode_tools(*, mode: FailureMode) -> list[dict]:
    return list(mode.incidents.values("tool").annotate(n=Count("id")).order_by("-n")[:10])


SYMPTOM_LABELS = {
    "long_run": "kept going far longer than successful runs",
    "repeat": "made the same call again and again",
    "handoff": "handed the task over to a person",
}


def mode_symptoms(*, mode: FailureMode) -> list[dict]:
    """What the failed runs of a mode also showed that is not a cause (symptom
    incidents of the same traces), with how many runs showed each."""
    traces = Incident.objects.filter(failure_mode=mode).values("trace_id")
    runs: dict[str, set[int]] = {}
    for trace_id, stats in Incident.objects.filter(
        kind=IncidentKind.SYMPTOM, trace_id__in=traces
    ).values_list("trace_id", "stats")[:5000]:
        kind = str((stats or {}).get("signal", "")).split(":", 1)[0]
        runs.setdefault(SYMPTOM_LABELS.get(kind, kind or "other"), set()).add(trace_id)
    return sorted(({"label": k, "runs": len(v)} for k, v in runs.items()), key=lambda s: -s["runs"])


def mode_tasks(*, mode: FailureMode, limit: int = 8) -> dict:
    """What the agents were trying to do when they hit this mode: the `limit` most
    common kinds of task (`kinds`), each with how many of the mode's runs had it
    (`n`, a run with several incidents in the mode counted once) and how many other
    tasks of the same kind there were (`others`); and the kinds and runs not shown
    (`more_kinds`, `more_runs`).

    Tasks are grouped by their normalised form (ids and numbers masked), so
    "Refund order 881" and "Refund order 17" count as one kind of task, shown by
    the first of its tasks in order.
    """
    groups: dict[tuple[str, str], dict] = {}
    runs = Incident.objects.filter(failure_mode=mode).values("trace_id")
    rows = Trace.objects.filter(pk__in=runs).order_by("task", "pk").values_list("agent", "task")
    for agent, task in rows[:2000]:
        entry = groups.setdefault(
            (agent, normalise(task)), {"agent": agent, "task": task, "n": 0, "tasks": set()}
        )
        entry["n"] += 1
        entry["tasks"].add(task)
    ranked = sorted(groups.values(), key=lambda g: -g["n"])
    return {
        "kinds": [
            {"agent": g["agent"], "task": g["task"], "n": g["n"], "others": len(g["tasks"]) - 1}
            for g in ranked[:limit]
        ],
        "more_kinds": len(ranked[limit:]),
        "more_runs": sum(g["n"] for g in ranked[limit:]),
    }


def mode_example_traces(*, mode: FailureMode, limit: int = 10) -> list[Trace]:
    return list(
        Trace.objects.filter(incidents__failure_mode=mode)
        .distinct()
        .order_by("-started_at")[:limit]
    )


def mode_merge_targets(*, mode: FailureMode) -> QuerySet[FailureMode]:
    return failure_mode_list(workspace=mode.workspace).exclude(pk=mode.pk)


def cluster_run_latest(*, workspace: Workspace) -> ClusterRun | None:
    """The newest finished re-clustering of the workspace."""
    return (
        ClusterRun.objects.filter(workspace=workspace, state=RunState.DONE)
        .order_by("-started_at")
        .first()
    )


def cluster_run_get(*, workspace: Workspace, pk: int) -> ClusterRun:
    run = ClusterRun.objects.filter(workspace=workspace, pk=pk).first()
    if run is None:
        raise NotFound("No such clustering run in this workspace.")
    return run


def cluster_run_active(*, workspace: Workspace) -> ClusterRun | None:
    return (
        ClusterRun.objects.filter(
            workspace=workspace, state__in=[RunState.QUEUED, RunState.RUNNING]
        )
        .order_by("-created_at")
        .first()
    )


def diagnosis_summary(*, workspace: Workspace) -> dict[str, int]:
    """How the diagnosis judged the workspace's failed runs (state -> traces)."""
    rows = (
        TraceAnalysis.objects.filter(workspace=workspace, verdict="failed")
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    summary: dict[str, int] = dict(rows)
    summary["failed"] = sum(summary.values())
    # Undiagnosed runs whose only evidence is a weak lead (shown on the run).
    summary["weak_leads"] = (
        TraceAnalysis.objects.filter(
            workspace=workspace,
            verdict="failed",
            state=DiagnosisState.UNDIAGNOSED,
            trace__incidents__kind=IncidentKind.WEAK,
        )  # fmt: skip
        .values("trace_id")
        .distinct()
        .count()
    )
    # Diagnosed runs whose causes are all failed checks of the outcome: the
    # harness's verdict on the run, with no step named.
    at_a_step = (
        Incident.objects.filter(workspace=workspace, trace__analysis__verdict="failed")
        .exclude(kind__in=NOT_CAUSES)
        .exclude(stats__contains={"evidence": "check"})
        .values("trace_id")
        .distinct()
        .count()
    )
    # Runs with no known outcome: their errors are leads on each run (mining.as_leads),
    # never a mode, until an outcome says they failed.
    unknown = TraceAnalysis.objects.filter(workspace=workspace, verdict="unknown")
    summary["unknown"] = unknown.count()
    summary["unknown_with_leads"] = (
        unknown.filter(trace__incidents__kind=IncidentKind.WEAK)
        .values("trace_id")
        .distinct()
        .count()
    )
    diagnosed = summary.get(DiagnosisState.DIAGNOSED, 0)
    summary["check_only"] = max(0, diagnosed - at_a_step)
    summary["at_a_step"] = diagnosed - summary["check_only"]
    return summary


def undiagnosed_trace_list(*, workspace: Workspace, limit: int = 20) -> list[TraceAnalysis]:
    """Failed runs where the diagnosis found nothing specific, newest first."""
    return list(
        TraceAnalysis.objects.filter(workspace=workspace, state=DiagnosisState.UNDIAGNOSED)
        .select_related("trace")
        .order_by("-trace__started_at")[:limit]
    )


def diagnosis_settings_get(*, workspace: Workspace) -> DiagnosisSettings:
    """The workspace's settings, or unsaved defaults."""
    found = DiagnosisSettings.objects.filter(workspace=workspace).first()
    return found or DiagnosisSettings(workspace=workspace)


def policy_get(*, workspace: Workspace, pk: int) -> AgentPolicy:
    policy = AgentPolicy.objects.filter(workspace=workspace, pk=pk).first()
    if policy is None:
        raise NotFound("No such agent policy in this workspace.")
    return policy


def policy_rule_get(*, workspace: Workspace, pk: int) -> PolicyRule:
    rule = PolicyRule.objects.select_related("policy").filter(policy__workspace=workspace,
                                                              pk=pk).first()  # fmt: skip
    if rule is None:
        raise NotFound("No such policy rule in this workspace.")
    return rule


def policy_overview(*, workspace: Workspace) -> list[dict[str, object]]:
    """Every agent that sent traces, with its policy (if a lead opened one) and how many
    of its rules are approved, proposed and rejected, and how many incidents they named."""
    agents = list(
        Trace.objects.filter(workspace=workspace).exclude(agent="")
        .values_list("agent", flat=True).distinct().order_by("agent")[:500]
    )  # fmt: skip
    policies = {p.agent: p for p in AgentPolicy.objects.filter(workspace=workspace)}
    counts: dict[int, dict[str, int]] = {}
    for policy_id, status, n in (
        PolicyRule.objects.filter(policy__workspace=workspace)
        .values_list("policy_id", "status").annotate(n=Count("id"))
    ):  # fmt: skip
        counts.setdefault(policy_id, {})[status] = n
    return [{"agent": a, "policy": policies.get(a),
             "counts": counts.get(policies[a].pk, {}) if a in policies else {}}
            for a in agents]  # fmt: skip


def policy_rule_incidents(*, workspace: Workspace, policy: AgentPolicy) -> dict[int, int]:
    """Rule id -> incidents that named it."""
    out: dict[int, int] = {}
    for value in Incident.objects.filter(
        workspace=workspace, trace__agent=policy.agent, stats__method="policy"
    ).values_list("stats__rule", flat=True):
        if isinstance(value, int):
            out[value] = out.get(value, 0) + 1
    return out


def mode_chart_end(*, mode: FailureMode, days: int) -> date:
    """The last day of a mode's chart: today, or the day of its last incident when
    that is older than the chart (imported runs of a year ago: a chart of the last
    weeks would be empty)."""
    today = timezone.now().date()
    if mode.last_seen is None:
        return today
    last = mode.last_seen.astimezone(UTC).date()
    return last if last < today - timedelta(days=days - 1) else today
