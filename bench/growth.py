"""Growth: does the loop's work grow with the data, or faster?

    python bench/growth.py            # 500, 2,000 and 8,000 traces
    python bench/growth.py --quick    # 125, 500 and 2,000 traces
    python bench/growth.py --sizes 500 2000

Starts the default runtime the way `make run` does (`python -m
hivemind_web.run --no-demo` on a free port: embedded PostgreSQL and Redis, a
Celery worker with beat, gunicorn; bench/loop.py's start-up), with the worker's
log in a file. For each size, a new workspace gets that many traces of the dev
data over HTTP (POST /api/v1/traces, batches of 50): tau2-bench and InterCode
runs through the product's own parsers (`hivemind_client.formats.parse`),
repeated as further copies with their own ids and task keys when a size needs
more runs than the data has. Then, with nobody clicking, the bench waits until
the loop has settled (after a first round of WARMUP traces, not reported, so
that the first size does not pay for the worker's first imports): every trace analysed, every incident embedded, no
drafting job queued or running, and the counts of modes, jobs and proposed
skills unchanged for SETTLE seconds. The time is from the first POST to the
last change (the settle wait itself not counted). Beat starts with a fresh
schedule, so no periodic task (each first runs one period after the start)
lands inside one size's window and not another's.

Printed per size: that time, the traces, failed runs, incidents, modes,
drafting jobs and proposals; the jobs that re-drafted a mode whose evidence had
not changed (a job for a mode with the same incident count as the mode's
previous job); and, over the whole run, the IntegrityErrors in the worker's
log. Baseline, in the same run: linear growth, i.e. each ×4 of data costing ×4
in time (the issue's bound is ×4.4).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop import DEVDATA, ROOT, bench_workspace, free_port  # noqa: E402
from loop import loop_state as state  # noqa: E402

BATCH = 50
WARMUP = 100
SETTLE = 30.0
SOURCES = [
    ("tau2-bench", DEVDATA / "tau2-bench_sierra_gpt-4.1"),
    ("intercode", DEVDATA / "intercode"),
]


def dev_traces() -> list[dict]:
    from hivemind_client.formats import files_under, parse

    traces: list[dict] = []
    for fmt, folder in SOURCES:
        if not folder.exists():
            raise SystemExit(f"{folder} not found: set HIVEMIND_DEVDATA to the devdata folder")
        for path in files_under([folder], fmt):
            traces += parse(fmt, path).traces
    # Interleaved, so that every size holds both sets (and each set's agents).
    traces.sort(key=lambda t: hashlib.sha256(t["external_id"].encode()).digest())
    return traces


def sized(source: list[dict], n: int, run: str) -> list[dict]:
    out = []
    for i in range(n):
        copy, base = divmod(i, len(source))
        trace = dict(source[base])
        trace["external_id"] = f"{run}-{copy}-{trace['external_id']}"[:200]
        if copy and trace.get("task_key"):
            trace["task_key"] = f"{trace['task_key']}#{copy}"[:200]
        out.append(trace)
    return out


def start_runtime(log: Path) -> tuple[subprocess.Popen, int]:
    from django.conf import settings

    # Beat's schedule starts fresh: a periodic task carried over from an earlier
    # run's schedule file (the hourly full re-cluster of every workspace) would
    # otherwise land inside one size's window and not another's. Each task then
    # first runs one period after the start (the 5-minute sweeps, past the bench).
    from hivemind_web import embedded_broker

    if embedded_broker.ping(settings.EMBEDDED_BROKER_SOCKET):
        raise SystemExit(
            f"Hivemind is running from {settings.DATA_DIR}: stop it first (this bench starts "
            "the runtime on the same data dir; its schedule file is about to be reset)."
        )
    for stale in Path(settings.DATA_DIR).glob("celerybeat-schedule*"):
        stale.unlink()
    port = free_port()
    handle = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hivemind_web.run", "--no-demo", "--port", str(port)],
        cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the runtime did not come up within 180 s")


def post(port: int, key: str, traces: list[dict]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for i in range(0, len(traces), BATCH):
        conn.request(
            "POST", "/api/v1/traces", json.dumps({"traces": traces[i : i + BATCH]}), headers
        )
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"ingest answered {response.status}: {body[:300]!r}")


def redrafts(workspace_id: int) -> int:
    """Jobs for a mode whose incident count was the same at its previous job."""
    from skills.models import DistillationJob

    last: dict[int, int] = {}
    same = 0
    for mode, incidents in (
        DistillationJob.objects.filter(workspace_id=workspace_id)
        .order_by("created_at", "id")
        .values_list("failure_mode_id", "mode_incidents")
    ):
        same += last.get(mode) == incidents
        last[mode] = incidents
    return same


def where_time_went(workspace_id: int, started_wall: float) -> dict[str, float]:
    """When the last trace was analysed (s after the first POST), and the full
    re-clusters: how many, and their seconds in all."""
    from django.db.models import Max, Sum

    from failures.models import ClusterRun, TraceAnalysis

    analyses = TraceAnalysis.objects.filter(workspace_id=workspace_id)
    last = analyses.aggregate(at=Max("analysed_at"))["at"]
    runs = ClusterRun.objects.filter(workspace_id=workspace_id, state="done")
    return {
        "analysed_by_s": (last.timestamp() - started_wall) if last else 0.0,
        "reclusters": runs.count(),
        "recluster_s": runs.aggregate(s=Sum("seconds"))["s"] or 0.0,
    }


def run_size(port: int, source: list[dict], n: int, timeout: float, made: list) -> dict:
    workspace, key, _ = bench_workspace()
    made.append(workspace)
    traces = sized(source, n, f"g{n}-{workspace.pk}")
    started, started_wall = time.perf_counter(), time.time()
    post(port, key, traces)
    posted = time.perf_counter() - started
    last_change, seen = time.perf_counter(), None
    while time.perf_counter() - started < timeout:
        now = state(workspace.pk)
        settled = now["analysed"] >= n and now["unembedded"] == 0 and now["open_jobs"] == 0
        if now != seen:
            seen, last_change = now, time.perf_counter()
        elif settled and time.perf_counter() - last_change >= SETTLE:
            break
        time.sleep(1.0)
    else:
        raise SystemExit(f"{n} traces: the loop had not settled after {timeout:.0f} s: {seen}")
    assert seen is not None
    return {"n": n, "seconds": last_change - started, "posted_s": posted,
            "redrafts": redrafts(workspace.pk), **seen,
            **where_time_went(workspace.pk, started_wall)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--log", type=Path, help="keep the runtime's log in this file")
    args = parser.parse_args()
    sizes = args.sizes or ([125, 500, 2000] if args.quick else [500, 2000, 8000])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
    import django

    django.setup()
    source = dev_traces()
    results = []
    made: list = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "runtime.log"
        proc, port = start_runtime(log)
        try:
            # The worker's first clustering and drafting load what they use (scikit-learn,
            # the drafting code): a round of WARMUP traces first, not reported.
            run_size(port, source, WARMUP, args.timeout, made)
            for n in sizes:
                result = run_size(port, source, n, args.timeout, made)
                results.append(result)
                print(f"{n:6,} traces: settled after {result['seconds']:7.1f} s (posted in "
                      f"{result['posted_s']:.1f} s); {result['failed']} failed, "
                      f"{result['incidents']} incidents, {result['modes']} modes, "
                      f"{result['jobs']} drafting jobs ({result['redrafts']} on unchanged "
                      f"evidence), {result['proposed']} proposed; last trace analysed at "
                      f"{result['analysed_by_s']:.1f} s; {result['reclusters']} full re-clusters "
                      f"({result['recluster_s']:.1f} s in all)", flush=True)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            for workspace in made:
                workspace.delete()
        text = log.read_text(errors="replace")
        if args.log:
            args.log.write_text(text)
    integrity = text.count("IntegrityError")
    ratios = [b["seconds"] / a["seconds"] for a, b in zip(results, results[1:], strict=False)]
    steps = [b["n"] / a["n"] for a, b in zip(results, results[1:], strict=False)]
    # Each step's time ratio as if the data had grown ×4 (r ** (log 4 / log step)).
    per_x4 = [r ** (math.log(4) / math.log(s)) for r, s in zip(ratios, steps, strict=True)]
    worst = max(per_x4) if per_x4 else 0.0
    print(
        f"time ratio per step: {', '.join(f'×{r:.2f} for ×{s:g} data' for r, s in zip(ratios, steps, strict=True))}"
    )
    print(f"IntegrityErrors in the runtime's log: {integrity}")
    print(
        "RESULT growth sizes=" + "/".join(str(r["n"]) for r in results)
        + " seconds=" + "/".join(f"{r['seconds']:.1f}" for r in results)
        + " ratios=" + "/".join(f"{r:.2f}" for r in ratios)
        + f" worst_per_x4={worst:.2f} baseline_linear_per_x4=4.00 target<=4.4"
        + f" redrafts_unchanged={sum(r['redrafts'] for r in results)}"
        + f" integrity_errors={integrity}"
        + " proposed=" + "/".join(str(r["proposed"]) for r in results)
    )  # fmt: skip


if __name__ == "__main__":
    main()
