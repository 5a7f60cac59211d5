"""Reads for the PM-facing pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from traces.models import Incident, Trace
from workspaces.models import ApiKey, Workspace


@dataclass(frozen=True)
class Overview:
    api_keys: int
    traces: int
    traces_7d: int
    succeeded_7d: int
    failed_7d: int
    incidents_7d: int
    agents: int

    @property
    def success_rate_7d(self) -> float | None:
        decided = self.succeeded_7d + self.failed_7d
        return self.succeeded_7d / decided if decided else None


def overview_get(*, workspace: Workspace) -> Overview:
    """Headline counts for the workspace's overview page."""
    week_ago = timezone.now() - timedelta(days=7)
    traces = Trace.objects.filter(workspace=workspace)
    counts = traces.aggregate(
        total=Count("id"),
        recent=Count("id", filter=Q(started_at__gte=week_ago)),
        ok=Count("id", filter=Q(started_at__gte=week_ago, status="succeeded")),
        bad=Count("id", filter=Q(started_at__gte=week_ago, status="failed")),
        agents=Count("agent", distinct=True),
    )
    return Overview(
        api_keys=ApiKey.objects.filter(workspace=workspace, revoked_at=None).count(),
        traces=counts["total"],
        traces_7d=counts["recent"],
        succeeded_7d=counts["ok"],
        failed_7d=counts["bad"],
        incidents_7d=Incident.objects.filter(
            workspace=workspace, occurred_at__gte=week_ago
        ).count(),
        agents=counts["agents"],
    )


def recent_failed_traces(*, workspace: Workspace, limit: int = 8) -> list[Trace]:
    return list(
        Trace.objects.filter(workspace=workspace, status="failed").order_by("-started_at")[:limit]
    )
