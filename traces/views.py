"""Trace pages: the list with filters, and one trace with its steps."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workspaces.decorators import workspace_view
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from .forms import TraceFilterForm
from .models import Trace
from .selectors import session_traces, step_list, trace_agent_list, trace_get, trace_list

PAGE_SIZE = 50


@require_GET
@workspace_view()
def trace_list_view(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = TraceFilterForm(request.GET, agents=trace_agent_list(workspace=workspace))
    traces = trace_list(workspace=workspace, filters=form.filters())
    page = Paginator(traces, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    if request.htmx and request.htmx.target == "trace-results":
        return render(request, "traces/_trace_results.html", context)
    return render(request, "traces/list.html", context)


# Bookkeeping kept on the trace by hook and OTLP capture, not for people.
INTERNAL_METADATA = {"hook_steps", "otlp_spans", "subagents", "task_from_folder",
                     "propagated_errors", "turn_failed"}  # fmt: skip


@require_GET
@workspace_view()
def trace_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    trace = trace_get(workspace=request.workspace, pk=pk)
    steps = list(step_list(trace=trace))
    depth: dict[int, int] = {}
    for step in steps:  # parents start before their children: one pass in index order
        parent = step.parent_index
        depth[step.index] = min(depth[parent] + 1, 4) if parent in depth else 0
        step.depth = depth[step.index]  # type: ignore[attr-defined]
    _waterfall(trace, steps)
    metadata = {k: v for k, v in trace.metadata.items() if k not in INTERNAL_METADATA}
    return render(
        request,
        "traces/detail.html",
        {
            "trace": trace,
            "steps": steps,
            "metadata": metadata,
            "propagated": sorted(
                (int(k), v) for k, v in trace.metadata.get("propagated_errors", {}).items()
            ),
            "outcomes": trace.outcomes.order_by("-received_at"),
            "failed_checks": [c for c in trace.checks or [] if not c.get("passed")],
            "passed_checks": [c for c in trace.checks or [] if c.get("passed")],
            "session_traces": session_traces(trace=trace),
            "timed": any(getattr(step, "bar", None) for step in steps),
        },
    )


def _waterfall(trace: Trace, steps: list) -> None:
    """Each timed step's bar on the trace's time line: where it starts and how
    long it runs, as percentages of the whole trace (the waterfall column)."""
    timed = [s for s in steps if s.started_at is not None]
    if not timed:
        return
    start = min(s.started_at for s in timed)
    ends = [s.started_at.timestamp() + (s.duration_ms or 0) / 1000 for s in timed]
    if trace.ended_at:
        ends.append(trace.ended_at.timestamp())
    total = max(max(ends) - start.timestamp(), 0.001)
    for step in timed:
        offset = (step.started_at.timestamp() - start.timestamp()) / total * 100
        width = (step.duration_ms or 0) / 1000 / total * 100
        step.bar = {
            "left": round(min(offset, 99.5), 2),
            "width": round(max(min(width, 100 - offset), 0.5), 2),
        }


@require_GET
@workspace_view(Role.ADMIN)
def retention_partial(request: WorkspaceRequest) -> HttpResponse:
    """What the next daily purge deletes, now or under `?days=N` (the Settings page
    loads it beside the retention field, and in the warning before a cut)."""
    from .services import retention_preview

    raw = request.GET.get("days", "")
    days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 3650 else None
    count = retention_preview(workspace_id=request.workspace.pk, days=days)
    return render(request, "traces/_retention.html", {"count": count, "days": days})
