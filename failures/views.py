"""Failure-mode pages: the list with search, a mode with lead actions, re-clustering
progress, and the incidents partial shown on a trace's page."""

from __future__ import annotations

import csv
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from traces.selectors import failed_trace_count, trace_get, trace_list_by_ids
from workspaces.decorators import workspace_view
from workspaces.errors import InvalidInput
from workspaces.llm import model_for
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from . import diagnosis_settings, modes, selectors, services, taxonomy
from .charts import incidents_per_day_figure
from .clustering import sparkline
from .compare import comparison_offer, run_comparison
from .diagnosis import evidence, offline
from .models import TraceAnalysis
from .search import SearchFilters, SearchResult, incident_search

SPARK_DAYS = 30
CHART_DAYS = 60


@require_GET
@workspace_view()
def mode_list(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    context: dict[str, Any] = {"search": _search(request), "q": request.GET.get("q", "")}
    if request.htmx and request.htmx.target == "search-results":
        return render(request, "failures/_search_results.html", context)
    mode_rows = list(selectors.failure_mode_list(workspace=workspace))
    series = selectors.daily_incident_counts(
        workspace=workspace, mode_ids=[m.pk for m in mode_rows], days=SPARK_DAYS
    )
    failed = failed_trace_count(workspace=workspace)
    failed_by_mode = selectors.failed_traces_by_mode(workspace=workspace)
    rows = [
        {
            "mode": m,
            "stats": m.stats or {},
            "spark": sparkline(series.get(m.pk, [])),
            "recent": sum(series.get(m.pk, [])),
            # Only failed traces count: agents that recovered from the error did not fail.
            "share": (failed_by_mode.get(m.pk, 0) / failed) if failed else None,
        }
        for m in mode_rows
    ]
    sort, descending = _sort_of(request)
    rows.sort(key=SORTS[sort], reverse=descending)
    context |= {
        "rows": rows,
        "sort": sort,
        "descending": descending,
        "merge_suggestions": selectors.merge_suggestions(workspace=workspace),
        "min_mode_size": settings.HIVEMIND_MIN_MODE_SIZE,
        "noise": selectors.noise_incident_list(workspace=workspace, limit=20),
        "noise_count": selectors.noise_incident_count(workspace=workspace),
        "pending": selectors.pending_embedding_count(workspace=workspace),
        "last_run": selectors.cluster_run_latest(workspace=workspace),
        "active_run": selectors.cluster_run_active(workspace=workspace),
        "can_act": request.membership.has_role(Role.LEAD),
        "diagnosis": selectors.diagnosis_summary(workspace=workspace),
        "awaiting_diagnosis": selectors.awaiting_diagnosis_count(workspace=workspace),
        "undiagnosed": selectors.undiagnosed_trace_list(workspace=workspace, limit=20),
    }
    return render(request, "failures/modes.html", context)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("-inf")


SORTS: dict[str, Any] = {
    "failed": lambda r: _num(r["stats"].get("failed_traces")),
    "share": lambda r: _num(r["share"]),
    "also": lambda r: _num(r["stats"].get("also_in_successes")),
    "lift": lambda r: _num(r["stats"].get("lift_low")),
    "cost": lambda r: (_num(r["stats"].get("cost_usd")), _num(r["stats"].get("tokens"))),
    "trend": lambda r: (
        _num(r["stats"].get("last_7_days", 0)) - _num(r["stats"].get("previous_7_days", 0))
    ),
    "last_seen": lambda r: r["mode"].last_seen.timestamp() if r["mode"].last_seen else 0,
    "label": lambda r: r["mode"].label.lower(),
}


def _sort_of(request: WorkspaceRequest) -> tuple[str, bool]:
    """?sort=<column>&dir=asc|desc (default: most failed runs first)."""
    sort = request.GET.get("sort", "failed")
    if sort not in SORTS:
        sort = "failed"
    return sort, request.GET.get("dir", "asc" if sort == "label" else "desc") != "asc"


def _search(request: WorkspaceRequest) -> SearchResult | None:
    q = request.GET.get("q", "").strip()[:500]
    if not q:
        return None
    return incident_search(workspace=request.workspace, query=q, filters=SearchFilters(), k=15)


@require_GET
@workspace_view()
def mode_daily_csv(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """The series behind a mode's chart: incidents and failed runs per UTC day and agent."""
    mode = selectors.failure_mode_get(workspace=request.workspace, pk=pk)
    try:
        days = min(max(int(request.GET.get("days", CHART_DAYS)), 1), 400)
    except ValueError:
        days = CHART_DAYS
    try:  # the chart's last day (the day of the mode's last incident when it is old)
        until = date.fromisoformat(request.GET["until"])
    except (KeyError, ValueError):
        until = None
    rows = selectors.mode_daily_rows(mode=mode, days=days, until=until)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="failure-mode-{mode.pk}-daily.csv"'
    writer = csv.writer(response)
    writer.writerow(["day_utc", "agent", "incidents", "failed_runs"])
    for day, agent, incidents, traces in rows:
        # Agent names come from traces: never let a cell start a spreadsheet formula.
        writer.writerow(
            [day, ("'" + agent) if agent[:1] in "=+-@\t\r" else agent, incidents, traces]
        )
    return response


@require_GET
@workspace_view()
def mode_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    mode = selectors.failure_mode_get(workspace=request.workspace, pk=pk)
    end = selectors.mode_chart_end(mode=mode, days=CHART_DAYS)
    counts = selectors.daily_incident_counts(
        workspace=request.workspace, mode_ids=[mode.pk], days=CHART_DAYS, until=end
    )
    old = end != timezone.now().date()
    figure = incidents_per_day_figure(
        counts[mode.pk],
        last_day=end,
        title=(
            f"Incidents per day,<br>the {CHART_DAYS} days up to its last incident"
            if old
            else f"Incidents per day, last {CHART_DAYS} days"
        ),  # fmt: skip
    )
    return render(
        request,
        "failures/mode_detail.html",
        {
            "mode": mode,
            "incidents": selectors.mode_incidents_nearest(mode=mode),
            "tools": selectors.mode_tools(mode=mode),
            "tasks": selectors.mode_tasks(mode=mode),
            "symptoms": selectors.mode_symptoms(mode=mode),
            "traces": selectors.mode_example_traces(mode=mode),
            "merge_targets": selectors.mode_merge_targets(mode=mode),
            "figure": figure,
            "chart_days": CHART_DAYS,
            "chart_end": end if old else None,
            "in_chart": sum(counts[mode.pk]),
            "can_act": request.membership.has_role(Role.LEAD),
            "drafter": model_for(request.workspace.pk)[0],
        },
    )


@require_POST
@workspace_view(Role.LEAD)
def mode_rename(request: WorkspaceRequest, pk: int) -> HttpResponse:
    mode = modes.failure_mode_rename(
        workspace=request.workspace, mode_id=pk, label=request.POST.get("label", ""),
        actor=request.user,
    )  # fmt: skip
    return redirect("mode_detail", slug=request.workspace.slug, pk=mode.pk)


@require_POST
@workspace_view(Role.LEAD)
def mode_merge(request: WorkspaceRequest, pk: int) -> HttpResponse:
    target = request.POST.get("target", "")
    if not target.isdigit():
        raise InvalidInput("Choose the mode to merge this one into.")
    mode = modes.failure_mode_merge(
        workspace=request.workspace, source_id=pk, target_id=int(target), actor=request.user
    )
    return redirect("mode_detail", slug=request.workspace.slug, pk=mode.pk)


@require_POST
@workspace_view(Role.LEAD)
def mode_split(request: WorkspaceRequest, pk: int) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("incident") if i.isdigit()]
    mode = modes.failure_mode_split(
        workspace=request.workspace, mode_id=pk, incident_ids=ids,
        label=request.POST.get("label", ""), actor=request.user,
    )  # fmt: skip
    return redirect("mode_detail", slug=request.workspace.slug, pk=mode.pk)


@require_POST
@workspace_view(Role.LEAD)
def mode_status(request: WorkspaceRequest, pk: int) -> HttpResponse:
    mode = modes.failure_mode_set_status(
        workspace=request.workspace, mode_id=pk, status=request.POST.get("status", ""),
        actor=request.user,
    )  # fmt: skip
    return redirect("mode_detail", slug=request.workspace.slug, pk=mode.pk)


@require_POST
@workspace_view(Role.LEAD)
def recluster(request: WorkspaceRequest) -> HttpResponse:
    """Queue a re-clustering; the page polls its progress (htmx) until it is done."""
    run, _ = services.cluster_run_request(workspace_id=request.workspace.pk, actor=request.user)
    if request.htmx:
        return render(request, "failures/_cluster_run.html", {"run": run})
    return redirect("mode_list", slug=request.workspace.slug)


@require_GET
@workspace_view()
def cluster_run_status(request: WorkspaceRequest, pk: int) -> HttpResponse:
    run = selectors.cluster_run_get(workspace=request.workspace, pk=pk)
    return render(request, "failures/_cluster_run.html", {"run": run})


@require_GET
@workspace_view()
def trace_incidents(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """The incidents found in one trace (a partial the trace page loads)."""
    trace = trace_get(workspace=request.workspace, pk=pk)
    incidents = selectors.incident_list_for_trace(trace=trace)
    analysis = TraceAnalysis.objects.filter(trace=trace).first()
    same_task = any(
        str((i.stats or {}).get("evidence", "")).startswith("same_task") for i in incidents
    )
    # The steps the diagnosis names as causes, the most confident first: the trace
    # page highlights them and scrolls to the first.
    diagnosed: list[int] = []
    for incident in sorted(incidents, key=lambda i: (-(i.confidence or 0), i.step_index)):
        cause = incident.kind not in ("recovered", "symptom", "weak")
        if cause and incident.step_index >= 0 and incident.step_index not in diagnosed:
            diagnosed.append(incident.step_index)
    return render(
        request,
        "failures/_trace_incidents.html",
        {
            "trace": trace,
            "incidents": incidents,
            "analysis": analysis,
            "same_task": same_task,
            "diagnosed": " ".join(str(step) for step in diagnosed),
            # The model's summary of the run in fixed facets (what its mode is clustered on).
            "facets": next((i.stats for i in incidents if (i.stats or {}).get("facet")), None),
            "comparable": comparison_offer(workspace=request.workspace, trace=trace),
        },  # fmt: skip
    )


@require_GET
@workspace_view()
def trace_compare(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """A failed run beside a successful run of the same task (else of the nearest
    similar task), call by call."""
    trace = trace_get(workspace=request.workspace, pk=pk)
    chosen = request.GET.get("with", "")
    comparison = run_comparison(
        workspace=request.workspace, trace=trace,
        success_pk=int(chosen) if chosen.isdigit() else None,
    )  # fmt: skip
    others = (
        trace_list_by_ids(workspace=request.workspace, ids=comparison.candidate_ids)
        if comparison
        else []
    )
    return render(request, "failures/compare.html", {
        "trace": trace, "comparison": comparison, "others": others,
        "min_similarity": offline.MIN_SIMILARITY * 100,
    })  # fmt: skip


@workspace_view(Role.ADMIN)
def diagnosis_settings_page(request: WorkspaceRequest) -> HttpResponse:
    """The workspace's failure categories and reward thresholds (admins)."""
    current = selectors.diagnosis_settings_get(workspace=request.workspace)
    categories = (
        taxonomy.as_categories(current.categories) if current.categories else list(taxonomy.DEFAULT)
    )
    form = {
        "categories": taxonomy.to_text(categories),
        "default_threshold": "" if current.default_reward_threshold is None
        else str(current.default_reward_threshold),
        "thresholds": "\n".join(f"{a} = {t}" for a, t in sorted(current.reward_thresholds.items())),
        "write_tools": "\n".join(current.write_tools or []),
        "read_tools": "\n".join(current.read_tools or []),
        "min_precision": str(current.min_precision),
    }  # fmt: skip
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "")[:50_000] for k in form}
        try:
            default = form["default_threshold"].strip()
            diagnosis_settings.diagnosis_settings_save(
                workspace=request.workspace,
                categories_text=form["categories"],
                default_threshold=_threshold(default),
                thresholds_text=form["thresholds"],
                write_tools_text=form["write_tools"],
                read_tools_text=form["read_tools"],
                min_precision=_min_precision(form["min_precision"].strip()),
                actor=request.user,
            )
        except InvalidInput as exc:
            error = str(exc)
        else:
            messages.success(
                request, "Diagnosis settings saved. They apply to runs diagnosed from now on."
            )
            return redirect("diagnosis_settings", request.workspace.slug)
    return render(
        request,
        "failures/diagnosis_settings.html",
        {
            "form": form,
            "error": error,
            "groups": taxonomy.GROUPS,
            "evidence": evidence.table(current.min_precision),
        },
        status=422 if error else 200,
    )


def _min_precision(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            "The minimum precision is a share between 0 and 1, such as 0.5."
        ) from None


def _threshold(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput("The default reward threshold must be a number, such as 0.8.") from None
