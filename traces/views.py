"""Trace pages: the list with filters, and one trace with its steps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_POST

from workspaces.decorators import workspace_view
from workspaces.errors import InvalidInput
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from .forms import TraceFilterForm
from .models import Trace
from .selectors import (
    TraceFilters,
    TraceSearch,
    saved_view_get,
    saved_view_list,
    session_traces,
    step_list,
    trace_agent_list,
    trace_get,
    trace_list,
    trace_search,
)
from .services import saved_view_delete, saved_view_save

PAGE_SIZE = 50
SEARCH_COUNT_CAP = 1000
# The list's sortable columns (selectors.SORTS), in the order shown.
COLUMNS = [("status", "Status"), ("steps", "Steps"), ("errors", "Errors"), ("tokens", "Tokens"),
           ("cost", "Cost"), ("duration", "Duration"), ("started", "Started")]  # fmt: skip


class SearchPaginator(Paginator):
    """A search counts its matches up to SEARCH_COUNT_CAP (the page says "more than"):
    counting every run a common word occurs in would cost more than the page. Sorted
    newest first (the default), a page is read as the newest matches up to it
    (`selectors.trace_search`); sorted by another column, every match is read."""

    def __init__(self, workspace: Any, filters: TraceFilters, per_page: int) -> None:
        self.workspace, self.filters = workspace, filters
        self._read: tuple[int, TraceSearch] | None = None
        super().__init__(trace_list(workspace=workspace, filters=filters), per_page)

    def _search(self, number: Any) -> TraceSearch:
        """The newest matches up to page `number` (as asked for: not yet validated)."""
        try:
            pages = min(max(1, int(number)), SEARCH_COUNT_CAP // self.per_page + 2)
        except (TypeError, ValueError):
            pages = 1
        window = pages * self.per_page
        if self._read is None or self._read[0] < window:
            found = trace_search(
                workspace=self.workspace, filters=self.filters, window=window, cap=SEARCH_COUNT_CAP
            )
            self._read = (window, found)
        return self._read[1]

    @cached_property
    def count(self) -> int:
        if self.filters.windowed:
            return self._search(1).count
        return cast(QuerySet[Trace], self.object_list)[: SEARCH_COUNT_CAP + 1].count()

    def page(self, number: Any) -> Any:
        if not self.filters.windowed:
            return super().page(number)
        found = self._search(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = found.ids[bottom : bottom + self.per_page]
        rows = trace_list(workspace=self.workspace, filters=replace(self.filters, q=""))
        return Page(list(rows.filter(pk__in=ids)), number, self)


@require_GET
@workspace_view()
def trace_list_view(request: WorkspaceRequest) -> HttpResponse:
    context = _list_context(request, request.GET)
    if request.htmx and request.htmx.target == "trace-results":
        return render(request, "traces/_trace_results.html", context)
    return render(request, "traces/list.html", context)


def _list_context(request: WorkspaceRequest, params: QueryDict) -> dict[str, Any]:
    workspace = request.workspace
    form = TraceFilterForm(params, agents=trace_agent_list(workspace=workspace))
    filters = form.filters()
    traces = trace_list(workspace=workspace, filters=filters)
    paginator = (
        SearchPaginator(workspace, filters, PAGE_SIZE)
        if filters.q
        else Paginator(traces, PAGE_SIZE)
    )
    page = paginator.get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    sort = form.cleaned_data.get("sort", "") if form.is_valid() else ""
    labels = dict(COLUMNS)
    context = {
        "form": form, "page": page, "capped": filters.q and paginator.count > SEARCH_COUNT_CAP,
        "cap": SEARCH_COUNT_CAP, "query": query.urlencode(), "sort": sort,
        "columns": COLUMNS, "sort_label": labels.get(sort.lstrip("-"), "").lower()
        + (" (highest first)" if sort.startswith("-") else " (lowest first)"),
        "saved_query": form.query_string(),
        "saved_views": saved_view_list(workspace=workspace, user=request.user),
    }  # fmt: skip
    return context


@require_POST
@workspace_view()
def saved_view_save_view(request: WorkspaceRequest) -> HttpResponse:
    """Save the list's current filters under a name: the person's own view."""
    workspace = request.workspace
    params = QueryDict(request.POST.get("query", ""))
    form = TraceFilterForm(params, agents=trace_agent_list(workspace=workspace))
    try:
        view = saved_view_save(workspace=workspace, user=request.user,
                               name=request.POST.get("name", ""), query=form.query_string())  # fmt: skip
    except InvalidInput as exc:
        context = _list_context(request, params)
        context.update(save_error=str(exc), save_name=request.POST.get("name", ""))
        return render(request, "traces/list.html", context, status=400)
    messages.success(request, f"Saved the view “{view.name}”: it is in Saved views, yours only.")
    return redirect(reverse("trace_list", kwargs={"slug": workspace.slug}) + "?" + view.query)


@require_POST
@workspace_view()
def saved_view_delete_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    view = saved_view_get(workspace=request.workspace, user=request.user, pk=pk)
    saved_view_delete(view=view)
    messages.success(request, f"Deleted the saved view “{view.name}”.")
    return redirect("trace_list", slug=request.workspace.slug)


# Bookkeeping kept on the trace by hook and OTLP capture and importers, not for people
# (where an outcome came from is shown beside the status).
INTERNAL_METADATA = {"hook_session", "hook_steps", "otlp_spans", "outcome_from", "subagents",
                     "task_from_folder", "propagated_errors", "turn_failed",
                     "inferred_status", "transcript", "tool_use_ids", "import_digest",
                     "event_costs_usd", "otlp_tools", "otlp_conventions", "otlp_bare", "replaces_hook_steps",
                     "status_from_session", "dated_by_arrival", "hook_import_digest"}  # fmt: skip


@require_GET
@workspace_view()
def trace_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    trace = trace_get(workspace=request.workspace, pk=pk)
    steps = list(step_list(trace=trace))
    roots = _tree(steps)
    _waterfall(trace, steps)
    metadata = {k: v for k, v in trace.metadata.items() if k not in INTERNAL_METADATA}
    outcomes = list(trace.outcomes.order_by("-received_at"))
    return render(
        request,
        "traces/detail.html",
        {
            "trace": trace,
            "steps": steps,
            "roots": roots,
            "errors": sum(1 for step in steps if step.is_error),
            "nested": any(step.children for step in steps),  # type: ignore[attr-defined]
            "metadata": metadata,
            "propagated": sorted(
                (int(k), v) for k, v in trace.metadata.get("propagated_errors", {}).items()
            ),
            "outcomes": outcomes,
            "status_reason": _status_reason(trace, outcomes),
            "failed_checks": [c for c in trace.checks or [] if not c.get("passed")],
            "passed_checks": [c for c in trace.checks or [] if c.get("passed")],
            "session_traces": session_traces(trace=trace),
            "timed": any(getattr(step, "bar", None) for step in steps),
        },
    )


def _status_reason(trace: Any, outcomes: list) -> str:
    """Why the run has its status when the agent reported none and it was read from
    the session (Claude Code, Codex, Cursor hooks: `claude_code.session_status`);
    "" once an outcome was posted or the status changed otherwise."""
    inferred = trace.metadata.get("inferred_status")
    if outcomes or not isinstance(inferred, dict) or inferred.get("status") != trace.status:
        return ""
    return str(inferred.get("reason") or "")


def _tree(steps: list) -> list:
    """Steps nested under the step they ran inside (`parent_index`: a subagent, a
    parent span), in time order at each level; a step whose parent is missing, or
    that would nest inside itself, stays at the top. Each step gets `children`,
    `depth` and `side` (the agent's own step, a simulated user's call, or a tool
    result)."""
    by_index = {step.index: step for step in steps}
    for step in steps:
        step.children = []
        step.side = (
            "user" if step.name.startswith("user.") else
            "result" if step.kind == "tool_result" else "agent"
        )  # fmt: skip
    roots = []
    for step in steps:
        parent, seen = by_index.get(step.parent_index), {step.index}
        ancestor = parent
        while ancestor is not None and ancestor.index not in seen:  # no cycles
            seen.add(ancestor.index)
            ancestor = by_index.get(ancestor.parent_index)
        if parent is None or ancestor is not None:
            roots.append(step)
        else:
            parent.children.append(step)

    def place(level: list, depth: int) -> None:
        for step in level:
            step.depth = depth
            place(step.children, depth + 1)

    place(roots, 0)
    return roots


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
