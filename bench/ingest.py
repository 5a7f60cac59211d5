"""Ingest throughput: traces over HTTP (with redaction) vs raw COPY of the same rows.

    python bench/ingest.py            # full: 2,000 traces x 20 steps
    python bench/ingest.py --quick    # 200 traces x 20 steps
    python bench/ingest.py --url http://host:8000 --key hm_...   # against a server you run
    python bench/ingest.py --redaction off   # the same with every built-in kind switched off
    python bench/ingest.py --resend          # also each round's batches sent again as they were
    python bench/ingest.py --grown           # also each round's runs sent again, a step longer

Without --url it starts the default run's gunicorn (`hivemind_web.run.web_command`:
2 workers x 4 threads, the app preloaded) on a free loopback port, against the
same database the app uses, with an embedded Redis broker on a private socket
(as `make run` does; no worker, so the analysis each batch queues waits there
and is dropped with the broker), and creates a throw-away workspace and key.
Request bodies are serialised before the clock starts, so the figure is the
server's: validate, redact, upsert, and queue the analysis.
Baseline: COPY of the same step rows into a table shaped like traces_step. Also
printed, not the baseline: the same COPY into traces_step itself, whose stored
search vector, runs' words and foreign key the product's writes pay (the words
built as the writer builds a new run's: one statement after the steps). Each of
`--rounds` rounds (3) sends fresh traces over HTTP and then COPYs the same rows;
each figure is the median over the rounds.
`--redaction off` switches every built-in kind of the bench workspace's PII policy
off (NUL removal and the length cap stay): what ingest would reach if redaction
cost nothing, a bound, not a setting anyone should run with.
`--resend` sends each round's batches a second time, unchanged (a client's retry),
and prints how long that took against the first send: the server answers them
`unchanged` without writing or analysing them again.
`--grown` sends each round's runs a second time whole, each with one step more
(a client that re-sends its run as it grows, as a transcript imported at each
turn's end is), and prints how long that took against the first send: the steps
sent as they are stored are not written again.
`--parts` also COPYs the same rows into two copies of traces_step (its indexes and
stored search vector; and its foreign key too), and prints what each part of the
step table costs a row (a regular table each, as the raw COPY's).
`--data PATH [--format F]` sends real runs instead of the made-up ones: the traces
the product's importer reads from PATH (a file or a folder; `--format`, default
tau2-bench), each round under fresh external ids. Real runs repeat their strings
(a conversation's turns in each later message, a tool's output quoted again), which
the made-up steps do not.

    python bench/ingest.py --data ../shared/devdata/tau2-bench_sierra_gpt-4.1
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")


def make_traces(count: int, steps: int, run: str) -> list[dict]:
    """Realistic steps with some PII in them, so redaction has work to do."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    traces = []
    for i in range(count):
        trace_steps = []
        for s in range(steps):
            step = {
                "index": s,
                "kind": "tool_call" if s % 2 else "tool_result",
                "name": f"tool.{s % 5}",
                "input": {"query": f"customer{i}@example.com order {i * 31 + s}", "page": s},
                "output": {"rows": s, "text": "ok, fetched the records for the refund request"},
                "duration_ms": 12.5,
                "tokens": 120,
            }
            if s == steps - 1 and i % 10 == 0:
                step["error"] = f"429 Too Many Requests: retry after {s}s from 10.0.{s}.{i % 250}"
            trace_steps.append(step)
        traces.append({
            "external_id": f"bench-{run}-{i}",
            "agent": f"bench-agent-{i % 3}",
            "task": f"Refund order {i} for customer{i}@example.com",
            "status": "failed" if i % 10 == 0 else "succeeded",
            "started_at": (start + timedelta(seconds=i)).isoformat(),
            "steps": trace_steps,
        })  # fmt: skip
    return traces


