"""A Claude Code hook session as it grows: what each event costs at its 100th call
and at its 2,000th (7/8: linear as it grows).

    python bench/hook_session.py            # 2,000 calls (4,001 events)
    python bench/hook_session.py --quick    # 1,000 calls

Starts the default run's gunicorn (as bench/ingest.py does: 2 workers x 4 threads,
the app preloaded, an embedded Redis broker, no worker; its per-key rate limit
raised, since no agent sends events this fast) and sends one session to
`POST /api/v1/hooks/claude-code` one event at a time, as Claude Code's hooks do:
a prompt, then for each call its PreToolUse and its PostToolUse (a step added,
then that step's output). Each event's round trip is timed; the figure is the
median of the 100 events around each mark. A session whose events each cost the
same would print growth 1.0; cost proportional to the session's size would print
the ratio of the marks' sizes.

Same-run baselines, on the finished session in a rolled-back transaction: what
each event did to the run's words (trace search's index, `traces_tracewords`)
before migration 0016 (rebuild them from every step, by 0014's aggregate) against
what it does now (add its step's words); and `/healthz` during the session.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

# 0014's aggregate, for the baseline (created in this session's pg_temp only).
QUADRATIC = """
CREATE FUNCTION pg_temp.words_add(acc tsvector, more tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN more IS NULL THEN acc
                WHEN pg_column_size(acc) + pg_column_size(more) > 500000 THEN acc
                ELSE acc || strip(more) END
$$;
CREATE AGGREGATE pg_temp.words_agg(tsvector) (
    SFUNC = pg_temp.words_add, STYPE = tsvector, INITCOND = ''
);
"""


def events(session: str, calls: int) -> list[tuple[int, dict]]:
    """(call number, payload) in the order Claude Code sends them."""
    out = [(0, {"session_id": session, "hook_event_name": "UserPromptSubmit", "cwd": "/repo",
                "prompt": "Find why test_checkout fails and fix it"})]  # fmt: skip
    for i in range(1, calls + 1):
        call = {"session_id": session, "cwd": "/repo", "tool_name": "Bash",
                "tool_use_id": f"toolu_{session}_{i}",
                "tool_input": {"command": f"grep -rn 'def checkout_{i}' src/ --include=*.py"}}  # fmt: skip
        out.append((i, {**call, "hook_event_name": "PreToolUse"}))
        # What a Read or a grep returns: ~1.5 KB of code, some names new to the session.
        listing = "\n".join(
            f"src/shop/cart_{i % 40}.py:{10 * j}: total_{i}_{j} = apply_rule_{(i * j) % 97}"
            f"(cart.items, user.tier, code='SAVE{(i + j) % 13}')"
            for j in range(16)
        )
        out.append((i, {**call, "hook_event_name": "PostToolUse",
                        "tool_response": {"stdout": listing, "stderr": ""}}))  # fmt: skip
    return out


def timed_post(conn: http.client.HTTPConnection, key: str, path: str, body: bytes | None) -> float:
    started = time.perf_counter()
    if body is None:
        conn.request("GET", path)
    else:
        conn.request("POST", path, body=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {payload[:300]!r}")
    return time.perf_counter() - started


def words_ms(trace_id: int) -> dict[str, float | int]:
    """Milliseconds (best of 3, rolled back) for what an event did to the run's
    words before (rebuild them by 0014's aggregate) and does now (add its step's
    words to them), and a rebuild by today's function (a run's first steps, a
    step that lost a word)."""
    from django.db import connection, transaction

    queries = {
        "before": "SELECT length(pg_temp.words_add(strip(t.search_vector), (SELECT "
                  "pg_temp.words_agg(s.search_vector ORDER BY s.index) FROM traces_step s "
                  "WHERE s.trace_id = t.id))) FROM traces_trace t WHERE t.id = %s",
        "add": "SELECT length(traces_words_join(d.words, ARRAY[(SELECT s.search_vector "
               "FROM traces_step s WHERE s.trace_id = d.trace_id ORDER BY s.index DESC "
               "LIMIT 1)])) FROM traces_tracewords d WHERE d.trace_id = %s",
        "rebuild": "SELECT length(traces_words_join(t.search_vector, ARRAY(SELECT "
                   "s.search_vector FROM traces_step s WHERE s.trace_id = t.id ORDER BY "
                   "s.index))) FROM traces_trace t WHERE t.id = %s",
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in queries}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(QUADRATIC)
        cursor.execute("SELECT count(*) FROM traces_step WHERE trace_id = %s", [trace_id])
        steps = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_column_size(strip(words)) FROM traces_tracewords WHERE trace_id = %s",
            [trace_id],
        )
        size = cursor.fetchone()[0]
        for _ in range(3):
            for name, sql in queries.items():
                started = time.perf_counter()
                cursor.execute(sql, [trace_id])
                cursor.fetchone()
                times[name].append(1000 * (time.perf_counter() - started))
        transaction.set_rollback(True)
    return {**{name: min(t) for name, t in times.items()}, "steps": steps, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, help="tool calls in the session")
    args = parser.parse_args()
    calls = args.calls or (1000 if args.quick else 2000)
    marks = [m for m in (100, 500, 1000, 2000, 4000) if m <= calls]

    import django

    django.setup()
    from django.db import close_old_connections
    from ingest import bench_workspace, start_server

    from hivemind_web import embedded_broker
    from traces.models import Trace

    # One event per request, faster than any agent sends them: past the default
    # run's 1,200 ingest requests a minute per key (the bench's server only).
    os.environ["HIVEMIND_INGEST_RATE_LIMIT"] = "1000000"
    workspace, key = bench_workspace()
    socket_path = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp")) / "redis.sock"
    broker = embedded_broker.start(socket_path)
    proc, url = start_server(f"redis+socket://{socket_path}")
    session = uuid.uuid4().hex[:8]
    latency: list[tuple[int, float]] = []  # (call number, seconds)
    healthz: list[float] = []
    try:
        target = urlparse(url)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
        for n, payload in events(session, calls):
            latency.append((n, timed_post(conn, key, "/api/v1/hooks/claude-code",
                                          json.dumps(payload).encode())))  # fmt: skip
            if n % 10 == 0 and payload["hook_event_name"] != "PreToolUse":
                healthz.append(timed_post(conn, key, "/healthz", None))
        close_old_connections()
        trace = Trace.objects.get(workspace=workspace, session_id=session)
        words = words_ms(trace.pk)
    finally:
        for process in (proc, broker):
            process.terminate()
            process.wait(timeout=30)
        workspace.delete()

    def around(mark: int) -> float:
        window = [s for n, s in latency if mark - 25 < n <= mark + 25] or [s for _, s in latency]
        return 1000 * statistics.median(window)

    print(f"session: {calls} calls, {len(latency)} events, {words['steps']} steps stored, "
          f"its words {words['bytes'] / 1000:.0f} KB")  # fmt: skip
    for mark in marks:
        print(f"event cost around call {mark:5d}: median {around(mark):6.1f} ms")
    print(f"/healthz during the session: median {1000 * statistics.median(healthz):.1f} ms")
    print(f"the run's words, per step an event adds: before (rebuilt by 0014's aggregate) "
          f"{words['before']:.1f} ms, now (added) {words['add']:.1f} ms; "
          f"a rebuild now {words['rebuild']:.1f} ms")  # fmt: skip
    first, last = marks[0], marks[-1]
    growth = around(last) / around(first)
    print(
        f"RESULT hook_event_ms_at_{first}={around(first):.1f} hook_event_ms_at_{last}={around(last):.1f} "
        f"growth={growth:.2f} for_x{last // first}_calls words_add_ms={words['add']:.1f} "
        f"baseline_words_rebuild_ms={words['before']:.1f} steps={words['steps']} "
        f"baseline_healthz_ms={1000 * statistics.median(healthz):.1f}"
    )


if __name__ == "__main__":
    main()
