"""gunicorn settings for `make run` (hivemind_web/run.py passes `-c` this file)."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    # Incident search embeds the question: load the model now, not on the first search.
    from failures.embedding import get_embedder

    get_embedder()
