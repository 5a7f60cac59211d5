"""The Celery app.

With CELERY_BROKER_URL set, tasks go to that broker (Redis or RabbitMQ) and
`celery -A hivemind_web worker` / `beat` run them. Without one, settings turn on
eager mode: tasks run inline, so the default run needs no other service.
"""

import importlib
import logging
import os

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

app = Celery("hivemind_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work, all in one place.
app.conf.beat_schedule = {
    # Ingest enqueues embedding after each commit; this sweep only catches what a
    # lost message or a broker outage left behind, so every few minutes is enough.
    "sweep-unfinished": {"task": "traces.tasks.sweep_unfinished", "schedule": 300.0},
    # New incidents join existing modes at once; a full re-cluster finds new
    # modes and merges drift. Hourly keeps modes fresh without hogging workers.
    "recluster-all": {"task": "traces.tasks.recluster_all", "schedule": 3600.0},
    # Rollups of traces whose refresh message was lost (broker down at ingest).
    "sweep-rollups": {"task": "metrics.tasks.sweep_rollups", "schedule": 300.0},
    "sweep-jobs": {"task": "skills.tasks.sweep_jobs", "schedule": 300.0},
    # Retention: traces older than each workspace's policy go; rollups stay.
    "purge-expired": {"task": "traces.tasks.purge_expired", "schedule": 24 * 3600.0},
}
# A request that enqueues follow-up work must not hang on a dead broker.
app.conf.broker_connection_timeout = 2
app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0.2}

logger = logging.getLogger(__name__)


def enqueue(name: str, *args: object) -> bool:
    """Send a task by name (apps trigger higher apps' tasks this way), never failing
    the caller: with the broker down the data is already committed, and the
    periodic sweeps (embedding, rollups) pick the work up when it returns."""
    task = app.tasks.get(name)
    if task is None:  # registered when its module is imported; import it by name
        importlib.import_module(name.rsplit(".", 1)[0])
        task = app.tasks[name]
    try:
        task.delay(*args)
    except (BrokerError, ConnectionError, OSError) as exc:
        logger.warning("could not enqueue %s (%s); the periodic sweep will catch up", name, exc)
        return False
    return True
