"""Trace pages: the list with filters, and one trace with its steps."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workspaces.decorators import workspace_view
from workspaces.requests import WorkspaceRequest

from .forms import TraceFilterForm
from .selectors import step_list, trace_agent_list, trace_get, trace_list

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
        },
    )
