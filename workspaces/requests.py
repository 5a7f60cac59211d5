"""Typed requests: what the workspace decorator and API-key auth attach.

Views annotate their request with these, so the type checker knows
`request.workspace` and friends (no `# type: ignore[attr-defined]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

    from .models import ApiKey, Membership, Workspace


class WorkspaceRequest(HttpRequest):
    """A logged-in member's request under `/w/<slug>/` (set by `workspace_view`)."""

    user: User
    workspace: Workspace
    membership: Membership
    htmx: HtmxDetails


class ApiRequest(HttpRequest):
    """An API request authenticated by an API key (set by `ApiKeyAuth`)."""

    auth: ApiKey
    workspace: Workspace
    # Set by the skills list view for SkillsETagMiddleware (the set's ETag).
    skills_etag: str
