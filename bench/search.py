"""Incident search: the product's search end to end on real-shaped incidents, and
the HNSW index alone against an exact scan.

    python bench/search.py --quick      # incident search at 10,000 incidents; HNSW at 20k vectors
    python bench/search.py              # incident search at 10,000 and 100,000; HNSW at 100k and 1M
    python bench/search.py --incidents 1000000 --no-vectors --baseline-queries 5   # at 1M
    python bench/search.py --quick --no-vectors --neighbour 200000   # beside a larger workspace
    python bench/search.py --incidents 1000000 --no-vectors --keep bench-1m   # fill once, keep

Incident search (`failures.search.incident_search`, the path the page, the API
and MCP `search_failures` share): a throw-away workspace gets the real incidents
of the InterCode dev set (imported and diagnosed by the product's services, tool
errors of successful runs included), copied onto further runs until it holds N
incidents, each copy with its original's text and vector (as repeated errors
are). Queries are the first words of real error lines (what a person pastes),
each distinct. Timed per call, query embedding included: first with every query
new to the process (embedded), then the same queries again (the process's
query-vector cache). Baseline in the same run, same queries: the full-text half
as it was before (a tsvector built for every incident per query, no index).
The vector half's recall@10 is measured against the exact nearest distances.
(The vector half it replaced, an HNSW index over every incident, was compared
here until session 22, when that index, read by nothing any more, was dropped.)

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


def _source_incidents(workspace) -> None:  # type: ignore[no-untyped-def]
    """The InterCode dev set, imported and diagnosed into `workspace`."""
    from failures.mining import traces_diagnose
    from hivemind_client.formats import files_under
    from traces import services as trace_services
    from traces.importing import traces_import_file
    from traces.models import Trace

    devdata = Path(os.environ.get("HIVEMIND_DEVDATA", ROOT.parent / "shared" / "devdata"))
    root = devdata / "intercode"
    if not root.exists():
        raise SystemExit(f"{root} not found: set HIVEMIND_DEVDATA to the devdata folder")
    trace_services._after_commit_analyse = lambda workspace_id, trace_ids: None  # type: ignore[assignment]
    for path in files_under([root], "intercode"):
        result = traces_import_file(workspace=workspace, fmt="intercode", path=path)
        if not result.ok:
            raise SystemExit(f"import failed: {result.error}")
    ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    traces_diagnose(workspace_id=workspace.pk, trace_ids=ids, force=True)


def _fill(workspace, n: int) -> int:  # type: ignore[no-untyped-def]
    """Copy the workspace's incidents onto new runs until it holds `n`."""
    from datetime import timedelta

    from django.db import connection

    from failures.embedding import incidents_embed
    from failures.models import Incident
    from traces.models import Trace

    while incidents_embed(workspace_id=workspace.pk, limit=100_000):
        pass
    originals = list(
        Incident.objects.filter(workspace=workspace).values_list("pk", flat=True).order_by("pk")
    )
    have = len(originals)
    per_trace = 100
    copies = max(0, n - have)
    runs = (copies + per_trace - 1) // per_trace
    template = Trace.objects.filter(workspace=workspace).first()
    assert template is not None
    traces = Trace.objects.bulk_create(
        [Trace(workspace=workspace, external_id=f"bench-copy-{i}", agent=template.agent,
               task=template.task, status=template.status,
               started_at=template.started_at - timedelta(hours=i % (24 * 90)))
         for i in range(runs)],
        batch_size=5000,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (trace_id bigint, step_index int, source bigint)"
        )
        rows = [
            (traces[i // per_trace].pk, i % per_trace, originals[i % have]) for i in range(copies)
        ]
        with cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        columns = [
            f.column for f in Incident._meta.concrete_fields
            if f.column not in {"id", "trace_id", "step_index", "search_vector"}
        ]  # fmt: skip
        cursor.execute(
            f"INSERT INTO {Incident._meta.db_table} (trace_id, step_index, {', '.join(columns)}) "
            f"SELECT c.trace_id, c.step_index, {', '.join('i.' + c for c in columns)} "
            f"FROM bench_copy c JOIN {Incident._meta.db_table} i ON i.id = c.source"
        )
        cursor.execute("DROP TABLE bench_copy")
        # What autovacuum does to a table that has grown: done here, so that it
        # does not run in the middle of the timed queries.
        cursor.execute(f"VACUUM (ANALYZE) {Incident._meta.db_table}")
    return Incident.objects.filter(workspace=workspace).count()


def _queries(workspace, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Distinct first words of real error lines, as a person pastes them."""
    import random
    import re

    from failures.models import Incident

    seen: dict[str, None] = {}
    for text in (
        Incident.objects.filter(workspace=workspace)
        .exclude(error_text="")
        .order_by()  # distinct texts, not distinct (text, ordering) pairs of the copies
        .values_list("error_text", flat=True)
        .distinct()[:20_000]
    ):
        line = next((x for x in text.splitlines() if x.strip()), "")
        words = re.findall(r"[A-Za-z][\w'.-]*", line)[:6]
        if len(words) >= 2:
            seen.setdefault(" ".join(words[: 3 + len(seen) % 4]), None)
    queries = list(seen)
    random.Random(7).shuffle(queries)
    return queries[:count]


def _old_keyword_candidates(workspace, base, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The full-text half before the stored vector: one tsvector per incident per query."""
    import re

    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    from failures.search import CANDIDATES

    query = SearchQuery(text, search_type="websearch", config="english")
    words = re.findall(r"\w{3,}", text.lower())
    if len(words) > 1:
        query = SearchQuery(" OR ".join(words), search_type="websearch", config="english")
    vector = SearchVector("signature", "error_text", config="english")
    return list(
        base.annotate(rank=SearchRank(vector, query))
        .filter(rank__gt=0)
        .order_by("-rank")
        .values_list("id", flat=True)[:CANDIDATES]
    )


def _vector_recall(workspace, queries: list[str], candidates=None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The vector half's top 10 against the workspace's exact 10 nearest, by
    distance (copies share a vector, so ids would not say it): the share of its
    10 at most as far as the exact 10th; and its p95 in ms."""
    from django.db.models import ExpressionWrapper, FloatField
    from pgvector.django import CosineDistance

    from failures import search
    from failures.embedding import query_vector

    candidates = candidates or search._vector_candidates
    shares, times = [], []
    for q in queries:
        base = search._filtered(workspace, search.SearchFilters())
        query_vector(q)
        started = time.perf_counter()
        ids, similarity = candidates(workspace, base, q)
        times.append((time.perf_counter() - started) * 1000)
        exact = list(
            base.exclude(embedding=None)
            .annotate(d=ExpressionWrapper(CosineDistance("embedding", query_vector(q)) + 0.0,
                                          output_field=FloatField()))
            .order_by("d").values_list("d", flat=True)[:10]
        )  # fmt: skip
        if len(exact) < 10:
            continue
        got = [1.0 - similarity[i] for i in ids[:10]]
        shares.append(sum(d <= exact[-1] + 1e-6 for d in got) / 10)
    return (statistics.mean(shares) if shares else float("nan")), pct(times, 95)


def _neighbour(n: int) -> int:
    """Another workspace of `n` incidents in the same database (kept between runs:
    `bench-neighbour`), as a large team's beside a small one's."""
    from workspaces.models import Workspace

    if not n:
        return 0
    workspace, made = Workspace.objects.get_or_create(
        slug="bench-neighbour", defaults={"name": "bench neighbour"}
    )
    if made:
        _source_incidents(workspace)
    started = time.perf_counter()
    total = _fill(workspace, n)
    print(f"== neighbour workspace: {total:,} incidents ({time.perf_counter() - started:.0f} s)")
    return total


def incident_search_bench(
    n: int,
    n_queries: int,
    baseline_queries: int | None = None,
    neighbour: int = 0,
    keep: str = "",
) -> str:
    from failures import embedding, search
    from failures.models import Incident
    from workspaces.models import Workspace

    # `keep`: a workspace this bench filled before and kept (`--keep SLUG`): filled
    # only if it is new, and not deleted (at 1M the fill takes 20-30 minutes).
    workspace, new = (
        Workspace.objects.get_or_create(slug=keep, defaults={"name": "bench search (kept)"})
        if keep
        else (
            Workspace.objects.create(name="bench search", slug=f"bench-search-{os.getpid()}"),
            True,
        )
    )
    try:
        started = time.perf_counter()
        if new:
            _source_incidents(workspace)
            total = _fill(workspace, n)
        else:
            total = Incident.objects.filter(workspace=workspace).count()
        print(
            f"\n== incident search: {total:,} incidents ready in {time.perf_counter() - started:.0f} s"
            + ("" if new else f" (kept workspace {keep}, filled before)")
        )
        queries = _queries(workspace, n_queries)
        embedding.get_embedder().embed(["warm up"])

        def timed(label: str, only: int | None = None) -> list[float]:
            times = []
            for q in queries[:only]:
                t0 = time.perf_counter()
                search.incident_search(workspace=workspace, query=q, k=20)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"   {label:52} p50 {pct(times, 50):7.1f} ms   p95 {pct(times, 95):7.1f} ms")
            return times

        embedding._query_vector.cache_clear()
        search.incident_search(workspace=workspace, query="warm up the connection", k=20)
        new = timed(f"{len(queries)} queries, each new (embedded)")
        cached = timed("the same queries again (cached vectors)")
        current = search._keyword_candidates
        search._keyword_candidates = _old_keyword_candidates  # type: ignore[assignment]
        try:
            old = timed(
                "baseline: tsvector per incident per query (cached)"
                + (f", first {baseline_queries}" if baseline_queries else ""),
                baseline_queries,
            )
        finally:
            search._keyword_candidates = current  # type: ignore[assignment]
        from failures.models import IncidentText

        texts = IncidentText.objects.filter(workspace=workspace).count()
        recall, vector_p95 = _vector_recall(workspace, queries[:40])
        print(f"   vector half over {texts:,} texts: recall@10 {recall:.3f}, "
              f"p95 {vector_p95:.1f} ms")  # fmt: skip
        embedding._query_vector.cache_clear()
        return (
            f"RESULT incident_search_p95_ms={pct(new, 95):.1f} incidents={total} "
            f"vector_recall_at_10={recall:.3f} "
            f"texts={texts} "
            f"neighbour_incidents={neighbour} "
            f"cached_p95_ms={pct(cached, 95):.1f} baseline_p95_ms={pct(old, 95):.1f} "
            f"p50_ms={pct(new, 50):.1f} queries={len(queries)} baseline_queries={len(old)} "
            f"target<={30 if total <= 10_000 else 50} met={'yes' if pct(new, 95) <= (30 if total <= 10_000 else 50) else 'no'}"
        )
    finally:
        if not keep:
            workspace.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--incidents", type=int, nargs="*", help="incident search at these sizes")
    parser.add_argument("--no-vectors", action="store_true", help="skip the HNSW-only part")
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=None,
        help="time the baseline on the first N queries only (at 1M: ~30 s a query)",
    )
    parser.add_argument(
        "--neighbour",
        type=int,
        default=0,
        help="first fill another workspace (bench-neighbour, kept) to N incidents",
    )
    parser.add_argument(
        "--keep",
        default="",
        help="fill a workspace of this slug once and keep it; later runs measure it again "
        "(delete it yourself when done)",
    )
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--efs", type=int, nargs="*", default=[40, 100, 200, 400, 800])
    parser.add_argument("--m", type=int, default=24, help="HNSW m (the app's index: 24)")
    parser.add_argument("--ef-construction", type=int, default=128, help="the app's index: 128")
    args = parser.parse_args()
    import django

    django.setup()
    neighbour = _neighbour(args.neighbour)
    results = [
        incident_search_bench(
            n, 200 if args.quick else 500, args.baseline_queries, neighbour, args.keep
        )
        for n in args.incidents or ([10_000] if args.quick else [10_000, 100_000])
    ]
    if not args.no_vectors:
        sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
        for n in sizes:
            bench(n, 200 if args.quick else 500, args.efs, m=args.m, efc=args.ef_construction)
    print()
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
