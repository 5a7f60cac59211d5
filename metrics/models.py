from __future__ import annotations

from django.db import models

from workspaces.models import Workspace


class DailyRollup(models.Model):
    """Per workspace × day × agent counts, so charts never scan raw traces.

    Kept current by the ingest and outcome paths (metrics.services.rollups_refresh
    for the days and agents a write touched); `manage.py rebuild_rollups`
    recomputes everything from traces.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent = models.CharField(max_length=200)
    traces = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    step_errors = models.PositiveIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)

    class Meta:
        ordering = ["day", "agent"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "agent"], name="rollup_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.day} {self.agent}"
