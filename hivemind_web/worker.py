"""Start-up hooks of Celery worker processes (imported by the worker: `imports`)."""

from __future__ import annotations

from celery.signals import worker_init, worker_process_init


@worker_init.connect
def load_before_forking(**kwargs: object) -> None:
    """The worker's parent loads the embedding model (and the rest its tasks use)
    before it forks its pool: the children share those pages instead of each
    loading a copy (hivemind_web/warmup.py)."""
    from hivemind_web.warmup import warm_process

    warm_process()


@worker_process_init.connect
def warm_child(**kwargs: object) -> None:
    """Each child runs one embedding before its first task (its own thread pool)."""
    from hivemind_web.warmup import warm_inference

    warm_inference()
