"""`make run`'s supervisor brings the service back on its own.

The real `python -m hivemind_web.run` (web, worker, beat, embedded Redis) on
the test database. The Celery worker and the broker are killed with SIGKILL:
ingest still answers and stores at once, the supervisor restarts both, and a
trace sent afterwards is analysed (its incidents appear) with no one touching
anything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from failures.models import Incident
from tests.factories import make_key, make_user, make_workspace, trace_payload
from tests.test_resilience import ROOT, _free_port, _get, _post_json
from traces.models import Trace
from workspaces.models import Scope

STARTUP = 240.0  # seconds: a liveness bound for a busy 2-core machine


def _wait(what: str, check, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _has_child(supervisor: psutil.Process, *words: str) -> bool:
    try:
        _child(supervisor, *words)
    except AssertionError:
        return False
    return True


def _child(supervisor: psutil.Process, *words: str) -> psutil.Process:
    for child in supervisor.children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped
                continue
            line = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if all(w in line for w in words):
            return child
    raise AssertionError(f"no child running {words}")


@pytest.mark.django_db(transaction=True)
def test_killed_worker_and_broker_come_back_and_ingest_never_stops():
    workspace = make_workspace(name="Supervised", owner=make_user("supervised-admin"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    directory = Path(tempfile.mkdtemp(prefix="hm-", dir="/tmp"))  # short: socket paths
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "HIVEMIND_DATA_DIR": str(settings.DATA_DIR),
        "HIVEMIND_DB_NAME": connection.settings_dict["NAME"],
        "HIVEMIND_BROKER_SOCKET": str(directory / "redis.sock"),
        "HIVEMIND_TASKS_EAGER": "0", "DJANGO_SETTINGS_MODULE": "hivemind_web.settings",
    }  # fmt: skip
    log = open(directory / "run.log", "wb")  # noqa: SIM115 - closed in finally
    run = subprocess.Popen(
        [sys.executable, "-m", "hivemind_web.run", "--no-demo", f"--port={port}",
         "--web-workers=1", "--concurrency=1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait("the service", lambda: json.loads(_get(f"{url}/healthz")[1]).get("broker") == "ok",
              STARTUP)  # fmt: skip
        supervisor = psutil.Process(run.pid)
        _wait("the worker", lambda: _has_child(supervisor, "celery", "worker"), 120)
        _child(supervisor, "celery", "worker").send_signal(signal.SIGKILL)
        _child(supervisor, "redis-server").send_signal(signal.SIGKILL)
        # Ingest answers and stores while both are down.
        status, body = _post_json(f"{url}/api/v1/traces", {"traces": [trace_payload("down-1")]},
                                  key)  # fmt: skip
        assert status == 200, body
        assert Trace.objects.filter(workspace=workspace, external_id="down-1").exists()
        # Both come back without anyone touching them...
        _wait("the broker", lambda: json.loads(_get(f"{url}/healthz")[1])["broker"] == "ok", 120)
        _wait("the worker", lambda: _has_child(supervisor, "celery", "worker"), 120)
        # ...and a trace sent now is analysed by the restarted worker.
        time.sleep(11)  # the web process leaves a failed broker alone for 10 s

        def analysed() -> bool:
            status, _ = _post_json(f"{url}/api/v1/traces",
                                   {"traces": [trace_payload("back-1")]}, key)  # fmt: skip
            assert status == 200
            return Incident.objects.filter(
                workspace=workspace, trace__external_id="back-1"
            ).exists()

        _wait("analysis after the restart", analysed, STARTUP)
        text = (directory / "run.log").read_text(errors="replace")
        assert "worker exited with -9" in text and "broker exited with -9" in text
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
    # Nothing it started outlives it (a worker left behind once swept the test
    # database of later tests).
    _wait("its children to go", lambda: not _orphans(env["HIVEMIND_BROKER_SOCKET"]), 30)


def _orphans(marker: str) -> list[psutil.Process]:
    """Processes of this run (the worker, the web server, the broker) still alive."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            if (process.info["environ"] or {}).get("HIVEMIND_BROKER_SOCKET") == marker:
                found.append(process)
        except (psutil.Error, TypeError):
            continue
    return found


def test_make_run_says_it_is_up_only_once_healthz_answers(capsys):
    import http.server
    import threading

    from hivemind_web.run import announce_when_up

    state = {"code": 503}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(state["code"])
            self.end_headers()

        def log_message(self, *args):  # type: ignore[no-untyped-def]
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        tick = announce_when_up(url)
        tick()
        assert "Hivemind is up" not in capsys.readouterr().out  # 503: not yet
        state["code"] = 200
        tick()
        tick()
        assert capsys.readouterr().out.count(f"Hivemind is up: {url}") == 1
    finally:
        server.shutdown()
    # Nothing listening: still quiet, never an exception.
    announce_when_up("http://127.0.0.1:1/")()
    assert "Hivemind is up" not in capsys.readouterr().out
