"""Start-up hooks of Celery worker processes (imported by the worker: `imports`)."""

from __future__ import annotations

from celery.signals import worker_process_init


@worker_process_init.connect
def load_embedder(**kwargs: object) -> None:
    """Each worker process loads the embedding model once, before its first task."""
    from failures.embedding import get_embedder

    get_embedder()
