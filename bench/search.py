"""Incident vector search: HNSW (pgvector) vs exact scan, recall@10 and latency.

    python bench/search.py --quick      # 20k vectors
    python bench/search.py              # 100k and 1M vectors

Vectors are 384-d and unit length like the incident embeddings, drawn around
2,000 "failure" centres (real incidents cluster; uniform noise would be an
unrealistically hard case). They go into a table with the same column type and
the same HNSW index as failures_incident.embedding (m=24, ef_construction=128,
vector_cosine_ops), queried with the same ORDER BY <=> LIMIT shape as
traces/search.py. Baseline: exact search, the same query with index scans off,
in the same run; recall@10 is measured against it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

DIMS = 384
CENTRES = 2000


def vectors(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    points = centres[picks] + rng.normal(0, 0.035, (n, DIMS)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def connect():
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    conn = psycopg.connect(**params, autocommit=True)
    register_vector(conn)
    return conn


def load(conn, n: int, rng, centres, m: int = 16, ef_construction: int = 64) -> float:
    conn.execute("DROP TABLE IF EXISTS bench_search")
    conn.execute(f"CREATE TABLE bench_search (id bigint PRIMARY KEY, embedding vector({DIMS}))")
    with (
        conn.cursor() as cur,
        cur.copy("COPY bench_search (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "vector"])
        for start in range(0, n, 50_000):
            for i, v in enumerate(vectors(min(50_000, n - start), rng, centres)):
                copy.write_row((start + i, v))
    conn.execute("SET maintenance_work_mem = '6GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    started = time.perf_counter()
    conn.execute(
        "CREATE INDEX bench_search_hnsw ON bench_search USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {m}, ef_construction = {ef_construction})"
    )
    return time.perf_counter() - started


QUERY = "SELECT id FROM bench_search ORDER BY embedding <=> %s LIMIT 10"


def run(
    conn, queries: np.ndarray, *, exact: bool, ef: int = 40
) -> tuple[list[set[int]], list[float]]:
    conn.execute(f"SET enable_indexscan = {'off' if exact else 'on'}")
    conn.execute(f"SET hnsw.ef_search = {ef}")
    results, times = [], []
    for q in queries:
        started = time.perf_counter()
        rows = conn.execute(QUERY, (q,)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
        results.append({r[0] for r in rows})
    conn.execute("RESET enable_indexscan")
    return results, times


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def bench(
    n: int, n_queries: int, efs: list[int], seed: int = 3, m: int = 16, efc: int = 64
) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (CENTRES, DIMS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    conn = connect()
    build = load(conn, n, rng, centres, m, efc)
    queries = vectors(n_queries, rng, centres)
    truth, exact_times = run(conn, queries[: max(20, n_queries // 5)], exact=True)
    exact_p50 = pct(exact_times, 50)
    print(
        f"n={n} index_build_s={build:.1f} exact_p50_ms={exact_p50:.1f} exact_p95_ms={pct(exact_times, 95):.1f}"
    )
    for ef in efs:
        run(conn, queries[:20], exact=False, ef=ef)  # warm the cache
        found, times = run(conn, queries, exact=False, ef=ef)
        recall = statistics.mean(
            len(f & t) / 10 for f, t in zip(found[: len(truth)], truth, strict=False)
        )
        p50, p95 = pct(times, 50), pct(times, 95)
        print(
            f"RESULT search_p95_ms={p95:.2f} ms baseline={pct(exact_times, 95):.1f} "
            f"ratio={p95 / pct(exact_times, 95):.4f} n={n} ef_search={ef} "
            f"recall_at_10={recall:.3f} p50_ms={p50:.2f} exact_p50_ms={exact_p50:.1f} m={m} ef_construction={efc}"
        )
    conn.execute("DROP TABLE bench_search")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--efs", type=int, nargs="*", default=[40, 100, 200, 400, 800])
    parser.add_argument("--m", type=int, default=24, help="HNSW m (the app's index: 24)")
    parser.add_argument("--ef-construction", type=int, default=128, help="the app's index: 128")
    args = parser.parse_args()
    import django

    django.setup()
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    for n in sizes:
        bench(n, 200 if args.quick else 500, args.efs, m=args.m, efc=args.ef_construction)


if __name__ == "__main__":
    main()
