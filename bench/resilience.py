"""No single client or crash takes the service down (issue 1/8), on the real default run.

    python bench/resilience.py --quick     # 20 requests per measurement
    python bench/resilience.py             # 100 requests per measurement

Starts `python -m hivemind_web.run --no-demo` (what `make run` runs: embedded
PostgreSQL and Redis, gunicorn with 2 workers x 4 threads, a Celery worker and
beat, all supervised) on a fresh data dir, then measures, each against its
baseline in the same run:

1. `/healthz`, the login page and ingest latency with nothing held (baseline),
   then with 50 `GET /mcp` streams held open by one ingest-only key that never
   read their answers (the attack that took the previous version down: 8 of
   them stopped every thread);
2. ingest while the broker is paused (SIGSTOP): how long a request takes, and
   what `/healthz` says about the broker;
3. after SIGKILL of the Celery worker and of the broker: seconds until the
   broker answers again and until a newly sent trace is analysed, with nobody
   touching anything;
4. after SIGKILL of the supervisor: processes of the run still alive 10 s later.

Prints a table and one RESULT line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HELD = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, bytes, float]:  # fmt: skip
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, data, (time.perf_counter() - started) * 1000
    except OSError:
        return 0, b"", (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def trace(external_id: str) -> bytes:
    return json.dumps({"traces": [{
        "external_id": external_id, "agent": "bench-agent", "status": "failed",
        "started_at": "2026-12-01T10:00:00Z",
        "steps": [{"kind": "tool_call", "name": "payments.refund", "input": {"order": 1},
                   "error": "429 Too Many Requests: retry after 2s"}],
    }]}).encode()  # fmt: skip


def measure(port: int, key: str, n: int, tag: str) -> dict[str, tuple[float, int]]:
    """p95 ms and failures of /healthz, /login/ and ingest, n requests each."""
    out = {}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for name, call in (
        ("healthz", lambda i: request(port, "GET", "/healthz")),
        ("page", lambda i: request(port, "GET", "/login/")),
        (
            "ingest",
            lambda i: request(port, "POST", "/api/v1/traces", trace(f"{tag}-{i}"), headers),
        ),  # fmt: skip
    ):
        times, failed = [], 0
        for i in range(n):
            status, _, ms = call(i)
            times.append(ms)
            failed += status != 200
        out[name] = (p95(times), failed)
    return out


def wait_for(check, timeout: float) -> float | None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.25)
    return None


def broker_state(port: int) -> str:
    return str(json.loads(request(port, "GET", "/healthz")[1] or b"{}").get("broker"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and its run.log")
    args = parser.parse_args()
    n = 20 if args.quick else 100
    data = Path(tempfile.mkdtemp(prefix="hm-bench-", dir="/tmp"))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")},
           "HIVEMIND_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "hivemind_web.settings"}  # fmt: skip
    log = open(data / "run.log", "wb")  # noqa: SIM115 - closed at the end
    started = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "hivemind_web.run", "--no-demo", f"--port={port}"],
                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        if wait_for(lambda: broker_state(port) == "ok", 300) is None:
            raise SystemExit(f"the run did not come up; see {data / 'run.log'}")
        print(f"up in {time.monotonic() - started:.1f} s on a fresh data dir")
        os.environ.update(env)
        import django

        django.setup()  # joins the run's embedded PostgreSQL
        import psutil
        from django.contrib.auth import get_user_model

        from workspaces.models import Scope
        from workspaces.services import api_key_create, workspace_create

        user, _ = get_user_model().objects.get_or_create(username="bench")
        workspace = workspace_create(name="Bench", slug="bench", owner=user)
        key = api_key_create(workspace=workspace, name="ingest only", scopes=[Scope.INGEST],
                             actor=None).secret  # fmt: skip

        measure(port, key, 10, "warm-up")  # first requests load code in both web workers
        base = measure(port, key, n, "base")
        held = []
        for _ in range(HELD):
            client = socket.create_connection(("127.0.0.1", port), timeout=30)
            client.sendall(f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}"
                           "\r\nAccept: text/event-stream\r\n\r\n".encode())  # fmt: skip
            held.append(client)
        loaded = measure(port, key, n, "held")
        answered_405 = sum(c.recv(64).startswith(b"HTTP/1.1 405") for c in held)
        for client in held:
            client.close()
        print(f"\n{'':10s} {'baseline p95 ms':>16s} {'50 held p95 ms':>15s} {'failed':>7s}")
        for name in ("healthz", "page", "ingest"):
            print(f"{name:10s} {base[name][0]:16.1f} {loaded[name][0]:15.1f} {loaded[name][1]:7d}")
        print(f"held GET /mcp answered 405 at once: {answered_405}/{HELD}")

        supervisor = psutil.Process(run.pid)

        def child(*words: str) -> psutil.Process:
            return next(c for c in supervisor.children()
                        if all(w in " ".join(c.cmdline()) for w in words))  # fmt: skip

        broker = child("redis-server")
        broker.send_signal(signal.SIGSTOP)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        paused = [request(port, "POST", "/api/v1/traces", trace(f"paused-{i}"), headers)
                  for i in range(n)]  # fmt: skip
        paused_state = broker_state(port)
        broker.send_signal(signal.SIGCONT)
        paused_ok = sum(p[0] == 200 for p in paused)
        paused_max = max(p[2] for p in paused)
        paused_p50 = statistics.median(p[2] for p in paused)
        print(
            f"\nbroker paused: {paused_ok}/{n} ingests stored, slowest {paused_max:.0f} ms, "
            f"median {paused_p50:.0f} ms (each web worker waits once, then leaves the broker "
            f"alone); /healthz said broker={paused_state}"
        )

        child("celery", "worker").send_signal(signal.SIGKILL)
        child("redis-server").send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        during = request(port, "POST", "/api/v1/traces", trace("killed-0"), headers)
        broker_back = wait_for(lambda: broker_state(port) == "ok", 120)
        time.sleep(max(0.0, 11 - (time.monotonic() - killed_at)))  # the web's 10 s backoff

        from failures.models import Incident

        def analysed() -> bool:
            request(port, "POST", "/api/v1/traces", trace("after-kill"), headers)
            return Incident.objects.filter(workspace=workspace,
                                           trace__external_id="after-kill").exists()  # fmt: skip

        wait_for(analysed, 300)
        recovered = time.monotonic() - killed_at
        print(
            f"worker and broker killed: ingest meanwhile {during[0]} in {during[2]:.0f} ms; "
            f"broker back after {broker_back or float('nan'):.1f} s; a new trace analysed "
            f"{recovered:.1f} s after the kill"
        )

        family = [p.pid for p in supervisor.children(recursive=True)]
        pg = (data / "pg" / "postmaster.pid").read_text().split()[0]
        family.append(int(pg))
        from django.db import connections

        connections.close_all()
        supervisor.send_signal(signal.SIGKILL)
        time.sleep(10)
        orphans = [pid for pid in family if psutil.pid_exists(pid)
                   and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
        print(
            f"supervisor killed: {len(orphans)} of {len(family)} processes still alive 10 s later"
        )
        print(
            f"RESULT held_mcp_streams={HELD} healthz_p95_ms={loaded['healthz'][0]:.1f} "
            f"baseline_healthz_p95_ms={base['healthz'][0]:.1f} page_p95_ms={loaded['page'][0]:.1f} "
            f"ingest_p95_ms={loaded['ingest'][0]:.1f} baseline_ingest_p95_ms={base['ingest'][0]:.1f} "
            f"failed_while_held={sum(v[1] for v in loaded.values())} "
            f"paused_broker_ingest_max_ms={paused_max:.0f} "
            f"paused_broker_ingest_p50_ms={paused_p50:.0f} paused_broker_stored={paused_ok}/{n} "
            f"recovered_after_kill_s={recovered:.1f} orphans_after_supervisor_kill={len(orphans)} "
            f"requests={n}"
        )
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=60)
        log.close()
        if args.keep:
            print(f"kept {data} (run.log inside)")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
