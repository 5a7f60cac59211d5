"""Embeddings of skill descriptions, cached in one place with a bound.

Versions never change once written, so a version id names its description's
vector for good. Ranking skills for a task, finding similar skills for the
drafter and spotting duplicates all read through here; the cache keeps the
most recently used `MAX_CACHED` vectors per process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from failures.embedding import get_embedder

MAX_CACHED = 4096

_cache: OrderedDict[int, np.ndarray] = OrderedDict()
_lock = threading.Lock()


def description_vectors(items: list[tuple[int, str]]) -> np.ndarray:
    """Unit vectors for (version id, text) pairs, one row each, in order."""
    if not items:
        return np.zeros((0, get_embedder().dimensions), dtype=np.float32)
    with _lock:
        missing = [(pk, text) for pk, text in items if pk not in _cache]
    if missing:
        vectors = get_embedder().embed([text for _, text in missing])
        with _lock:
            for (pk, _), vector in zip(missing, vectors, strict=True):
                _cache[pk] = vector
            while len(_cache) > MAX_CACHED:
                _cache.popitem(last=False)
    with _lock:
        rows = []
        for pk, text in items:
            vector = _cache.get(pk)
            if vector is None:  # evicted by a concurrent caller between the two steps
                vector = get_embedder().embed([text])[0]
            else:
                _cache.move_to_end(pk)
            rows.append(vector)
    return np.stack(rows)


def text_vector(text: str) -> np.ndarray:
    """A task or a mode label, in the same space (never cached: it varies per call)."""
    return get_embedder().embed([text])[0]
