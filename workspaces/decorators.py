from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .models import Role
from .requests import WorkspaceRequest
from .selectors import membership_get

View = Callable[..., HttpResponse]


def workspace_view(min_role: str = Role.VIEWER) -> Callable[[View], View]:
    """Resolve `/w/<slug>/…` to the user's membership, or 404.

    Non-members get 404, not 403, so URLs do not reveal which workspaces exist.
    Members below `min_role` get a 403 page that says which role is needed.
    """

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            # login_required has run: the user is a real account from here on.
            request = cast(WorkspaceRequest, request)
            membership = membership_get(user=request.user, slug=slug)  # NotFound → 404
            request.workspace = membership.workspace
            request.membership = membership
            # Times on the workspace's pages are shown in its zone (the zone is named).
            timezone.activate(zone_of(membership.workspace))
            # Written only when it changes: a write per page view was an UPDATE and
            # a commit (a WAL flush) on every request.
            if request.session.get("workspace_slug") != slug:
                request.session["workspace_slug"] = slug
            if not membership.has_role(min_role):
                return render(
                    request,
                    "workspaces/forbidden.html",
                    {"needed_role": Role(min_role).label},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def zone_of(workspace: object) -> ZoneInfo:
    try:
        return ZoneInfo(getattr(workspace, "time_zone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