def real_traces(path: Path, fmt: str, run: str) -> list[dict]:
    """The traces the importer reads from `path` (a file, or every file of the format
    in a folder), with external ids made unique to this round."""
    from hivemind_client.formats import folder_patterns, parse

    files = [path] if path.is_file() else sorted(
        {f for pattern in folder_patterns(fmt) for f in path.rglob(pattern) if f.is_file()}
    )  # fmt: skip
    traces = []
    for file in files:
        for trace in parse(fmt, file).traces:
            trace["external_id"] = f"{trace.get('external_id') or len(traces)}-{run}"[:200]
            traces.append(trace)
    if not traces:
        raise SystemExit(f"no {fmt} traces in {path}")
    return traces


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(broker_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    from hivemind_web.run import web_command

    # The default run's web server (preloaded app, frozen heap, 2 workers x 4
    # threads), without its access log.
    proc = subprocess.Popen(
        web_command("127.0.0.1", port, access_log=False),
        cwd=ROOT, env={**os.environ, "CELERY_BROKER_URL": broker_url},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not come up within 60 s")


def bench_workspace(redaction: bool = True) -> tuple[object, str]:
    from django.contrib.auth import get_user_model

    from workspaces.models import PiiPolicy, Scope
    from workspaces.redaction import POLICY_SWITCHES
    from workspaces.services import api_key_create, workspace_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    suffix = uuid.uuid4().hex[:8]
    ws = workspace_create(name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=user)
    if not redaction:
        PiiPolicy.objects.update_or_create(
            workspace=ws, defaults=dict.fromkeys(POLICY_SWITCHES, False)
        )
    key = api_key_create(workspace=ws, name="bench", scopes=[Scope.INGEST], actor=None).secret
    return ws, key


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of `root`'s
    tree: the web server's master and workers."""
    hz = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / hz
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(times.get(pid, 0.0) for pid in tree)


def _machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    hz = os.sysconf("SC_CLK_TCK")
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / hz, sum(fields) / hz


def send_all(url: str, key: str, bodies: list[bytes], concurrency: int) -> float:
    target = urlparse(url)

    def worker(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=300)
        for body in chunk:
            conn.request("POST", "/api/v1/traces", body=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise SystemExit(f"ingest answered {response.status}: {payload[:300]!r}")

    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, chunks))
    return time.perf_counter() - started


def _step_row(position: int, s: dict) -> tuple:
    """A step as the COPYs write it (its position when it gives no index, as the
    server numbers it)."""
    return (
        s.get("index", position), s["kind"], s.get("name", ""), json.dumps(s.get("input")),
        json.dumps(s.get("output")), s.get("error", ""), None, s.get("duration_ms"), s.get("tokens"),
    )  # fmt: skip


def copy_baseline(traces: list[dict]) -> float:
    """COPY the same step rows (already serialised) into a traces_step-shaped table."""
    import psycopg
    from django.db import connection

    rows = [(i, *_step_row(n, s)) for i, t in enumerate(traces) for n, s in enumerate(t["steps"])]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_step")
        conn.execute(
            "CREATE TABLE bench_copy_step (LIKE traces_step INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_copy_step (trace_id, index, kind, name, input, output, error,"
                " started_at, duration_ms, tokens) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_step")
    return elapsed


def _bare_runs(cursor: object, workspace: object, count: int, prefix: str) -> list[int]:
    """`count` runs with nothing in them, in the bench workspace, for step rows to
    reference (inside a transaction the caller rolls back); their ids in order."""
    cursor.execute(  # type: ignore[attr-defined]
        "INSERT INTO traces_trace (workspace_id, external_id, agent, session_id, task,"
        " task_key, checks, status, started_at, model, skills_in_scope, metadata,"
        " step_count, error_count, total_tokens, redaction_counts, redaction_parts,"
        " received_at, updated_at)"
        " SELECT %s, %s || '-' || g, 'a', '', 't', '', '[]', 'succeeded', now(), '', '{}',"
        " '{}', 0, 0, 0, '{}', '{}', now(), now() FROM generate_series(1, %s) g"
        " RETURNING id",
        [workspace.pk, prefix, count],  # type: ignore[attr-defined]
    )
    return sorted(row[0] for row in cursor.fetchall())  # type: ignore[attr-defined]


def copy_into_step_table(traces: list[dict], workspace: object) -> float:
    """The same step rows COPYed into `traces_step` itself, for bare runs of the bench
    workspace, in a transaction rolled back afterwards: what the table's stored search
    vector, the runs' words (trace search) and the deferred foreign-key check cost
    with no Python at all. Not the issue's baseline; the ceiling under it. The words
    are built as the product's writer builds a new run's (`traces.ingest`: the insert
    triggers stand aside, then one statement after the steps)."""
    from django.db import connection, transaction

    from traces.ingest import _words_by_writer, _words_of_new_runs

    rows = [(i, *_step_row(n, s)) for i, t in enumerate(traces) for n, s in enumerate(t["steps"])]
    with transaction.atomic(), connection.cursor() as cursor:
        _words_by_writer(cursor, True)
        ids = _bare_runs(cursor, workspace, len(traces), "copy")
        started = time.perf_counter()
        with cursor.copy(
            "COPY traces_step (trace_id, index, kind, name, input, output, error, started_at,"
            " duration_ms, tokens) FROM STDIN"
        ) as copy:
            for i, *row in rows:
                copy.write_row((ids[i], *row))
        _words_of_new_runs(cursor, ids)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the commit's foreign-key checks
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def copy_parts(traces: list[dict], workspace: object) -> tuple[float, float]:
    """The same step rows COPYed into two copies of `traces_step` (a regular table
    each, as the raw COPY's): with its indexes and its stored search vector; and with
    the foreign key to `traces_trace` as well (bare runs, rolled back). With the raw
    COPY and the COPY into `traces_step` itself (which adds the runs' words), they
    say what each part of the step table costs a row: `--parts`."""
    from django.db import connection, transaction

    rows = [(i, *_step_row(n, s)) for i, t in enumerate(traces) for n, s in enumerate(t["steps"])]
    columns = "trace_id, index, kind, name, input, output, error, started_at, duration_ms, tokens"
    seconds = []
    with connection.cursor() as cursor:
        for table, foreign_key in (("bench_copy_vector", False), ("bench_copy_vector_fk", True)):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE traces_step INCLUDING ALL)")
            if foreign_key:
                cursor.execute(
                    f"ALTER TABLE {table} ADD FOREIGN KEY (trace_id) REFERENCES traces_trace (id)"
                    " DEFERRABLE INITIALLY DEFERRED"
                )
            try:
                with transaction.atomic():
                    ids = list(range(len(traces)))
                    if foreign_key:
                        ids = _bare_runs(cursor, workspace, len(traces), "parts")
                    started = time.perf_counter()
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for i, *row in rows:
                            copy.write_row((ids[i], *row))
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    seconds.append(time.perf_counter() - started)
                    transaction.set_rollback(True)
            finally:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--traces", type=int)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="traces per request")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="HTTP rounds, each with its COPYs")
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--resend", action="store_true",
                        help="send each round's batches again, unchanged, and time it")  # fmt: skip
    parser.add_argument("--grown", action="store_true",
                        help="send each round's runs again, a step longer, and time it")  # fmt: skip
    parser.add_argument(
        "--redaction", choices=["on", "off"], default="on",
        help="off: every built-in kind off in the bench workspace (a bound, not the figure)",
    )  # fmt: skip
    parser.add_argument("--parts", action="store_true",
                        help="also what each part of the step table costs a row")  # fmt: skip
    parser.add_argument("--data", type=Path, help="real runs to send: a file or a folder")
    parser.add_argument("--format", default="tau2-bench", help="the format of --data's files")
    args = parser.parse_args()
    count = args.traces or (200 if args.quick else 2000)

    import django

    django.setup()
    proc = broker = None
    workspace = None
    if args.url:
        url, key = args.url, args.key
    else:
        import tempfile

        from hivemind_web import embedded_broker

        workspace, key = bench_workspace(redaction=args.redaction == "on")
        socket_path = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp")) / "redis.sock"
        broker = embedded_broker.start(socket_path)
        proc, url = start_server(f"redis+socket://{socket_path}")
    total_steps = count * args.steps
    rounds = []  # (http seconds, raw COPY seconds, step-table COPY seconds or None)
    parts: list[tuple[float, float]] = []  # --parts: (with the search vector, and the key)
    resends: list[float] = []  # seconds to send each round's batches again
    grown: list[float] = []  # seconds to send each round's runs again, a step longer
    # CPU seconds during each HTTP phase: (web server, this client, machine busy, machine all)
    cpu: list[tuple[float | None, float, float, float]] = []
    try:
        # Rounds of HTTP ingest, each followed by the COPYs of the same rows, the
        # figure the median of the rounds: on this size of machine one COPY of
        # 40,000 rows varies by half from one minute to the next, and interleaving
        # lets a slow minute slow both sides of the ratio rather than one.
        for _ in range(args.rounds):
            run = uuid.uuid4().hex[:6]
            traces = (real_traces(args.data, args.format, run) if args.data
                      else make_traces(count, args.steps, run))  # fmt: skip
            count, total_steps = len(traces), sum(len(t["steps"]) for t in traces)
            bodies = [
                json.dumps({"traces": traces[i : i + args.batch]}).encode()
                for i in range(0, count, args.batch)
            ]
            server_before = _tree_cpu(proc.pid) if proc is not None else 0.0
            client_before = time.process_time()
            machine_before = _machine_cpu()
            http_seconds = send_all(url, key, bodies, args.concurrency)
            machine_after = _machine_cpu()
            cpu.append((
                _tree_cpu(proc.pid) - server_before if proc is not None else None,
                time.process_time() - client_before,
                machine_after[0] - machine_before[0],
                machine_after[1] - machine_before[1],
            ))  # fmt: skip
            if args.resend:
                resends.append(send_all(url, key, bodies, args.concurrency))
            if args.grown:
                longer = [{**t, "steps": [*t["steps"], {
                    "index": len(t["steps"]), "kind": "assistant_message",
                    "output": "Done: the refund was issued."}]} for t in traces]  # fmt: skip
                grown.append(send_all(url, key, [
                    json.dumps({"traces": longer[i : i + args.batch]}).encode()
                    for i in range(0, count, args.batch)
                ], args.concurrency))  # fmt: skip
            copy_seconds = copy_baseline(traces)
            table_seconds = (
                copy_into_step_table(traces, workspace) if workspace is not None else None
            )
            rounds.append((http_seconds, copy_seconds, table_seconds))
            if args.parts and workspace is not None:
                parts.append(copy_parts(traces, workspace))
    finally:
        for process in (proc, broker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        if workspace is not None:
            workspace.delete()
    print(f"traces={count} steps={total_steps} batch={args.batch} concurrency={args.concurrency}")
    for n, (http_seconds, copy_seconds, table_seconds) in enumerate(rounds, 1):
        table = "" if table_seconds is None else f", COPY into traces_step {table_seconds:.2f} s"
        print(f"round {n}: http ingest {http_seconds:.2f} s, raw COPY {copy_seconds:.2f} s{table}"
              f" -> ratio {copy_seconds / http_seconds:.3f}")  # fmt: skip

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    # Where the HTTP phases' CPU went, per step (summed over the rounds): the web
    # server's processes, this bench's client threads, and the rest of the machine
    # (PostgreSQL's backends, mostly); and how busy the machine's cores were.
    steps_sent = total_steps * len(cpu)
    if cpu and steps_sent:
        busy = sum(c[2] for c in cpu)
        client = sum(c[1] for c in cpu)
        server = sum(c[0] for c in cpu if c[0] is not None) if cpu[0][0] is not None else None
        rest = busy - client - (server or 0.0)
        shown = "n/a (--url)" if server is None else f"{1e6 * server / steps_sent:.1f}"
        print(f"CPU per step during the HTTP phases: web server {shown} µs, "
              f"bench client {1e6 * client / steps_sent:.1f} µs, "
              f"rest of the machine (PostgreSQL mostly) {1e6 * rest / steps_sent:.1f} µs; "
              f"cores busy {100 * busy / sum(c[3] for c in cpu):.0f}%")  # fmt: skip
    rate = total_steps / median([r[0] for r in rounds])
    baseline = total_steps / median([r[1] for r in rounds])
    print(f"http ingest (validate + redact + upsert + queue), median: {total_steps / rate:.2f} s")
    if resends:
        again = median(resends)
        print(f"the same batches sent again (a retry), median: {again:.2f} s "
              f"({total_steps / again:.0f} steps/s, {again * rate / total_steps:.2f} of the first send)")  # fmt: skip
    if grown:
        again = median(grown)
        print(f"the same runs sent again whole, a step longer each, median: {again:.2f} s "
              f"({again * rate / total_steps:.2f} of the first send)")  # fmt: skip
    print(f"raw COPY of the same step rows, median:                 {total_steps / baseline:.2f} s")
    table = ""
    if rounds and rounds[0][2] is not None:
        table_rate = total_steps / median([r[2] for r in rounds if r[2] is not None])
        print(f"COPY into traces_step itself, median: {total_steps / table_rate:.2f} s"
              f"  ({table_rate:.0f} rows/s, {table_rate / baseline:.3f} of the raw COPY;"
              " search vector, runs' words, foreign key)")  # fmt: skip
        table = f" step_table_copy={table_rate:.0f} ratio_to_step_table={rate / table_rate:.3f}"
        if parts:
            # Each part's cost a row: what it adds to the COPY before it (medians).
            raw_us = 1e6 / baseline
            vector_us = 1e6 * median([p[0] for p in parts]) / total_steps
            key_us = 1e6 * median([p[1] for p in parts]) / total_steps
            table_us = 1e6 / table_rate
            print(f"step table, µs a row (medians): raw COPY {raw_us:.1f}; + stored search vector"
                  f" {vector_us - raw_us:+.1f}; + foreign key {key_us - vector_us:+.1f};"
                  f" + runs' words {table_us - key_us:+.1f}; = traces_step {table_us:.1f}")  # fmt: skip
    print(
        f"RESULT ingest_steps_per_s={rate:.0f} steps/s baseline={baseline:.0f} "
        f"ratio={rate / baseline:.3f} traces={count} steps={total_steps} rounds={len(rounds)}{table}"
        f" redaction={args.redaction} data={'made-up' if args.data is None else args.format}"
    )


if __name__ == "__main__":
    main()
