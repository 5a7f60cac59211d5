from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .selectors import workspace_list_for_user


def workspace_nav(request: HttpRequest) -> dict[str, Any]:
    """The current workspace and the user's others, for the navigation bar."""
    workspace = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "workspace": workspace,
        "membership": membership,
        "user_workspaces": list(workspace_list_for_user(user=user)),
        # workspaces.views.workspace_new refuses the others (403).
        "can_create_workspace": user.is_staff or not settings.HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY,
    }
