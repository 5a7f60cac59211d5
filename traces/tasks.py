"""Thin Celery tasks for the traces app: take ids, call a service, own the retry policy."""

from __future__ import annotations

from celery import shared_task

from hivemind_web.celery import TASK_RETRY
from workspaces.models import Workspace

from .services import traces_purge_expired, traces_settle_stale_sessions


@shared_task(**TASK_RETRY, soft_time_limit=3000, time_limit=3300)
def purge_expired() -> int:
    """Periodic: drop traces past each workspace's retention (rollups stay)."""
    return sum(
        traces_purge_expired(workspace_id=pk)
        for pk in Workspace.objects.values_list("id", flat=True)
    )


@shared_task(**TASK_RETRY)
def settle_stale_sessions() -> int:
    """Periodic: hook sessions silent for a day are no longer shown running."""
    return traces_settle_stale_sessions()
