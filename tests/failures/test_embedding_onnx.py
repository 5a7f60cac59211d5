"""The embedding model on onnxruntime gives the vectors sentence-transformers
gives for the same weights, and a process that embeds never imports PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from failures.embedding import MiniLMEmbedder, SentenceTransformersEmbedder

TEXTS = [
    "`bash` failed: find: '/system/folder3': No such file or directory",
    "Error executing query: Unknown column 'city' in 'field list'",
    'called `cancel_pending_order` with order_id="#W1"; the successful runs did not',
    "x",
    "a much longer text " * 200,  # past the 256-token limit: both cut it the same way
]


def test_onnx_vectors_match_sentence_transformers():
    ours = MiniLMEmbedder().embed(TEXTS)
    reference = SentenceTransformersEmbedder().embed(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * reference).sum(axis=1).min()) > 0.9999
    # Order within a batch does not change a text's vector.
    again = MiniLMEmbedder().embed(list(reversed(TEXTS)))[::-1]
    assert np.allclose(again, ours, atol=1e-5)


def test_embedding_in_a_fresh_process_does_not_import_torch():
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'hivemind_web.settings'); django.setup();"
        "from failures.embedding import get_embedder; get_embedder().embed(['hello']);"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_long_texts_leave_the_process_small():
    """The model's working memory grows with batch × tokens², and onnxruntime keeps
    the largest it needed: 64 texts of 256 tokens in one call left a process ~1 GB
    bigger (each Celery child held ~200 MiB of it after the demo). Texts go to the
    model a few at a time, with the same vectors."""
    code = (
        "import django, os, resource; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'hivemind_web.settings'); django.setup();"
        "from failures.embedding import MiniLMEmbedder; e = MiniLMEmbedder(); e.embed(['x']);"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "e.embed([f'word{i} ' * 300 for i in range(64)]);"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    grown_mib = int(out.stdout.strip().splitlines()[-1])
    assert grown_mib < 300, f"peak memory grew {grown_mib} MiB embedding 64 long texts"


def test_vectors_do_not_depend_on_how_texts_are_batched():
    texts = [f"step {i} failed: " + "timeout " * (i * 7 % 50) for i in range(40)]
    embedder = MiniLMEmbedder()
    together = embedder.embed(texts)
    one_by_one = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_texts_embed_embeds_each_text_once_while_kept(monkeypatch, settings):
    """Label propagation compares the same steps for every label on a tool: a text
    is embedded once while the process keeps it, the least recently used go
    first, and vectors kept for one embedder are never served for another."""
    from failures import embedding

    model = MiniLMEmbedder()
    asked: list[list[str]] = []

    class Counting:
        name, dimensions = model.name, model.dimensions

        def embed(self, texts: list[str]) -> np.ndarray:
            asked.append(list(texts))
            return model.embed(texts)

    monkeypatch.setattr(embedding, "get_embedder", lambda: Counting())
    monkeypatch.setattr(embedding, "_text_vectors", embedding._TextVectors(size=3))
    first = embedding.texts_embed([TEXTS[0], TEXTS[1], TEXTS[0]])
    assert asked == [[TEXTS[0], TEXTS[1]]]
    assert np.array_equal(first, model.embed([TEXTS[0], TEXTS[1], TEXTS[0]]))
    again = embedding.texts_embed([TEXTS[1], TEXTS[2]])
    assert asked[1:] == [[TEXTS[2]]]
    assert np.array_equal(again, model.embed([TEXTS[1], TEXTS[2]]))
    embedding.texts_embed([TEXTS[3]])  # a fourth text: the least recently used (0) goes
    embedding.texts_embed([TEXTS[0], TEXTS[1]])
    assert asked[2:] == [[TEXTS[3]], [TEXTS[0]]]
    assert embedding.texts_embed([]).shape == (0, model.dimensions)
    settings.HIVEMIND_EMBEDDER = "tests.elsewhere:Embedder"  # another model's vectors
    embedding.texts_embed([TEXTS[1]])
    assert asked[-1] == [TEXTS[1]]
