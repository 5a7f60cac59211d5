"""Reads for the PM-facing pages."""

from __future__ import annotations

from dataclasses import dataclass

from workspaces.models import ApiKey, Workspace


@dataclass(frozen=True)
class Overview:
    api_keys: int


def overview_get(*, workspace: Workspace) -> Overview:
    return Overview(api_keys=ApiKey.objects.filter(workspace=workspace, revoked_at=None).count())
