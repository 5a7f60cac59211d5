"""The Celery app.

With CELERY_BROKER_URL set, tasks go to that broker (Redis or RabbitMQ) and
`celery -A hivemind_web worker` / `beat` run them. Without one, settings turn on
eager mode: tasks run inline, so the default run needs no other service.
"""

import os

from celery import Celery

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
}
