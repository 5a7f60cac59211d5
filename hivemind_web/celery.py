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
