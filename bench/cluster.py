"""Clustering: seconds for 10k and 100k incidents, and NMI/ARI on known modes.

    python bench/cluster.py --quick    # 10k timing, 1.5k-incident quality set
    python bench/cluster.py            # 10k and 100k timing, 4.5k-incident quality set

Quality: incidents generated from 15 failure templates (tools, error texts with
varying ids, numbers, paths and timestamps, different tasks), passed through the
app's own signature and embedding code (the packaged MiniLM model), then
clustered by traces.clustering.cluster_vectors; NMI and ARI against the true
template, noise counted as its own label.
Timing: vectors drawn around known centres, clustered by the same function.
Baseline in the same run: plain HDBSCAN on the full 384-d vectors without the
sampling and PCA steps (at 10k only; at 100k it does not finish in reasonable
time on this machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

TEMPLATES = [
    ("payments.refund", "429 Too Many Requests: rate limit exceeded, retry after {n}s"),
    ("payments.charge", "402 Payment Required: card {id} declined by issuer"),
    ("crm.search", "ReadTimeout: CRM did not answer within {n} ms"),
    ("crm.update", "409 Conflict: record {id} was modified at {ts}"),
    ("email.send", "550 5.1.1 Recipient address rejected: mailbox {id} unavailable"),
    ("sql.query", 'UndefinedColumn: column "created" does not exist at line {n}'),
    ("sql.query", "deadlock detected while updating table orders (pid {n})"),
    ("fs.write", "PermissionError: [Errno 13] Permission denied: '/data/exports/run_{n}.csv'"),
    ("fs.read", "FileNotFoundError: [Errno 2] No such file or directory: '/srv/in/{id}.json'"),
    ("http.get", "SSLError: certificate verify failed for host api{n}.example.com"),
    ("browser.click", "ElementNotInteractable: element #submit-{n} is covered by a modal"),
    ("inventory.lookup", "SKU not found: 'sku-{n}' (SKUs are upper case)"),
    ("llm.call", "context length exceeded: {n} tokens > 200000 maximum"),
    ("shell.run", "command timed out after {n} seconds: pytest -x tests/"),
    ("json.parse", "JSONDecodeError: Expecting ',' delimiter: line 1 column {n}"),
]
TASKS = ["Refund order {id}", "Export signups", "Answer ticket #{id}", "Fix the failing build",
         "Book a meeting", "Summarise the report"]  # fmt: skip


def quality_set(per_mode: int, seed: int = 5) -> tuple[list[str], list[int]]:
    from failures.signatures import step_signature

    rng = random.Random(seed)
    signatures, truth = [], []
    for label, (tool, template) in enumerate(TEMPLATES):
        for _ in range(per_mode):
            error = template.format(
                n=rng.randint(1, 99999), id=f"{rng.getrandbits(40):x}",
                ts=f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
            )  # fmt: skip
            task = rng.choice(TASKS).format(id=rng.randint(1, 9999))
            signatures.append(
                step_signature(tool=tool, error=error, step_input={"id": 1}, task=task)
            )
            truth.append(label)
    return signatures, truth


def timing_set(n: int, modes: int = 60, seed: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (modes, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(0, modes, n)] + rng.normal(0, 0.03, (n, 384)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    from sklearn.cluster import HDBSCAN

    from failures import clustering
    from failures.embedding import get_embedder
    from failures.signatures import embedding_text

    signatures, truth = quality_set(100 if args.quick else 300)
    vectors = get_embedder().embed([embedding_text(s) for s in signatures])
    labels = clustering.cluster_vectors(vectors, min_cluster_size=5)
    nmi, ari = clustering.nmi_ari(truth, list(labels))
    found = len(set(labels) - {clustering.NOISE})
    noise = int((labels == clustering.NOISE).sum())
    print(
        f"quality: incidents={len(truth)} true_modes={len(TEMPLATES)} found={found} noise={noise} NMI={nmi:.3f} ARI={ari:.3f}"
    )

    sizes = [10_000] if args.quick else [10_000, 100_000]
    for n in sizes:
        data = timing_set(n)
        started = time.perf_counter()
        labels = clustering.cluster_vectors(data, min_cluster_size=5)
        ours = time.perf_counter() - started
        baseline = float("nan")
        if n <= 10_000:
            started = time.perf_counter()
            HDBSCAN(min_cluster_size=5, min_samples=5).fit_predict(data)
            baseline = time.perf_counter() - started
        print(
            f"RESULT cluster_seconds={ours:.1f} s baseline={baseline:.1f} "
            f"ratio={ours / baseline if baseline == baseline else float('nan'):.3f} "
            f"incidents={n} modes_found={len(set(labels) - {-1})} NMI={nmi:.3f} ARI={ari:.3f}"
        )


if __name__ == "__main__":
    main()
