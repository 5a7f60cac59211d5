"""Policy checks (`Failures → Policy checks`): each agent's written policy, the rules
the model drafted from it, and a lead's edits and decisions (failures/policy.py).

Viewers see every page; leads edit, draft and decide. A bad request (an empty rule,
no model) comes back as a message on the page it came from.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from hivemind_web.celery import enqueue
from workspaces.decorators import workspace_view
from workspaces.errors import InvalidInput
from workspaces.llm import model_for
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from . import policy, selectors
from .mining import RECHECK_RUNS
from .models import AgentPolicy, RuleStatus


def _tools(raw: str) -> list[str]:
    return [t.strip() for t in raw.replace("\n", ",").split(",") if t.strip()]


@require_GET
@workspace_view()
def policy_list(request: WorkspaceRequest) -> HttpResponse:
    model, reason = model_for(request.workspace.pk)
    return render(request, "failures/policies.html", {
        "rows": selectors.policy_overview(workspace=request.workspace),
        "model": model, "no_model": reason,
        "can_act": request.membership.has_role(Role.LEAD),
    })  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def policy_open(request: WorkspaceRequest) -> HttpResponse:
    found = policy.policy_open(workspace=request.workspace, agent=request.POST.get("agent", ""),
                               actor=request.user)  # fmt: skip
    return redirect("policy_detail", slug=request.workspace.slug, pk=found.pk)


@require_GET
@workspace_view()
def policy_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    found = selectors.policy_get(workspace=request.workspace, pk=pk)
    model, reason = model_for(request.workspace.pk)
    rules = list(found.rules.all())
    named = selectors.policy_rule_incidents(workspace=request.workspace, policy=found)
    for rule in rules:
        rule.named = named.get(rule.pk, 0)  # type: ignore[attr-defined]
    return render(request, "failures/policy.html", {
        "policy": found, "rules": rules, "model": model, "no_model": reason,
        "tools": policy.agent_tools(workspace=request.workspace, agent=found.agent),
        "approved": sum(r.status == RuleStatus.APPROVED for r in rules),
        "can_act": request.membership.has_role(Role.LEAD),
    })  # fmt: skip


@require_POST
@workspace_view(Role.LEAD)
def policy_text_save(request: WorkspaceRequest, pk: int) -> HttpResponse:
    found = selectors.policy_get(workspace=request.workspace, pk=pk)
    policy.policy_text_save(policy=found, text=request.POST.get("text", ""), actor=request.user)
    messages.success(request, "Policy saved.")
    return redirect("policy_detail", slug=request.workspace.slug, pk=found.pk)


@require_POST
@workspace_view(Role.LEAD)
def policy_draft(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """Queue the model's drafting of rules; the page shows them when they arrive."""
    found = selectors.policy_get(workspace=request.workspace, pk=pk)
    if model_for(request.workspace.pk)[0] is None:
        raise InvalidInput("Drafting rules needs a model: " + model_for(request.workspace.pk)[1])
    if not found.text.strip():
        raise InvalidInput("Paste the agent's policy (or system prompt) first.")
    AgentPolicy.objects.filter(pk=found.pk).update(drafting=True)
    enqueue("failures.tasks.draft_policy_rules", found.pk, request.user.pk)
    messages.success(request, "The model is drafting rules from the policy; they appear here "
                              "as proposed, for you to edit, approve or reject.")  # fmt: skip
    return redirect("policy_detail", slug=request.workspace.slug, pk=found.pk)


@require_POST
@workspace_view(Role.LEAD)
def policy_rule_add(request: WorkspaceRequest, pk: int) -> HttpResponse:
    found = selectors.policy_get(workspace=request.workspace, pk=pk)
    rule = policy.policy_rule_add(policy=found, text=request.POST.get("text", ""),
                                  tools=_tools(request.POST.get("tools", "")), actor=request.user)  # fmt: skip
    _recheck(request, found.pk, f"Added R{rule.number}, approved.", True)
    return redirect("policy_detail", slug=request.workspace.slug, pk=found.pk)


@require_POST
@workspace_view(Role.LEAD)
def policy_rule_change(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """Edit a rule's text and tools, or approve or reject it."""
    rule = selectors.policy_rule_get(workspace=request.workspace, pk=pk)
    decision = request.POST.get("decision", "")
    was = rule.status
    if decision:
        policy.policy_rule_decide(rule=rule, status=decision, actor=request.user)
        done = f"R{rule.number} {rule.get_status_display().lower()}."
    else:
        policy.policy_rule_edit(rule=rule, text=request.POST.get("text", ""),
                                tools=_tools(request.POST.get("tools", "")), actor=request.user)  # fmt: skip
        done = f"R{rule.number} saved (rule set v{rule.policy.version})."
    _recheck(
        request,
        rule.policy_id,
        done,
        rule.status == RuleStatus.APPROVED or was == RuleStatus.APPROVED,
    )
    return redirect("policy_detail", slug=request.workspace.slug, pk=rule.policy_id)


def _recheck(request: WorkspaceRequest, policy_id: int, done: str, changed_checks: bool) -> None:
    """A change to what is checked re-checks the agent's failed runs (with a model)."""
    if changed_checks and model_for(request.workspace.pk)[0] is not None:
        enqueue("failures.tasks.recheck_policy", policy_id)
        done += (f" This agent's failed runs (the newest {RECHECK_RUNS}) are being "
                 "checked again against the rules as they now stand; model calls count on "
                 "the budget.")  # fmt: skip
    messages.success(request, done)
