"""Reads for workspaces. Everything that touches workspace data is scoped here."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from .errors import NotFound, PermissionDenied
from .filtering import filter_given
from .models import (
    ROLE_RANK,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    ModelSettings,
    PiiPolicy,
    Role,
    Workspace,
)


def workspace_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Workspace]:
    if not user.is_authenticated:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user: User, slug: str) -> Membership:
    """The user's membership in the workspace `slug`.

    Raises NotFound (never PermissionDenied) for a workspace the user is not in,
    so a URL does not even reveal that another workspace exists.
    """
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace__slug=slug)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such workspace.")
    return membership


def membership_require(*, workspace: Workspace, user: User, role: str, action: str) -> Membership:
    """The user's membership if its role is at least `role`; else PermissionDenied
    saying who may `action` (e.g. "approve skills"). The one role check that
    services run, whatever the caller (page, API, command) already checked."""
    membership = (
        Membership.objects.filter(workspace=workspace, user=user).first()
        if user.is_authenticated
        else None
    )
    if membership is None or not membership.has_role(role):
        who = " and ".join(
            f"{r.label.lower()}s"
            for r in sorted(Role, key=ROLE_RANK.__getitem__)
            if ROLE_RANK[r] >= ROLE_RANK[Role(role)]
        )
        raise PermissionDenied(f"Only {who} can {action}.")
    return membership


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return workspace.memberships.select_related("user").order_by("user__username")


def invitation_list_open(*, workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations not yet accepted, withdrawn or expired."""
    from django.utils import timezone

    return Invitation.objects.filter(
        workspace=workspace, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by")


def api_key_get(*, workspace: Workspace, pk: int) -> ApiKey:
    api_key = ApiKey.objects.filter(workspace=workspace, pk=pk).first()
    if api_key is None:
        raise NotFound("No such API key in this workspace.")
    return api_key


def audit_event_list(*, workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(workspace=workspace).select_related("actor")


def membership_get_by_pk(*, workspace: Workspace, pk: int) -> Membership:
    membership = (
        Membership.objects.filter(workspace=workspace, pk=pk).select_related("user").first()
    )
    if membership is None:
        raise NotFound("No such member in this workspace.")
    return membership


def pii_policy_get(*, workspace: Workspace) -> PiiPolicy:
    return PiiPolicy.objects.get_or_create(workspace=workspace)[0]


def audit_event_search(
    *,
    workspace: Workspace,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """The workspace's audit log, newest first, narrowed by the filters given."""
    events = filter_given(
        audit_event_list(workspace=workspace),
        actor_label__icontains=actor, action__icontains=action, object_type__iexact=object_type,
        created_at__date__gte=since, created_at__date__lte=until,
    )  # fmt: skip
    return events.order_by("-created_at", "-id")


def audit_facets(*, workspace: Workspace) -> dict[str, list[str]]:
    events = AuditEvent.objects.filter(workspace=workspace)
    return {
        "actions": list(events.values_list("action", flat=True).distinct().order_by("action")),
        "object_types": list(
            events.values_list("object_type", flat=True).distinct().order_by("object_type")
        ),
    }


def model_settings_get(*, workspace: Workspace) -> ModelSettings | None:
    return ModelSettings.objects.filter(workspace=workspace).first()


def model_meter(*, workspace: Workspace) -> dict[str, Any]:
    """This month's model spending against the budget, and what is in use and why."""
    from .llm import configured_model, month_spent, over_budget

    spent, calls, unpriced = month_spent(workspace.pk)
    found = model_settings_get(workspace=workspace)
    budget = found.monthly_budget_usd if found else None
    config, reason = configured_model(workspace.pk)
    return {
        "spent": spent, "calls": calls, "unpriced": unpriced, "budget": budget,
        "share": min(spent / budget, 1.0) if budget else None,
        "config": config, "offline_reason": reason, "over": over_budget(workspace.pk),
    }  # fmt: skip
