"""The Celery app.

Broker: `CELERY_BROKER_URL` (Redis or RabbitMQ) in production; without it, the
embedded Redis that `make run` starts in the data dir (hivemind_web/embedded_broker.py).
`celery -A hivemind_web worker` / `beat` run the tasks.

Tasks are registered at start-up in every process (web, worker, beat,
management commands): `TASK_MODULES` is imported by `register_tasks`, which the
`hivemind_web` app config calls once Django's apps are ready. Apps trigger the
tasks of apps above them by name through `enqueue`, the one path for that; an
unknown name raises instead of silently doing nothing.
"""

from __future__ import annotations

import importlib
import logging
import os

from celery import Celery
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

TASK_MODULES = (
    "workspaces.tasks",
    "traces.tasks",
    "failures.tasks",
    "skills.tasks",
    "metrics.tasks",
)

app = Celery("hivemind_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The worker also imports its start-up hooks (hivemind_web/worker.py).
app.conf.imports = (*TASK_MODULES, "hivemind_web.worker")

# Periodic work, all in one place.
app.conf.beat_schedule = {
    # Ingest queues analysis after each commit; this sweep only catches what a lost
    # message or a broker outage left behind, so every few minutes is enough.
    "sweep-unfinished": {"task": "failures.tasks.sweep_unfinished", "schedule": 300.0},
    # New incidents join existing modes at once; a full re-cluster finds new
    # modes and merges drift. Hourly keeps modes fresh without hogging workers.
    "recluster-all": {"task": "failures.tasks.recluster_all", "schedule": 3600.0},
    # Rollups of traces whose refresh message was lost (broker down at ingest).
    "sweep-rollups": {"task": "metrics.tasks.sweep_rollups", "schedule": 300.0},
    # Trial rollups and verdicts (also refreshed after ingest and after incidents change modes).
    "refresh-trials": {"task": "metrics.tasks.refresh_trials", "schedule": 300.0},
    "sweep-jobs": {"task": "skills.tasks.sweep_jobs", "schedule": 300.0},
    # Alerts: new failure modes, modes that jump, skills whose trial says they hurt.
    "alerts-sweep": {"task": "skills.tasks.alerts_sweep", "schedule": 600.0},
    # Rate-limit windows are per minute; old ones only take space.
    "sweep-rate-windows": {"task": "workspaces.tasks.sweep_rate_windows", "schedule": 3600.0},
    # Retention: traces older than each workspace's policy go; rollups stay.
    "purge-expired": {"task": "traces.tasks.purge_expired", "schedule": 24 * 3600.0},
}
# A request that enqueues follow-up work must not hang on a dead broker.
app.conf.broker_connection_timeout = 2
app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0.2}

logger = logging.getLogger(__name__)

# The retry policy of the apps' tasks: a transient database or connection error
# is retried with backoff (up to 5 minutes apart), and a task is acknowledged
# only after it ran, so a worker killed mid-task leaves it to be redelivered.
TASK_RETRY = {
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 8,
    "acks_late": True,
}


class UnknownTask(LookupError):
    """`enqueue` was given a name no task module registers."""


def register_tasks() -> None:
    """Import every task module so each process knows every task by name."""
    for module in TASK_MODULES:
        importlib.import_module(module)


def enqueue(name: str, *args: object) -> bool:
    """Send a task by name (apps trigger higher apps' tasks this way), never failing
    the caller on a broker outage: the data is already committed, and the periodic
    sweeps (analysis, embedding, rollups, jobs) pick the work up when it returns.
    An unknown name is a programming error and raises."""
    task = app.tasks.get(name)
    if task is None:
        raise UnknownTask(f"No task named {name!r}; is its module in TASK_MODULES?")
    try:
        task.delay(*args)
    except (BrokerError, ConnectionError, OSError) as exc:
        logger.warning("could not enqueue %s (%s); the periodic sweep will catch up", name, exc)
        return False
    return True
