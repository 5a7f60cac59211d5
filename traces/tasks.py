"""Thin Celery tasks: take ids, call a service, own the retry policy.

All are idempotent: embedding only touches incidents without a vector, and
re-clustering the same incidents gives the same modes.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from hivemind_web.celery import app as celery_app
from workspaces.models import Workspace

from . import failure_modes

RETRY = {
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 8,
    "acks_late": True,
}


@shared_task(**RETRY, soft_time_limit=600, time_limit=660)
def embed_incidents(workspace_id: int) -> int:
    """Embed new incidents of one workspace; re-cluster if enough wait without a mode."""
    embedded = failure_modes.incidents_embed(workspace_id=workspace_id)
    if failure_modes.recluster_due(workspace_id=workspace_id):
        recluster_workspace.delay(workspace_id)
    elif embedded:
        _trigger_distillation(workspace_id)  # nearest-mode joins may cross the threshold
    return len(embedded)


@shared_task(**RETRY, soft_time_limit=1800, time_limit=1900)
def recluster_workspace(workspace_id: int) -> int:
    modes = failure_modes.failure_modes_recluster(workspace_id=workspace_id).modes
    _trigger_distillation(workspace_id)
    return modes


def _trigger_distillation(workspace_id: int) -> None:
    # By name: traces must not import skills (apps import downward only). Looked
    # up in the registry rather than send_task so eager mode runs it inline too.
    task = celery_app.tasks.get("skills.tasks.distill_due")
    if task is not None:
        task.delay(workspace_id)


@shared_task(**RETRY, soft_time_limit=3000, time_limit=3300)
def sweep_unfinished() -> None:
    """Catch up on work a lost task or a down broker left behind."""
    from workspaces.ratelimit import sweep as sweep_rate_windows

    sweep_rate_windows()
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        embed_incidents.delay(workspace_id)


@shared_task(**RETRY, soft_time_limit=3000, time_limit=3300)
def recluster_all() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        recluster_workspace.delay(workspace_id)


@shared_task(**RETRY, soft_time_limit=3000, time_limit=3300)
def purge_expired() -> int:
    """Periodic: drop traces past each workspace's retention (rollups stay)."""
    from .services import traces_purge_expired

    return sum(
        traces_purge_expired(workspace_id=pk)
        for pk in Workspace.objects.values_list("id", flat=True)
    )
