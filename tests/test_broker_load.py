"""Bounded load with a real Celery worker on Redis that is killed and restarted.

Traces go over HTTP (loopback live server) from several threads while a real
`celery worker` (Redis broker at 127.0.0.1:6379, database 7) embeds incidents.
Midway the worker is SIGKILLed and later started again. Afterwards every trace
and incident is stored exactly once and every incident gets its embedding:
redelivery (acks_late + a short visibility timeout) and the periodic sweep make
up for the work the dead worker held.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from failures.models import Incident
from tests.factories import celery_broker, make_key, make_user, make_workspace
from traces.models import Trace

REDIS_URL = "redis://127.0.0.1:6379/7"
ROOT = Path(__file__).resolve().parent.parent
TRACES, THREADS, BATCH = 120, 4, 5


def _redis_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no broker here
        return False


pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not _redis_up(), reason="needs Redis at 127.0.0.1:6379 (DESIGN.md §7)"),
]


def _worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "CELERY_BROKER_URL": REDIS_URL,
        "HIVEMIND_DATA_DIR": str(settings.DATA_DIR),
        "HIVEMIND_DB_NAME": connection.settings_dict["NAME"],
        "HIVEMIND_BROKER_VISIBILITY_TIMEOUT": "5",
        "DJANGO_SETTINGS_MODULE": "hivemind_web.settings",
    }
    if os.environ.get("DATABASE_URL"):  # an external server: same host, the test database
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + env[
            "HIVEMIND_DB_NAME"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hivemind_web", "worker", "--pool", "solo",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _payload(i: int) -> dict:
    return {
        "external_id": f"load-{i}", "agent": "load-agent", "status": "failed",
        "task": f"Refund order {i}",
        "steps": [
            {"kind": "user_prompt", "input": f"Refund order {i}"},
            {"kind": "tool_call", "name": "stripe.refund", "error": f"429 Too Many Requests ({i})"},
            {"kind": "tool_call", "name": "db.write", "error": f"deadlock detected ({i})"},
        ],
    }  # fmt: skip


def _send(url: str, key: str, batches: list[list[dict]], errors: list[str]) -> None:
    for batch in batches:
        body = json.dumps({"traces": batch}).encode()
        for attempt in range(5):  # a client retries; upserts make that safe
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status == 200:
                        break
            except OSError as exc:
                if attempt == 4:
                    errors.append(str(exc))
                time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_load_loses_nothing(live_server):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with celery_broker(REDIS_URL, visibility_timeout=5) as app:
        _run_load(live_server, app)


def _run_load(live_server, app) -> None:  # type: ignore[no-untyped-def]
    user = make_user("load-admin")
    workspace = make_workspace(name="Load", owner=user)
    key = make_key(workspace)
    worker = _worker()
    try:
        batches = [[_payload(i) for i in range(n, n + BATCH)] for n in range(0, TRACES, BATCH)]
        first, second = batches[: len(batches) // 2], batches[len(batches) // 2 :]
        errors: list[str] = []

        def run(part: list[list[dict]]) -> None:
            threads = [threading.Thread(target=_send, args=(
                f"{live_server.url}/api/v1/traces", key, part[t::THREADS], errors))
                for t in range(THREADS)]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        run(first)
        time.sleep(3)  # the worker is busy embedding (model loading / tasks in hand)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        run(second)  # sent while no worker runs: queued in Redis
        worker = _worker()
        # The periodic sweep (beat runs it every 5 minutes) picks up anything lost.
        app.tasks["failures.tasks.sweep_unfinished"].delay()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            # Incidents are found by the worker after ingest: all there, all embedded.
            incidents = Incident.objects.filter(workspace=workspace)
            if incidents.count() == 2 * TRACES and not incidents.filter(embedded_at=None).exists():
                break
            time.sleep(2)
        assert not errors, errors
        assert Trace.objects.filter(workspace=workspace).count() == TRACES
        ids = list(Trace.objects.filter(workspace=workspace).values_list("external_id", flat=True))
        assert len(set(ids)) == TRACES
        incidents = Incident.objects.filter(workspace=workspace)
        assert incidents.count() == 2 * TRACES  # one per failing step, none twice
        assert not incidents.filter(embedded_at=None).exists(), "incidents left unembedded"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
