from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from workspaces.decorators import workspace_view
from workspaces.errors import DomainError, NotFound
from workspaces.models import Role

from .forms import SnapshotForm, TraceFilterForm
from .models import Snapshot
from .selectors import (
    failure_mode_list,
    incident_list_for_trace,
    snapshot_list,
    step_list,
    trace_agent_list,
    trace_get,
    trace_list,
)
from .snapshots import SnapshotFilter, snapshot_create, snapshot_file_response

PAGE_SIZE = 50


@require_GET
@workspace_view()
def trace_list_view(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    form = TraceFilterForm(request.GET, agents=trace_agent_list(workspace=workspace))
    traces = trace_list(workspace=workspace, filters=form.filters())
    page = Paginator(traces, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    if request.htmx and request.htmx.target == "trace-results":
        return render(request, "traces/_trace_results.html", context)
    return render(request, "traces/list.html", context)


@require_GET
@workspace_view()
def trace_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        trace = trace_get(workspace=request.workspace, pk=pk)  # type: ignore[attr-defined]
    except NotFound:
        raise Http404("No such trace.") from None
    return render(
        request,
        "traces/detail.html",
        {
            "trace": trace,
            "steps": step_list(trace=trace),
            "incidents": incident_list_for_trace(trace=trace),
            "outcomes": trace.outcomes.order_by("-received_at"),
        },
    )


@workspace_view()
def snapshot_page(request: HttpRequest) -> HttpResponse:
    """Training snapshots: the list, and (leads) a form to make one."""
    workspace = request.workspace  # type: ignore[attr-defined]
    form_kwargs = {"agents": trace_agent_list(workspace=workspace),
                   "modes": failure_mode_list(workspace=workspace)}  # fmt: skip
    can_make = request.membership.has_role(Role.LEAD)  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        if not can_make:
            return render(request, "workspaces/forbidden.html", status=403)
        form = SnapshotForm(request.POST, **form_kwargs)
        if form.is_valid():
            data = form.cleaned_data
            try:
                snapshot = snapshot_create(
                    workspace=workspace, name=data.pop("name"), actor=request.user,
                    filters=SnapshotFilter(**{k: v for k, v in data.items()
                                              if v not in (None, "")}),
                )  # fmt: skip
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                messages.success(request, f"Snapshot v{snapshot.version} made.")
                return redirect("snapshot_list", slug=workspace.slug)
        status = 422
    elif request.method != "GET":
        return HttpResponse(status=405)
    else:
        form = SnapshotForm(**form_kwargs)
    return render(request, "traces/snapshots.html", {
        "form": form, "snapshots": snapshot_list(workspace=workspace), "can_make": can_make, "files": list(Snapshot.FILES),
    }, status=status)  # fmt: skip


@require_GET
@workspace_view()
def snapshot_download(request: HttpRequest, version: int, filename: str) -> HttpResponse:
    try:
        workspace = request.workspace  # type: ignore[attr-defined]
        return snapshot_file_response(workspace=workspace, version=version, filename=filename)
    except NotFound as exc:
        raise Http404(exc.detail) from None
