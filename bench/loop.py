"""The loop on the default runtime: real agent runs in, proposed skills out, no click.

    python bench/loop.py            # 200 traces (InterCode SQL, gpt-4), full runtime
    python bench/loop.py --quick    # 60 traces
    python bench/loop.py --url http://127.0.0.1:8000   # against a `make run` you started

Without --url it starts the whole default runtime the way `make run` does
(`python -m hivemind_web.run --no-demo` on a free port: embedded PostgreSQL and
Redis, a Celery worker, beat, gunicorn). Either way it creates a throw-away
workspace with a key and a logged-in session, posts the traces over HTTP in
batches of 20 while a browser-like client keeps loading the dashboard pages, and
waits until skills are proposed, with nobody clicking anything.

The traces are real: episodes of gpt-4 on InterCode SQL (../shared/devdata/
intercode/, README there), one step per action, the observation as output, the
MySQL error as the step error when `valid_action` is false; failed when
`max_reward` < 1.

It stops 30 s after the first proposal, or once the loop has settled with none
(every trace analysed, every incident embedded, no drafting job queued or
running, and the counts of modes, jobs and skills unchanged for SETTLE
seconds): offline, a draft reaches the review queue only if an instruction
passed its backtest (issue 3/8), and on these runs none does, so "no proposal,
N drafts held back or skipped, and why" is an answer, not a time-out.

Printed: every request's time (the slowest is the figure: no request may take
more than 2 s), the time from the first POST to the first proposed skill (or to
the loop's settling), how many were proposed, and each drafting job's verdict. Baseline, in the same run: what one ingest request cost
before the worker existed, when the tasks ran inline in the request (one batch of
20 through the ingest service with Celery in eager mode, in this process, timed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
# The development data sits beside the checkout (../shared/devdata); elsewhere,
# point HIVEMIND_DEVDATA at it.
DEVDATA = Path(os.environ.get("HIVEMIND_DEVDATA", ROOT.parent / "shared" / "devdata"))
SOURCE = DEVDATA / "intercode/data/results/sql/gpt-4/ic_sql_multiturn_gpt-4_10_turns.json"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
BATCH = 20
PAGES = ("/w/{slug}/", "/w/{slug}/traces/", "/w/{slug}/failure-modes/", "/w/{slug}/skills/")


def intercode_traces(count: int, run: str) -> list[dict]:
    """The first `count` episodes that contain at least one failed action."""
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} not found: set HIVEMIND_DEVDATA to the devdata folder")
    episodes = json.loads(SOURCE.read_text())
    traces = []
    for key, episode in episodes.items():
        history = episode["turn_history"]
        valid = history.get("valid_action") or []
        if all(valid):
            continue
        steps: list[dict] = [{"kind": "user_prompt", "input": episode["query"]}]
        # The README says these lists are parallel (same length) in the multi-turn files.
        parts = zip(history["actions"], history["observations"], valid, strict=True)
        for action, observation, ok in parts:
            step = {"kind": "tool_call", "name": "sql", "input": {"query": action},
                    "output": str(observation)[:2000]}  # fmt: skip
            if ok is False:
                step["error"] = str(observation)[:2000]
            steps.append(step)
        traces.append({
            "external_id": f"intercode-sql-{key}-{run}", "agent": "intercode-sql-gpt-4",
            "task": episode["query"], "steps": steps,
            "status": "succeeded" if episode["summary"]["max_reward"] == 1.0 else "failed",
            "reward": episode["summary"]["max_reward"],
        })  # fmt: skip
        if len(traces) == count:
            break
    return traces


class Timer:
    """Every request's duration, by kind."""

    def __init__(self) -> None:
        self.times: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def request(self, url: str, method: str, path: str, body: bytes | None,
                headers: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        with self.lock:
            self.times.append((elapsed, f"{method} {path.split('?')[0]} → {response.status}"))
        return response.status, data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_runtime() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hivemind_web.run", "--no-demo", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the runtime did not come up within 180 s")


SETTLE = 20.0


def loop_state(workspace_id: int) -> dict[str, int]:
    """What the loop has done for a workspace so far (a fresh snapshot each call)."""
    from django.db import connection

    from failures.models import FailureMode, Incident, TraceAnalysis
    from skills.models import DistillationJob, JobState, Skill, SkillStatus
    from traces.models import Trace

    connection.close()
    jobs = DistillationJob.objects.filter(workspace_id=workspace_id)
    return {
        "traces": Trace.objects.filter(workspace_id=workspace_id).count(),
        "analysed": TraceAnalysis.objects.filter(workspace_id=workspace_id).count(),
        "failed": TraceAnalysis.objects.filter(workspace_id=workspace_id, verdict="failed").count(),
        "incidents": Incident.objects.filter(workspace_id=workspace_id).count(),
        "unembedded": Incident.objects.filter(workspace_id=workspace_id, embedded_at=None).count(),
        "modes": FailureMode.objects.filter(workspace_id=workspace_id).count(),
        "jobs": jobs.count(),
        "open_jobs": jobs.filter(state__in=[JobState.QUEUED, JobState.DRAFTING]).count(),
        "proposed": Skill.objects.filter(
            workspace_id=workspace_id, status=SkillStatus.PROPOSED
        ).count(),
    }


def settled(now: dict[str, int], posted: int) -> bool:
    """Nothing left for the worker: every trace in and analysed, every incident
    embedded, no drafting job waiting."""
    return (
        now["traces"] == posted
        and now["analysed"] == posted
        and now["unembedded"] == 0
        and now["open_jobs"] == 0
    )


