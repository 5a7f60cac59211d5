"""Reads for workspaces. Everything that touches workspace data is scoped here."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .errors import NotFound
from .models import ApiKey, AuditEvent, Membership, Workspace


def workspace_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Workspace]:
    if not user.is_authenticated:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user: AbstractBaseUser, slug: str) -> Membership:
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


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return workspace.memberships.select_related("user").order_by("user__username")


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by")


def api_key_get(*, workspace: Workspace, pk: int) -> ApiKey:
    api_key = ApiKey.objects.filter(workspace=workspace, pk=pk).first()
    if api_key is None:
        raise NotFound("No such API key in this workspace.")
    return api_key


def audit_event_list(*, workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(workspace=workspace).select_related("actor")
