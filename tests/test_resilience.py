"""No single client or crash takes the service down.

- 50 held-open `GET /mcp` requests on the real gunicorn (the configuration
  `make run` uses): `/healthz`, a page and ingest still answer.
- A paused (SIGSTOP) broker: ingest still stores the trace and answers, and
  `/healthz` says the broker is not answering instead of waiting on it.
- The supervisor restarts a child that dies, with a backoff, and when the
  supervisor itself is killed its children stop with it.

Every wait below is a liveness bound (a server that hangs fails it, one that is
merely slow on a busy machine does not); the figures themselves are measured in
bench/resilience.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from hivemind_web import embedded_broker
from hivemind_web.run import Child, backoff, supervise
from tests.factories import celery_broker, make_key, make_user, make_workspace, trace_payload
from traces.models import Trace
from workspaces.models import Scope

ROOT = Path(__file__).resolve().parent.parent
LIVENESS = 20.0  # seconds: far above any healthy answer, far below a hung thread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=LIVENESS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post_json(url: str, body: object, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=LIVENESS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def gunicorn_server(transactional_db):  # type: ignore[no-untyped-def]
    """The real gunicorn with make run's config and thread count (one worker, so 4
    threads in all), on the test database, with no broker behind it."""
    port = _free_port()
    env = {
        **os.environ, "HIVEMIND_DATA_DIR": str(settings.DATA_DIR),
        "HIVEMIND_DB_NAME": connection.settings_dict["NAME"],
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "HIVEMIND_TASKS_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "hivemind_web.settings",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hivemind_web.wsgi",
         "--config=python:hivemind_web.gunicorn_conf", f"--bind=127.0.0.1:{port}",
         "--workers=1", "--threads=4", "--timeout=120", "--access-logfile=-"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if _get(f"{url}/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"gunicorn did not start: {process.communicate()[0].decode()[-2000:]}")
    try:
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_fifty_open_mcp_streams_do_not_take_the_server_down(gunicorn_server):
    url, process = gunicorn_server
    workspace = make_workspace(name="Streams", owner=make_user("streams-admin"))
    key = make_key(workspace, scopes=[Scope.INGEST])  # an ingest-only key is enough
    host, port = url.removeprefix("http://").split(":")
    # 50 clients ask for the event stream and never read an answer.
    held = []
    for _ in range(50):
        client = socket.create_connection((host, int(port)), timeout=LIVENESS)
        client.sendall(
            f"GET /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        held.append(client)
    try:
        status, body = _get(f"{url}/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        assert _get(f"{url}/login/")[0] == 200
        status, body = _post_json(
            f"{url}/api/v1/traces", {"traces": [trace_payload("held-1")]}, key
        )
        assert status == 200, body
        assert Trace.objects.filter(workspace=workspace, external_id="held-1").exists()
        # Each stream request was answered (405, JSON: no event stream is offered).
        for client in held:
            head = client.recv(4096).decode("latin-1")
            assert head.startswith("HTTP/1.1 405") and "application/json" in head
    finally:
        for client in held:
            client.close()


def test_errors_gunicorn_answers_itself_are_json_and_the_access_log_keeps_no_query(
    gunicorn_server,
):
    url, process = gunicorn_server
    status, body = _get(f"{url}/api/v1/skills?task=" + "x" * 9000)
    assert status == 414 and "detail" in json.loads(body)
    _get(f"{url}/api/v1/skills?task=refund+jane.doe%40example.com")
    _get(f"{url}/api/v1/traces/order-of-jane.doe@example.com/outcome")
    process.send_signal(signal.SIGTERM)
    log = process.communicate(timeout=30)[0].decode()
    assert "jane.doe" not in log and "task=" not in log
    assert '"GET /api/v1/skills" 401' in log
    assert "/api/v1/traces/{external_id}/outcome" in log


@pytest.mark.django_db(transaction=True)
def test_a_paused_broker_does_not_hold_ingest_or_healthz(live_server):
    workspace = make_workspace(name="Paused", owner=make_user("paused-admin"))
    key = make_key(workspace, scopes=[Scope.INGEST])
    directory = Path(tempfile.mkdtemp(prefix="hm-", dir="/tmp"))
    broker = embedded_broker.start(directory / "redis.sock")
    try:
        with celery_broker(f"redis+socket://{directory / 'redis.sock'}"):
            broker.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
            for i in range(3):
                status, body = _post_json(
                    f"{live_server.url}/api/v1/traces", {"traces": [trace_payload(f"p-{i}")]}, key
                )
                assert status == 200, body
            status, body = _get(f"{live_server.url}/healthz")
            assert status == 200 and json.loads(body)["broker"] == "not answering"
        # Stored, with nothing lost: the sweep analyses them once the broker is back.
        assert Trace.objects.filter(workspace=workspace).count() == 3
    finally:
        broker.send_signal(signal.SIGCONT)
        broker.kill()
        broker.wait()


def test_backoff_doubles_up_to_a_ceiling():
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_dies_is_restarted_and_the_rest_keep_running(capsys):
    sleeper = Child.command("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    other = Child.command("other", [sys.executable, "-c", "import time; time.sleep(600)"])
    first_pid: list[int] = []
    other_pid: list[int] = []

    def stopping() -> bool:
        assert sleeper.process is not None and other.process is not None
        if not first_pid:
            first_pid.append(sleeper.process.pid)
            other_pid.append(other.process.pid)
            os.kill(sleeper.process.pid, signal.SIGKILL)
        return sleeper.process.pid != first_pid[0] and sleeper.process.poll() is None

    try:
        supervise([sleeper, other], stopping, tick=0.1)
        assert other.process is not None and other.process.pid == other_pid[0]
        assert other.process.poll() is None
        out = capsys.readouterr().out
        assert "sleeper exited with -9" in out and "sleeper: restarting" in out
    finally:
        for child in (sleeper, other):
            if child.process is not None:
                child.process.kill()
                child.process.wait()


def test_a_job_that_runs_once_is_not_restarted_and_its_failure_is_said(capsys):
    ok = Child.command("seed", [sys.executable, "-c", "pass"])
    ok.once = True
    bad = Child.command("broken seed", [sys.executable, "-c", "raise SystemExit(3)"])
    bad.once = True
    ticks: list[int] = []

    def stopping() -> bool:
        ticks.append(1)
        return ok.done and bad.done and len(ticks) > 20  # a few more ticks: no restart

    supervise([ok, bad], stopping, tick=0.05)
    out = capsys.readouterr().out
    assert "restarting" not in out
    assert "broken seed failed (exit 3)" in out and "seed failed" not in out.replace(
        "broken seed", ""
    )


def test_killing_the_supervisor_stops_its_children():
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from hivemind_web.run import Child, supervise
        children = [Child.command(n, [sys.executable, "-c", "import time; time.sleep(600)"])
                    for n in ("a", "b")]
        for c in children:
            c.launch()
        print(" ".join(str(c.process.pid) for c in children), flush=True)
        supervise(children, lambda: False)
    """)  # fmt: skip
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert supervisor.stdout is not None
    pids = [int(p) for p in supervisor.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    supervisor.kill()
    supervisor.wait()
    deadline = time.monotonic() + LIVENESS
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "children outlived their supervisor"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except (FileNotFoundError, IndexError):
        return False


def test_a_stopped_server_ends_its_workers_without_an_abort(gunicorn_server):
    """Workers forked from a master that imported onnxruntime exit cleanly on a
    stop (gunicorn_conf.worker_exit), instead of aborting in its C++ teardown."""
    url, process = gunicorn_server
    assert _get(f"{url}/healthz")[0] == 200
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0
    assert "Worker exiting" in output
    assert "SIGABRT" not in output and "terminate called" not in output, output[-2000:]


@pytest.mark.django_db
def test_a_second_run_on_the_same_data_dir_leaves_the_first_ones_broker_alone():
    """A bench that started `hivemind_web.run` beside `make run` on the same data dir
    took over its Redis socket and removed it on stopping: the first run's healthz
    read "broker": "down" from then on, with nothing crashed to restart."""
    from hivemind_web import run

    directory = Path(tempfile.mkdtemp(prefix="hm-", dir="/tmp"))
    socket_path = directory / "redis.sock"
    broker = embedded_broker.start(socket_path)
    try:
        with pytest.raises(RuntimeError, match="already answers"):
            embedded_broker.start(socket_path)
        assert embedded_broker.ping(socket_path)
        # `make run` itself stops before starting anything, and says why.
        run.hold_run_lock(directory / "run.lock", "pid 1234, http://127.0.0.1:8000/")
        env = {
            **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
            "HIVEMIND_DATA_DIR": str(settings.DATA_DIR),
            "HIVEMIND_DB_NAME": connection.settings_dict["NAME"],
            "HIVEMIND_BROKER_SOCKET": str(socket_path),
            "DJANGO_SETTINGS_MODULE": "hivemind_web.settings",
        }  # fmt: skip
        second = subprocess.run(
            [sys.executable, "-m", "hivemind_web.run", "--no-demo", f"--port={_free_port()}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert second.returncode == 1, second.stdout + second.stderr
        assert "Hivemind is already running" in second.stderr
        assert "pid 1234, http://127.0.0.1:8000/" in second.stderr
        assert "broker: embedded Redis" not in second.stdout
        assert embedded_broker.ping(socket_path)
    finally:
        if run._run_lock is not None:
            os.close(run._run_lock)
            run._run_lock = None
        broker.terminate()
        broker.wait(timeout=30)
