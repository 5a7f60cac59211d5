"""Thin Celery tasks for the traces app: take ids, call a service, own the retry policy."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from workspaces.models import Workspace

from .services import traces_purge_expired

RETRY = {
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 8,
    "acks_late": True,
}


@shared_task(**RETRY, soft_time_limit=3000, time_limit=3300)
def purge_expired() -> int:
    """Periodic: drop traces past each workspace's retention (rollups stay)."""
    return sum(
        traces_purge_expired(workspace_id=pk)
        for pk in Workspace.objects.values_list("id", flat=True)
    )
