"""Failure-mode pages: list with search, detail with lead actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from hivemind_web.celery import enqueue
from workspaces.decorators import workspace_view
from workspaces.errors import DomainError, NotFound
from workspaces.models import Role

from . import failure_modes, selectors
from .charts import incidents_per_day_figure
from .clustering import sparkline
from .search import SearchFilters, incident_search

SPARK_DAYS = 30


@require_GET
@workspace_view()
def mode_list(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    modes = list(selectors.failure_mode_list(workspace=workspace))
    series = selectors.daily_incident_counts(
        workspace=workspace, mode_ids=[m.pk for m in modes], days=SPARK_DAYS
    )
    failed = selectors.failed_trace_count(workspace=workspace)
    failed_by_mode = selectors.failed_traces_by_mode(workspace=workspace)
    rows = [
        {
            "mode": m,
            "spark": sparkline(series.get(m.pk, [])),
            "recent": sum(series.get(m.pk, [])),
            # Only failed traces count: agents that recovered from the error did not fail.
            "share": (failed_by_mode.get(m.pk, 0) / failed) if failed else None,
            "skills": list(m.skills.all()),
        }
        for m in modes
    ]
    search = _search(request, workspace)
    context = {
        "rows": rows,
        "search": search,
        "q": request.GET.get("q", ""),
        "noise": selectors.noise_incident_list(workspace=workspace, limit=20),
        "noise_count": selectors.noise_incident_count(workspace=workspace),
        "pending": selectors.pending_embedding_count(workspace=workspace),
        "last_run": failure_modes.latest_run(workspace_id=workspace.pk),
        "can_act": request.membership.has_role(Role.LEAD),  # type: ignore[attr-defined]
    }
    if request.htmx and request.htmx.target == "search-results":
        return render(request, "traces/_search_results.html", context)
    return render(request, "traces/modes.html", context)


def _search(request: HttpRequest, workspace):  # type: ignore[no-untyped-def]
    q = request.GET.get("q", "").strip()[:500]
    if not q:
        return None
    return incident_search(workspace=workspace, query=q, filters=SearchFilters(), k=15)


@require_GET
@workspace_view()
def mode_detail(request: HttpRequest, pk: int) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    try:
        mode = selectors.failure_mode_get(workspace=workspace, pk=pk)
    except NotFound:
        raise Http404("No such failure mode.") from None
    days = 60
    counts = selectors.daily_incident_counts(workspace=workspace, mode_ids=[mode.pk], days=days)
    figure = incidents_per_day_figure(
        counts[mode.pk],
        last_day=timezone.now().date(),
        title=f"Incidents per day, last {days} days",
    )
    return render(
        request,
        "traces/mode_detail.html",
        {
            "mode": mode,
            "incidents": selectors.mode_incidents_nearest(mode=mode),
            "tools": selectors.mode_tools(mode=mode),
            "tasks": selectors.mode_tasks(mode=mode),
            "traces": selectors.mode_example_traces(mode=mode),
            "merge_targets": selectors.mode_merge_targets(mode=mode),
            "figure": figure,
            "can_act": request.membership.has_role(Role.LEAD),  # type: ignore[attr-defined]
            # Reverse accessor: traces never imports skills.
            "latest_job": mode.distillation_jobs.order_by("-created_at").first(),
            "drafter_offline": not settings.ANTHROPIC_API_KEY,
        },
    )


def _act(request: HttpRequest, pk: int, action) -> HttpResponse:  # type: ignore[no-untyped-def]
    workspace = request.workspace  # type: ignore[attr-defined]
    try:
        result = action(workspace)
    except NotFound:
        raise Http404("No such failure mode.") from None
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("mode_detail", slug=workspace.slug, pk=pk)
    return redirect("mode_detail", slug=workspace.slug, pk=result.pk)


@require_POST
@workspace_view(Role.LEAD)
def mode_rename(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda ws: failure_modes.failure_mode_rename(
        workspace=ws, mode_id=pk, label=request.POST.get("label", ""), actor=request.user))  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def mode_merge(request: HttpRequest, pk: int) -> HttpResponse:
    target = request.POST.get("target", "")
    if not target.isdigit():
        messages.error(request, "Choose the mode to merge this one into.")
        return redirect("mode_detail", slug=request.workspace.slug, pk=pk)  # type: ignore[attr-defined]
    return _act(request, pk, lambda ws: failure_modes.failure_mode_merge(
        workspace=ws, source_id=pk, target_id=int(target), actor=request.user))  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def mode_split(request: HttpRequest, pk: int) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("incident") if i.isdigit()]
    return _act(request, pk, lambda ws: failure_modes.failure_mode_split(
        workspace=ws, mode_id=pk, incident_ids=ids, label=request.POST.get("label", ""),
        actor=request.user))  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def mode_status(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda ws: failure_modes.failure_mode_set_status(
        workspace=ws, mode_id=pk, status=request.POST.get("status", ""), actor=request.user))  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def recluster(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    if enqueue("traces.tasks.recluster_workspace", workspace.pk):
        messages.success(request, "Re-clustering started; modes update when it finishes.")
    else:
        messages.error(request, "The task queue is unreachable; the hourly re-cluster will run it.")
    return redirect("mode_list", slug=workspace.slug)
