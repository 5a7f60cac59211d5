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


def test_tasks_are_routed_to_declared_queues_by_kind_of_work():
    """Diagnosis is not held up behind a re-clustering or a model call when workers
    run per queue: each routed name is a task, each queue is declared (a worker
    without -Q takes them all), and the kinds land where the README says."""
    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == {"default", "analysis", "clustering", "llm"}
    assert set(app.conf.task_routes) <= set(app.tasks), set(app.conf.task_routes) - set(app.tasks)
    ours = [name for name in app.tasks if name.rsplit(".", 1)[0] in TASK_MODULES]

    def queue(name: str) -> str:
        return app.amqp.router.route({}, name, (), {})["queue"].name

    assert {queue(name) for name in ours} == declared
    assert queue("failures.tasks.analyse_traces") == "analysis"
    assert queue("metrics.tasks.refresh_rollups") == "analysis"
    assert queue("failures.tasks.recluster_workspace") == "clustering"
    assert queue("skills.tasks.distill_mode") == "llm"
    assert queue("skills.tasks.deliver_webhook") == "default"


def test_enqueue_refuses_an_unknown_task_name():
    import pytest

    from hivemind_web.celery import UnknownTask, enqueue

    with pytest.raises(UnknownTask):
        enqueue("failures.tasks.no_such_task", 1)


def _slow_then(monkeypatch, *, first_fails: bool) -> tuple[list[str], object]:  # type: ignore[no-untyped-def]
    """The first publish is held (a broker slow to take a first connection); the
    second is enqueued while it is in flight."""
    import threading

    from hivemind_web import celery as hc

    gate = threading.Event()
    sent: list[str] = []

    def first(args, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(30)
        if first_fails:
            raise ConnectionError("broker went away")
        sent.append("analyse")

    monkeypatch.setattr(app.tasks["failures.tasks.analyse_traces"], "apply_async", first)
    monkeypatch.setattr(app.tasks["metrics.tasks.refresh_rollups"], "apply_async",
                        lambda args, **kwargs: sent.append("rollups"))  # fmt: skip
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(hc, "ENQUEUE_TIMEOUT", 0.05)
    hc.broker_forget_failures()
    assert not hc.enqueue("failures.tasks.analyse_traces", 1, [7])
    assert not hc.enqueue("metrics.tasks.refresh_rollups", [7])
    assert sent == []
    gate.set()
    return sent, hc


def _settle(condition) -> None:  # type: ignore[no-untyped-def]
    # A bound on waiting for the publishing thread, not a speed check.
    import time

    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_slow_publish_that_lands_sends_what_waited_behind_it(monkeypatch):
    sent, hc = _slow_then(monkeypatch, first_fails=False)
    try:
        _settle(lambda: len(sent) == 2)
        assert sent == ["analyse", "rollups"]
        assert not hc.broker_backing_off()  # type: ignore[attr-defined]
    finally:
        hc.broker_forget_failures()  # type: ignore[attr-defined]


def test_a_slow_publish_that_fails_leaves_what_waited_to_the_sweeps(monkeypatch, caplog):
    sent, hc = _slow_then(monkeypatch, first_fails=True)
    try:
        _settle(lambda: "did not take 1 queued task" in caplog.text)
        assert sent == [] and "periodic sweeps catch up" in caplog.text
        assert hc.broker_backing_off()  # type: ignore[attr-defined]
    finally:
        hc.broker_forget_failures()  # type: ignore[attr-defined]


def test_the_default_runs_worker_takes_every_queue():
    """A worker started as the default run starts it (no -Q) consumes each queue."""
    import time

    from tests.factories import running_worker

    with running_worker():
        deadline, queues = time.monotonic() + 60, None
        while time.monotonic() < deadline and not queues:
            replies = app.control.inspect(timeout=2).active_queues() or {}
            queues = {q["name"] for found in replies.values() for q in found}
    assert queues == {"default", "analysis", "clustering", "llm"}