def bench_workspace() -> tuple[object, str, str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from workspaces.models import Scope
    from workspaces.services import api_key_create, workspace_create

    suffix = uuid.uuid4().hex[:6]
    user = get_user_model().objects.create_user(f"bench-loop-{suffix}")
    workspace = workspace_create(name=f"Bench loop {suffix}", owner=user)
    key = api_key_create(workspace=workspace, name="bench", scopes=[Scope.INGEST, Scope.SKILLS_READ],
                         actor=None).secret  # fmt: skip
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    assert settings.SESSION_COOKIE_NAME
    return workspace, key, f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def browse(url: str, slug: str, cookie: str, timer: Timer, stop: threading.Event) -> None:
    """A PM with the dashboard open: one page load a second while the loop runs."""
    i = 0
    while not stop.is_set():
        path = PAGES[i % len(PAGES)].format(slug=slug)
        status, _ = timer.request(url, "GET", path, None, {"Cookie": cookie})
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
        i += 1
        stop.wait(1.0)


def inline_baseline(traces: list[dict]) -> float:
    """One batch ingested the way a request did before the worker existed: tasks
    run inline where they are enqueued (eager), so the request itself finds the
    incidents, embeds them, clusters and drafts."""
    from failures.embedding import get_embedder
    from hivemind_web.celery import app
    from traces.services import trace_ingest_batch

    workspace, _, _ = bench_workspace()
    get_embedder()  # loaded once per process in both set-ups: not part of a request
    app.conf.task_always_eager = True
    try:
        started = time.perf_counter()
        trace_ingest_batch(workspace=workspace, items=traces)  # outside a transaction:
        elapsed = time.perf_counter() - started  # on_commit work runs right here
    finally:
        app.conf.task_always_eager = False
        workspace.delete()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--traces", type=int)
    parser.add_argument("--url", help="a running `make run` (same database as this checkout)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    count = args.traces or (60 if args.quick else 200)

    import django

    django.setup()
    from skills.models import DistillationJob, Skill

    traces = intercode_traces(count, uuid.uuid4().hex[:6])
    proc = None
    url = args.url
    if url is None:
        proc, url = start_runtime()
    workspace, key, cookie = bench_workspace()
    timer = Timer()
    stop = threading.Event()
    browser = threading.Thread(target=browse, args=(url, workspace.slug, cookie, timer, stop))
    try:
        browser.start()
        started = time.perf_counter()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for i in range(0, len(traces), BATCH):
            body = json.dumps({"traces": traces[i : i + BATCH]}).encode()
            status, data = timer.request(url, "POST", "/api/v1/traces", body, headers)
            if status != 200:
                raise SystemExit(f"ingest answered {status}: {data[:300]!r}")
        first = None
        settled_at = None  # seconds after the first POST, once nothing changed for SETTLE
        last, last_change = None, time.perf_counter()
        while time.perf_counter() - started < args.timeout:
            now = loop_state(workspace.pk)  # type: ignore[attr-defined]
            if now["proposed"] and first is None:
                first = time.perf_counter() - started
            if first is not None and time.perf_counter() - started > first + 30:
                break  # give the loop 30 s more to propose the rest
            if now != last:
                last, last_change = now, time.perf_counter()
            elif settled(now, len(traces)) and time.perf_counter() - last_change >= SETTLE:
                settled_at = last_change - started
                break
            time.sleep(1)
        stop.set()
        browser.join()
        proposals = list(
            Skill.objects.filter(workspace=workspace).values_list("name", "status", "source_mode")
        )
        jobs = list(
            DistillationJob.objects.filter(workspace=workspace)
            .order_by("created_at", "id")
            .values_list("failure_mode_id", "state", "verdict", "detail", "held_back")
        )
        final = loop_state(workspace.pk)  # type: ignore[attr-defined]
    finally:
        stop.set()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        workspace.delete()
    baseline = inline_baseline(intercode_traces(BATCH, uuid.uuid4().hex[:6]))
    slowest, what = max(timer.times)
    print(f"traces={len(traces)} (InterCode SQL, gpt-4; {sum(t['status'] == 'failed' for t in traces)}"
          f" failed) requests={len(timer.times)}")  # fmt: skip
    for seconds, label in sorted(timer.times, reverse=True)[:5]:
        print(f"  slow: {seconds * 1000:7.0f} ms  {label}")
    print(f"{final['failed']} runs diagnosed failed, {final['incidents']} incidents, "
          f"{final['modes']} modes, {len(jobs)} drafting jobs")  # fmt: skip
    if first is not None:
        print(f"first proposed skill after {first:.1f} s")
    elif settled_at is not None:
        print(f"no skill was proposed; the loop settled {settled_at:.1f} s after the first POST")
    else:
        print(f"no skill was proposed, and the loop had not settled after {args.timeout:.0f} s")
    for name, status, mode in proposals:
        print(f"  {status:9s} {name} (mode {mode})")
    for mode, state, verdict, detail, held in jobs:
        why = " ".join(detail.split())[:160]
        print(f"  job for mode {mode}: {state}, {verdict or '-'}, {len(held)} held back: {why}")
    print(f"baseline: one batch of {BATCH} with the analysis inline took {baseline * 1000:.0f} ms")
    print(
        f"RESULT slowest_request_ms={slowest * 1000:.0f} ms baseline={baseline * 1000:.0f} "
        f"ratio={slowest / baseline:.3f} proposed_skills={len(proposals)} "
        f"first_proposal_s={first if first is not None else -1:.1f} "
        f"settled_s={settled_at if settled_at is not None else -1:.1f} drafting_jobs={len(jobs)} "
        f"held_back={sum(len(j[4]) for j in jobs)} slowest={what.replace(' ', '_')}"
    )


if __name__ == "__main__":
    main()
