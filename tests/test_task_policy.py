"""Every Celery task of the app is acknowledged late (a worker killed mid-task
leaves the message to be redelivered) and retries on transient failures."""

from __future__ import annotations

from hivemind_web.celery import TASK_MODULES, app


def test_every_task_acks_late_and_retries():
    # Registered at start-up (hivemind_web's app config), not by importing here.
    tasks = {name: task for name, task in app.tasks.items()
             if name.rsplit(".", 1)[0] in TASK_MODULES}  # fmt: skip
    assert len(tasks) >= 12, sorted(tasks)
    for name, task in tasks.items():
        assert task.acks_late, f"{name} acknowledges before running"
        retries = bool(getattr(task, "autoretry_for", ())) or name.endswith("deliver_webhook")
        assert retries and task.max_retries, f"{name} has no retry policy"
    assert app.conf.task_reject_on_worker_lost


def test_every_periodic_task_is_registered():
    missing = [e["task"] for e in app.conf.beat_schedule.values() if e["task"] not in app.tasks]
    assert not missing, missing


def test_enqueue_refuses_an_unknown_task_name():
    import pytest

    from hivemind_web.celery import UnknownTask, enqueue

    with pytest.raises(UnknownTask):
        enqueue("failures.tasks.no_such_task", 1)
