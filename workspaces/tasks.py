"""Thin Celery tasks for the workspaces app."""

from __future__ import annotations

from celery import shared_task

from hivemind_web.celery import TASK_RETRY

from .ratelimit import sweep


@shared_task(
    **TASK_RETRY, soft_time_limit=300, time_limit=330,
)  # fmt: skip
def sweep_rate_windows() -> int:
    """Drop rate-limit windows that have ended (they only grow otherwise)."""
    return sweep()
