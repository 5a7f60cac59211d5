"""Trace search over step contents: the trace list's search at scale, against a
sequential scan of the same rows in the same run.

    python bench/trace_search.py --quick              # 20,000 traces
    python bench/trace_search.py                      # 100,000 traces
    python bench/trace_search.py --traces 1000000     # the issue's size (long: hours here)

A throw-away workspace gets the real runs of the dev sets (tau2-bench and
InterCode, imported by the product's importer), copied in SQL until it holds N
traces (each copy keeps its original's steps, so the words are real and repeat
as they do in real workspaces). Queries are words and phrases taken from real
step outputs and errors (rare and common ones), timed through
`traces.views.SearchPaginator` as the list page runs it: the count of matches,
which stops at 1,001 (the page then says "more than 1,000"), and the first page
of 50, read as the newest matches (`traces.selectors.trace_search`: the newest
20,000 runs first, then the GIN index over runs' words for a word rare among
them). Baselines, same queries, same rows, same capped count: every match read
and sorted (`trace_list`, as a list sorted by another column reads a search) and
a sequential scan (ILIKE over each step's input, output and error, and the
task). At 1M traces the scan takes a minute a query: `--baseline-queries N`
times the baselines on the first N.

    python bench/trace_search.py --traces 1000000 --queries 60 --baseline-queries 5
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = Path(os.environ.get("HIVEMIND_DEVDATA", ROOT.parent / "shared" / "devdata"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _import(workspace) -> None:  # type: ignore[no-untyped-def]
    from hivemind_client.formats import files_under
    from traces.importing import traces_import_file

    for fmt, folder in (("tau2-bench", DEVDATA / "tau2-bench_sierra_gpt-4.1"),
                        ("intercode", DEVDATA / "intercode")):  # fmt: skip
        for path in files_under([folder], fmt):
            result = traces_import_file(workspace=workspace, fmt=fmt, path=path)
            if not result.ok:
                raise SystemExit(result.error)


def _fill(workspace, n: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Copy the workspace's runs (with their steps) until it holds n traces."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM traces_trace WHERE workspace_id = %s", [workspace.pk])
        have = cursor.fetchone()[0]
        # A reused workspace (--workspace) goes on from its last copy.
        cursor.execute(
            "SELECT count(*) FILTER (WHERE external_id NOT LIKE 'copy-%%'), COALESCE(max("
            "split_part(external_id, '-', 2)::int) FILTER (WHERE external_id LIKE 'copy-%%'), 0)"
            " FROM traces_trace WHERE workspace_id = %s",
            [workspace.pk],
        )
        originals, copy = cursor.fetchone()
        while have < n:
            copy += 1
            take = min(originals, n - have)
            cursor.execute(
                """
                WITH src AS (
                    SELECT * FROM traces_trace WHERE workspace_id = %(ws)s
                    AND external_id NOT LIKE 'copy-%%' ORDER BY id LIMIT %(take)s
                ), ins AS (
                    INSERT INTO traces_trace (workspace_id, external_id, agent, session_id, task,
                        task_key, checks, status, reward, started_at, ended_at, model,
                        skills_in_scope, metadata, step_count, error_count, total_tokens, cost_usd,
                        redaction_counts, redaction_parts, received_at, updated_at)
                    SELECT workspace_id, 'copy-' || %(copy)s || '-' || external_id, agent,
                        session_id, task, task_key, checks, status, reward,
                        started_at - make_interval(days => %(copy)s %% 300), ended_at, model,
                        skills_in_scope, '{}'::jsonb, step_count, error_count, total_tokens,
                        cost_usd, redaction_counts, redaction_parts, now(), now()
                    FROM src RETURNING id, substring(external_id from length(%(prefix)s) + 1) AS orig
                )
                INSERT INTO traces_step (trace_id, index, kind, name, input, output, error,
                    started_at, duration_ms, tokens, parent_index)
                SELECT ins.id, s.index, s.kind, s.name, s.input, s.output, s.error, s.started_at,
                    s.duration_ms, s.tokens, s.parent_index
                FROM ins JOIN traces_trace o ON o.workspace_id = %(ws)s AND o.external_id = ins.orig
                JOIN traces_step s ON s.trace_id = o.id
                """,
                {"ws": workspace.pk, "take": take, "copy": copy, "prefix": f"copy-{copy}-"},
            )
            have += take
            print(f"  {have:,} traces", flush=True)
        cursor.execute(
            "SELECT count(*) FROM traces_step s JOIN traces_trace t ON t.id = s.trace_id "
            "WHERE t.workspace_id = %s", [workspace.pk],
        )  # fmt: skip
        steps = cursor.fetchone()[0]
        cursor.execute("ANALYZE traces_trace; ANALYZE traces_step; ANALYZE traces_tracewords;")
    return have, steps


def _queries(workspace, count: int, rng: random.Random) -> list[str]:  # type: ignore[no-untyped-def]
    """Words and two-word phrases from real step outputs and errors, rare and common."""
    from traces.models import Step

    texts = list(
        Step.objects.filter(trace__workspace=workspace)
        .exclude(error="").values_list("error", flat=True)[:2000]
    ) + [str(o) for o in Step.objects.filter(trace__workspace=workspace, output__isnull=False)
         .values_list("output", flat=True)[:2000]]  # fmt: skip
    words = [w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z_]{4,}", t)]
    picked: list[str] = []
    while len(picked) < count and words:
        word = rng.choice(words)
        if rng.random() < 0.3:
            at = words.index(word)
            if at + 1 < len(words):
                word = f"{word} {words[at + 1]}"
        if word not in picked:
            picked.append(word)
    return picked


def _baseline(workspace_id: int, text: str) -> tuple[int, list[int]]:
    """The same search as a sequential scan: ILIKE over every text it reads."""
    from django.db import connection

    like = f"%{text}%"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH hits AS (
                SELECT t.id, t.started_at FROM traces_trace t WHERE t.workspace_id = %(ws)s AND (
                    t.task ILIKE %(like)s OR t.external_id = %(text)s OR EXISTS (
                        SELECT 1 FROM traces_step s WHERE s.trace_id = t.id AND (
                            s.name ILIKE %(like)s OR s.input::text ILIKE %(like)s
                            OR s.output::text ILIKE %(like)s OR s.error ILIKE %(like)s)))
            )
            SELECT (SELECT count(*) FROM (SELECT 1 FROM hits LIMIT 1001) capped),
                   ARRAY(SELECT id FROM hits ORDER BY started_at DESC, id DESC LIMIT 50)
            """,
            {"ws": workspace_id, "like": like, "text": text},
        )
        total, first = cursor.fetchone()
    return total, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--traces", type=int, default=0)
    parser.add_argument("--queries", type=int, default=0)
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=1_000_000,
        help="time the baselines on the first N queries only (at 1M: minutes each)",
    )
    parser.add_argument(
        "--workspace",
        default="",
        help="a workspace slug to fill (or reuse, if it holds N traces) and keep",
    )
    args = parser.parse_args()
    n = args.traces or (20_000 if args.quick else 100_000)
    n_queries = args.queries or (30 if args.quick else 60)

    import django

    django.setup()
    from traces.selectors import TraceFilters, trace_list
    from traces.views import PAGE_SIZE, SEARCH_COUNT_CAP, SearchPaginator
    from workspaces.models import Workspace

    rng = random.Random(7)
    suffix = uuid.uuid4().hex[:8]
    if args.workspace:
        workspace, _ = Workspace.objects.get_or_create(
            slug=args.workspace, defaults={"name": f"bench trace search {args.workspace}"}
        )
    else:
        workspace = Workspace.objects.create(name=f"bench trace search {suffix}",
                                             slug=f"bench-trace-search-{suffix}")  # fmt: skip
    try:
        started = time.perf_counter()
        if not workspace.traces.exists():
            _import(workspace)
        traces, steps = _fill(workspace, n)
        print(f"{traces:,} traces, {steps:,} steps loaded in {time.perf_counter() - started:.0f} s")
        queries = _queries(workspace, n_queries, rng)
        new: list[float] = []
        whole: list[float] = []
        rare: list[bool] = []
        old: list[float] = []
        hits: list[int] = []
        agree = 0
        for number, text in enumerate(queries):
            f = TraceFilters(q=text)
            # As the list page runs it: the capped count and the first page, each read
            # as the newest matches it needs (SearchPaginator).
            began = time.perf_counter()
            paginator = SearchPaginator(workspace, f, PAGE_SIZE)
            count = paginator.count
            page = [t.pk for t in paginator.page(1).object_list]
            new.append((time.perf_counter() - began) * 1000)
            rare.append(not paginator._search(1).from_recent)
            # Not timed: the number of matches for the report, and whether the page and
            # the capped count are those of every match read and sorted.
            matches = trace_list(workspace=workspace, filters=f)
            hits.append(matches.count())
            first = list(matches.values_list("pk", flat=True)[:PAGE_SIZE])
            agree += page == first and count == min(hits[-1], SEARCH_COUNT_CAP + 1)
            if number >= args.baseline_queries:
                continue
            # Baselines on the first queries: every match read and sorted, and a scan.
            began = time.perf_counter()
            matches[: SEARCH_COUNT_CAP + 1].count()
            list(matches[:PAGE_SIZE])
            whole.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            _baseline(workspace.pk, text)
            old.append((time.perf_counter() - began) * 1000)
        print(f"{len(queries)} queries; traces matched per query: median "
              f"{statistics.median(hits):,.0f}, max {max(hits):,}; page and count as every "
              f"match sorted gives them: {agree} of {len(queries)}")  # fmt: skip
        print(
            f"  newest matches (the list's search): p50 {pct(new, 50):.1f} ms, "
            f"p95 {pct(new, 95):.1f} ms"
        )
        print(
            f"  every match, sorted, {len(whole)} queries: p50 {pct(whole, 50):.1f} ms, "
            f"p95 {pct(whole, 95):.1f} ms"
        )
        print(
            f"  sequential scan (ILIKE), {len(old)} queries: p50 {pct(old, 50):.1f} ms, "
            f"p95 {pct(old, 95):.1f} ms"
        )
        for label, keep in (("from the GIN index (rare among the newest runs)", True),
                            ("from the newest runs", False)):  # fmt: skip
            part = [ms for ms, r in zip(new, rare, strict=True) if r == keep]
            if part:
                print(f"    {label}: {len(part)} queries, p50 {pct(part, 50):.1f} ms, "
                      f"p95 {pct(part, 95):.1f} ms")  # fmt: skip
        slow = sorted(zip(new, hits, queries, strict=True), reverse=True)[:5]
        print("  slowest: " + "; ".join(f"{q!r} {ms:.0f} ms ({n:,} runs)" for ms, n, q in slow))
        print(
            f"RESULT trace_search_p95_ms={pct(new, 95):.1f} traces={traces} steps={steps} "
            f"baseline_seqscan_p95_ms={pct(old, 95):.1f} baseline_every_match_p95_ms="
            f"{pct(whole, 95):.1f} queries={len(queries)} baseline_queries={len(old)} "
            f"same_as_every_match={agree}/{len(queries)} "
            f"target<=200 met={'yes' if pct(new, 95) <= 200 else 'no'}"
        )
    finally:
        from django.db import connection

        if not args.workspace:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM traces_step WHERE trace_id IN "
                               "(SELECT id FROM traces_trace WHERE workspace_id = %s)",
                               [workspace.pk])  # fmt: skip
            workspace.delete()


if __name__ == "__main__":
    main()
