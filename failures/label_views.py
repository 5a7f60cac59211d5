"""The annotation queue (`Failures → Review runs`), labels and their candidates.

Leads label and decide; viewers see every page and every label. Writes are in
failures/labels.py; the keyboard is static/js/review.js.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from traces.messages import chat_text
from traces.selectors import trace_get
from workspaces.decorators import workspace_view
from workspaces.errors import InvalidInput
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from . import labels
from .models import (
    NOT_CAUSES,
    TRACE_LEVEL_INDEX,
    Incident,
    IncidentKind,
    SkipReason,
    TraceAnalysis,
)
from .selectors import run_calls

# Outputs longer than this are collapsed on the review page.
LONG = 240
USER_PREFIXES = ("user.", "user_")


def _filters(request: WorkspaceRequest) -> dict[str, str]:
    source = request.POST if request.method == "POST" else request.GET
    agent, period = source.get("agent", "").strip(), source.get("period", "").strip()
    return {k: v for k, v in (("agent", agent), ("period", period)) if v}


def _run_url(slug: str, trace_id: int | None, filters: dict[str, str]) -> str:
    base = (reverse("review_run", args=[slug, trace_id]) if trace_id
            else reverse("review_queue", args=[slug]))  # fmt: skip
    return base + (f"?{urlencode(filters)}" if filters else "")


@require_http_methods(["GET"])
@workspace_view()
def review_queue(request: WorkspaceRequest) -> HttpResponse:
    """The first run of the queue, or the empty queue with what was done."""
    filters = _filters(request)
    first = (
        labels.review_queue(workspace=request.workspace, **filters)
        .values_list("trace_id", flat=True)
        .first()
    )
    if first is not None and request.GET.get("done") != "1":
        return redirect(_run_url(request.workspace.slug, first, filters))
    return render(request, "failures/review_empty.html", _header(request, filters))


def _header(request: WorkspaceRequest, filters: dict[str, str]) -> dict[str, Any]:
    return {
        "filters": filters,
        "agents": labels.queue_agents(workspace=request.workspace),
        "periods": [("", "Any time"), ("7", "Last 7 days"), ("30", "Last 30 days"),
                    ("90", "Last 90 days"), ("365", "Last year")],
        "counts": labels.label_counts(workspace=request.workspace),
        "recent": list(labels.label_list(workspace=request.workspace, limit=10)),
        "can_label": request.membership.has_role(Role.LEAD),
    }  # fmt: skip


def _step_rows(trace_id: int, marked: dict[int, list[Incident]]) -> list[dict[str, Any]]:
    from traces.models import Step

    rows = []
    for step in Step.objects.filter(trace_id=trace_id).order_by("index"):
        shown = step.error or _text(step.output)
        rows.append({
            "step": step, "input": _newest(step.input), "shown": shown,
            "long": len(shown) > LONG, "short": shown[:LONG],
            "user": "the user" if step.kind == "user_prompt" else
                    "simulated user's tool" if step.name.startswith(USER_PREFIXES) else "",
            "incidents": marked.get(step.index, []),
        })  # fmt: skip
    return rows


def _text(value: Any) -> str:
    import json

    if value in (None, "", {}, []):
        return ""
    return value if isinstance(value, str) else chat_text(value) or json.dumps(value, default=str)


def _newest(value: Any) -> str:
    """A step's input on one short line: of a model call's messages the newest, what
    the call answered (its history, system prompt first, would fill the line)."""
    if isinstance(value, list) and len(value) > 1 and (newest := chat_text(value[-1:])):
        return f"… {newest}"
    return _text(value)


@require_http_methods(["GET", "POST"])
@workspace_view()
def review_run(request: WorkspaceRequest, trace_pk: int) -> HttpResponse:
    workspace = request.workspace
    trace = trace_get(workspace=workspace, pk=trace_pk)
    filters = _filters(request)
    previous, following, position, total = labels.queue_neighbours(
        workspace=workspace, trace_id=trace.pk, **filters
    )
    if request.method == "POST":
        if not request.membership.has_role(Role.LEAD):
            return render(request, "workspaces/forbidden.html",
                          {"needed_role": Role.LEAD.label}, status=403)  # fmt: skip
        author = labels.Author(user=request.user)
        try:
            if request.POST.get("skip"):
                labels.run_skip(workspace=workspace, trace=trace,
                                reason=request.POST["skip"], author=author)  # fmt: skip
                messages.success(request, f"Skipped {trace.external_id}: "
                                 f"{SkipReason(request.POST['skip']).label.lower()}.")  # fmt: skip
            else:
                step = request.POST.get("step", "")
                label = labels.label_save(
                    workspace=workspace, trace=trace,
                    step_index=int(step) if step.lstrip("-").isdigit() else -2,
                    category=request.POST.get("category", ""),
                    sentence=request.POST.get("sentence", ""), fix=request.POST.get("fix", ""),
                    author=author,
                )  # fmt: skip
                messages.success(request, f"Labelled {trace.external_id}. Runs like it are "
                                 "being looked for: see the label's candidates.")  # fmt: skip
                request.session["last_label"] = label.pk
        except InvalidInput as exc:
            context = _run_context(request, trace, filters, previous, following, position, total)
            context["error"] = str(exc)
            context["posted"] = request.POST
            return render(request, "failures/review_run.html", context, status=400)
        # The next run of the queue as it was before this one left it.
        return redirect(_run_url(workspace.slug, following, filters | ({"done": "1"}
                                                                       if not following else {})))  # fmt: skip
    return render(request, "failures/review_run.html",
                  _run_context(request, trace, filters, previous, following, position, total))  # fmt: skip


def _run_context(
    request: WorkspaceRequest, trace: Any, filters: dict[str, str], previous: int | None,
    following: int | None, position: int, total: int,
) -> dict[str, Any]:  # fmt: skip
    workspace = request.workspace
    incidents = list(Incident.objects.filter(trace=trace).order_by("step_index"))
    marked: dict[int, list[Incident]] = {}
    for incident in incidents:
        marked.setdefault(incident.step_index, []).append(incident)
    rows = _step_rows(trace.pk, marked)
    diagnosed = [i.step_index for i in incidents
                 if i.source != "human" and i.kind not in NOT_CAUSES and i.step_index >= 0]  # fmt: skip
    # No cause: the step of a weak lead is where a lead most likely starts.
    diagnosed = diagnosed or [
        i.step_index for i in incidents if i.kind == IncidentKind.WEAK and i.step_index >= 0
    ]
    causes = [i for i in incidents if i.source != "human" and i.kind not in NOT_CAUSES]
    # Its only causes are failed checks of the outcome: the harness said the run
    # failed, and nothing named the step (the Failure modes page counts it so too).
    check_only = bool(causes) and all((i.stats or {}).get("evidence") == "check" for i in causes)
    twin = labels.successful_same_task(workspace=workspace, trace=trace)
    twin_calls: list[str] = []
    if twin is not None:
        twin_calls = [
            s.name for s in run_calls(workspace_id=twin.workspace_id, trace_ids=[twin.pk])[twin.pk]
        ][:40]
    last = request.session.get("last_label")
    last_label = None
    if last:
        try:
            last_label = labels.label_get(workspace=workspace, pk=int(last))
        except Exception:  # removed meanwhile
            last_label = None
    cats = labels.categories_of(workspace)
    return _header(request, filters) | {
        "trace": trace, "rows": rows, "analysis": TraceAnalysis.objects.filter(trace=trace).first(),
        "check_only": check_only,
        "previous_url": _run_url(workspace.slug, previous, filters) if previous else "",
        "next_url": _run_url(workspace.slug, following, filters) if following else "",
        "position": position, "total": total, "categories": cats,
        # Nothing points at a step: none is chosen for the lead (the last one was,
        # and a label is the loop's most trusted evidence).
        "focus_step": diagnosed[0] if diagnosed else None,
        "labels": list(labels.labels_of_trace(workspace=workspace, trace=trace)),
        "twin": twin, "twin_calls": twin_calls, "last_label": last_label,
        "skip_reasons": SkipReason.choices, "whole_run": TRACE_LEVEL_INDEX,
    }  # fmt: skip


@require_http_methods(["GET"])
@workspace_view()
def label_list(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "failures/labels.html", _header(request, {}) | {
        "labels": list(labels.label_list(workspace=request.workspace)),
    })  # fmt: skip


@require_http_methods(["GET"])
@workspace_view()
def label_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    label = labels.label_get(workspace=request.workspace, pk=pk)
    candidates = list(labels.label_candidates(workspace=request.workspace, label=label))
    return render(request, "failures/label_detail.html", {
        "label": label, "candidates": candidates,
        "waiting": [c for c in candidates if c.state == "offered"],
        "decided": [c for c in candidates if c.state != "offered"],
        "can_label": request.membership.has_role(Role.LEAD),
        "still_failed": labels.still_failed(label),
        "looking": not candidates and label.created_at is not None,
    })  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def label_decide(request: WorkspaceRequest, pk: int) -> HttpResponse:
    label = labels.label_get(workspace=request.workspace, pk=pk)
    ids = [int(i) for i in request.POST.getlist("candidate") if i.isdigit()]
    confirm = request.POST.get("decision") == "confirm"
    n = labels.candidates_decide(workspace=request.workspace, label=label, candidate_ids=ids,
                                 confirm=confirm, author=labels.Author(user=request.user))  # fmt: skip
    messages.success(request, f"{'Confirmed' if confirm else 'Rejected'} {n} candidate"
                     f"{'s' if n != 1 else ''}.")  # fmt: skip
    return redirect("label_detail", slug=request.workspace.slug, pk=label.pk)


@require_POST
@workspace_view(Role.LEAD)
def label_remove(request: WorkspaceRequest, pk: int) -> HttpResponse:
    label = labels.label_get(workspace=request.workspace, pk=pk)
    trace_id = label.trace_id
    labels.label_remove(workspace=request.workspace, label=label,
                        author=labels.Author(user=request.user))  # fmt: skip
    messages.success(request, "Label removed; the run is back in the queue.")
    return redirect("review_run", slug=request.workspace.slug, trace_pk=trace_id)
