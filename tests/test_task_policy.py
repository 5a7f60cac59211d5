"""Every Celery task of the app is acknowledged late (a worker killed mid-task
leaves the message to be redelivered) and retries on transient failures."""

from __future__ import annotations

import importlib

from hivemind_web.celery import app

MODULES = ["traces.tasks", "skills.tasks", "metrics.tasks"]


def test_every_task_acks_late_and_retries():
    for module in MODULES:
        importlib.import_module(module)
    tasks = {name: task for name, task in app.tasks.items() if name.split(".")[0] in
             {"traces", "skills", "metrics"}}  # fmt: skip
    assert len(tasks) >= 10, sorted(tasks)
    for name, task in tasks.items():
        assert task.acks_late, f"{name} acknowledges before running"
        retries = bool(getattr(task, "autoretry_for", ())) or name.endswith("deliver_webhook")
        assert retries and task.max_retries, f"{name} has no retry policy"
    assert app.conf.task_reject_on_worker_lost
