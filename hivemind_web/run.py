"""`make run`: the whole product in one command.

    python -m hivemind_web.run [--port 8000] [--no-demo]

Starts, in order: the embedded PostgreSQL (by loading settings), the embedded
Redis broker (unless CELERY_BROKER_URL names one), then migrations beside a
Celery worker with beat inside it and the web server (gunicorn), which load
meanwhile and wait for the schema before they take a task or bind their port;
then the demo seed (a job that runs once; the worker drafts its skills). Ctrl-C (or
SIGTERM) stops them in reverse order and waits for each: the web server first,
so no request enqueues into a stopping broker, the worker after it finishes its
current task, the broker last (it flushes its append-only file).

It supervises: a child that dies (a crash, `kill -9`) is logged and started
again with a backoff, and the others go on (the web stores traces while the
broker or the worker is away; the sweeps catch up). Every child is started
with the kernel's parent-death signal, so if this supervisor itself is killed,
its children stop too; a small reaper process (hivemind_web/reaper.py) does the
same for the embedded PostgreSQL, which pg_ctl starts outside our process tree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .warmup import AWAIT_MIGRATIONS

STOP_TIMEOUT = 20.0
# A child that dies is restarted after 1, 2, 4 … up to MAX_BACKOFF seconds; one that
# ran at least STABLE_AFTER seconds before dying starts again from 1.
MAX_BACKOFF = 30
STABLE_AFTER = 60.0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
    # Links in pages, webhooks and printed commands point at the port we serve on.
    os.environ.setdefault("HIVEMIND_PUBLIC_URL", f"http://{args.host}:{args.port}")
    from django.conf import settings

    # Reading the settings starts (or joins) the embedded PostgreSQL. Nothing
    # else of Django is loaded here: this process only supervises.
    settings.DATA_DIR  # noqa: B018
    if not os.environ.get("CELERY_BROKER_URL"):
        hold_run_lock(settings.EMBEDDED_BROKER_SOCKET.parent / "run.lock",
                      f"pid {os.getpid()}, http://{args.host}:{args.port}/")  # fmt: skip
    python = sys.executable
    children: list[Child] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    reaper = _start_reaper(settings)
    try:
        if not os.environ.get("CELERY_BROKER_URL"):
            from . import embedded_broker

            socket_path = settings.EMBEDDED_BROKER_SOCKET
            children.append(Child("broker", lambda: embedded_broker.start(socket_path,
                                                                         preexec_fn=die_with_parent)))  # fmt: skip
            print(f"broker: embedded Redis on {socket_path}", flush=True)
        # Hashed, compressed static files (served by WhiteNoise with long caching),
        # collected while the migrations run: neither waits for the other. The
        # system checks run once, before the files are collected (`prepare_static`),
        # not on the migrations' path.
        os.environ.setdefault("HIVEMIND_STATIC_MANIFEST", "true")
        static = _start([python, "manage.py", "prepare_static"])
        celery = [python, "-m", "celery", "-A", "hivemind_web"]
        # Beat runs inside the worker's parent (`--beat`): one machine needs one
        # scheduler, and a process of its own would hold a second copy of Django
        # and the task modules (~190 MiB) to send a message every few minutes.
        # Production runs `celery beat` on its own (docs/ARCHITECTURE.md).
        beat_file = Path(settings.DATA_DIR) / "celerybeat-schedule"
        children.append(Child.command("worker", [*celery, "worker", "--loglevel=INFO",
                                                 f"--concurrency={args.concurrency}",
                                                 "--beat", f"--schedule={beat_file}"]))  # fmt: skip
        children.append(Child.command("web", web_command(args.host, args.port, args.web_workers)))
        # The worker and the web server load (the app, its templates, the model) while
        # the migrations run, and wait for the schema before they take a task or
        # bind their port (warmup.await_migrations). The web server starts once the
        # static files are collected: it reads their manifest once.
        os.environ[AWAIT_MIGRATIONS] = "1"
        web = children.pop()
        for child in children:  # the broker, the worker
            child.launch()
        migrate = _start([python, "manage.py", "migrate", "--noinput", "--skip-checks"])
        try:
            if static.wait() == 0:
                children.append(web)
                web.launch()
            if migrate.wait() != 0:
                raise subprocess.CalledProcessError(migrate.returncode, migrate.args)
        finally:
            if migrate.poll() is None:  # stopped early (Ctrl-C, a failed start)
                migrate.kill()
                migrate.wait()
        if static.returncode != 0:
            raise subprocess.CalledProcessError(static.returncode, static.args)
        if not args.no_demo:
            # Seeded beside the start of the worker and the web server, not before
            # them: the demo fills in while they load, and its skills are drafted
            # by the worker (the mode pages say "Queued" / "Drafting" meanwhile).
            demo = Child.command("demo seed", [python, "manage.py", "seed_demo"])
            demo.once = True
            children.append(demo)
        url = f"http://{args.host}:{args.port}/"
        print(f"Starting… the URL is printed once {url}healthz answers.", flush=True)
        return supervise(children, lambda: stopping, on_tick=announce_when_up(url))
    finally:
        stop_all(children)
        if reaper is not None:
            # pgserver stops PostgreSQL when the last process registered with it
            # exits (this one, below). A child stopped mid-start (the demo seed
            # on an early Ctrl-C) stays registered, dead, and the server would
            # outlive the run: forget such pids first.
            from .embedded_db import prune_dead_handles

            prune_dead_handles(Path(settings.DATA_DIR) / "pg")
        if reaper is not None and reaper.poll() is None:
            reaper.kill()  # a normal stop: pgserver stops PostgreSQL itself
            reaper.wait()


_run_lock: int | None = None


def hold_run_lock(path: Path, holder: str) -> None:
    """One run per embedded broker (its data dir): a second `make run` (or a bench
    that starts one) on the same data dir took over the first one's Redis socket,
    and removed it on stopping, so the first run's web and worker lost their broker
    for good ("broker": "down") while nothing had crashed. The lock is the kernel's
    (flock) and goes with this process, however it ends."""
    import fcntl

    global _run_lock
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SystemExit(
            f"Hivemind is already running from {path.parent.parent} ({other}). Stop it first "
            "(Ctrl-C where it runs), or give this one a data dir of its own: "
            "HIVEMIND_DATA_DIR=/some/dir make run"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, holder.encode())
    _run_lock = fd


def web_command(host: str, port: int, workers: int = 2, *, access_log: bool = True) -> list[str]:
    """The web server as the default run starts it (bench/ingest.py measures this one)."""
    return [
        sys.executable, "-m", "gunicorn", "hivemind_web.wsgi",
        "--config=python:hivemind_web.gunicorn_conf", f"--bind={host}:{port}",
        f"--workers={workers}", "--threads=4", "--timeout=120", "--graceful-timeout=10",
        *(["--access-logfile=-"] if access_log else []),
    ]  # fmt: skip


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-demo", action="store_true", help="do not seed the demo workspace")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    return parser.parse_args(argv)


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent)


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before it runs: the kernel kills it (SIGKILL) when the process that
    started it dies, however that happens (kill -9 included), so nothing is left
    running as an orphan. SIGKILL, not SIGTERM: a Celery worker that gets SIGTERM
    while its broker is gone waits in a warm shutdown for ever (an orphan that
    kept sweeping a database after its supervisor was killed); its unfinished
    tasks are acknowledged late, so the broker gives them to the next worker.
    Linux only; elsewhere a no-op."""
    _death_signal(signal.SIGKILL)


def terminate_with_parent() -> None:
    """As die_with_parent, with SIGTERM: for the reaper, which must act on it."""
    _death_signal(signal.SIGTERM)


def _death_signal(sig: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _start_reaper(settings: object) -> subprocess.Popen[bytes] | None:
    """The embedded PostgreSQL is started by pg_ctl and is nobody's child; this small
    process stops it if this supervisor dies without stopping it (hivemind_web/reaper.py)."""
    if os.environ.get("DATABASE_URL"):
        return None
    pgdata = Path(settings.DATA_DIR) / "pg"  # type: ignore[attr-defined]
    return subprocess.Popen(
        [sys.executable, "-m", "hivemind_web.reaper", str(pgdata.resolve()), str(os.getpid())],
        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=terminate_with_parent,
    )  # fmt: skip


@dataclass
class Child:
    """One supervised process: how to start it, and its restart history."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive short-lived runs
    restart_at: float | None = None
    once: bool = False  # a job that runs to its end (the demo seed), never restarted
    done: bool = False
    group: int | None = None  # its process group, when it leads one (its own session)

    @classmethod
    def command(cls, name: str, command: list[str]) -> Child:
        # Own session: a terminal's Ctrl-C reaches only this runner, which stops the
        # children in order instead of all at once.
        return cls(name, lambda: subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                                  start_new_session=True,
                                                  preexec_fn=die_with_parent))  # fmt: skip

    def launch(self) -> None:
        self.process, self.started_at, self.restart_at = self.start(), time.monotonic(), None
        try:
            group = os.getpgid(self.process.pid)
        except ProcessLookupError:
            group = None
        # Only a group of its own: never the supervisor's.
        self.group = group if group == self.process.pid else None

    def reap_group(self) -> None:
        """Whatever the child forked and left behind when it died (a killed Celery
        worker's pool child or embedded beat), killed with the group: nothing of a
        dead child keeps running, holding memory and a database connection."""
        if self.group is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.group, signal.SIGKILL)
        self.group = None


def backoff(failures: int) -> float:
    """Seconds before restart number `failures`: 1, 2, 4, … up to MAX_BACKOFF."""
    return float(min(MAX_BACKOFF, 2 ** max(failures - 1, 0)))


def announce_when_up(url: str) -> Callable[[], None]:
    """A tick that prints "Hivemind is up" once, the first time /healthz answers 200
    (not when the processes are merely started: the web workers load for a while)."""
    import urllib.error
    import urllib.request

    said = False

    def tick() -> None:
        nonlocal said
        if said:
            return
        try:
            with urllib.request.urlopen(url + "healthz", timeout=0.5) as response:
                up = response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return
        if up:
            said = True
            print(f"Hivemind is up: {url} (Ctrl-C stops everything)", flush=True)

    return tick


def supervise(
    children: list[Child],
    stopping: Callable[[], bool],
    tick: float = 0.5,
    on_tick: Callable[[], None] | None = None,
) -> int:
    """Start every child, then keep them running until `stopping()`: a child that
    exits is logged and started again after a backoff that doubles while it keeps
    dying within STABLE_AFTER seconds of its start. `on_tick` runs once a tick."""
    for child in children:
        if child.process is None:
            child.launch()
    while not stopping():
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    print(f"{child.name}: restarting", flush=True)
                    try:
                        child.launch()
                    except Exception as exc:  # noqa: BLE001 - a failed start is one more failure
                        child.failures += 1
                        child.restart_at = now + backoff(child.failures)
                        print(f"{child.name}: could not start ({exc}); retrying in "
                              f"{backoff(child.failures):.0f} s", flush=True)  # fmt: skip
                continue
            if child.done:
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if child.once:
                child.reap_group()
                child.done = True
                if code != 0:
                    print(f"{child.name} failed (exit {code}); see above. The rest runs on.",
                          flush=True)  # fmt: skip
                continue
            child.reap_group()
            lived = now - child.started_at
            child.failures = 1 if lived >= STABLE_AFTER else child.failures + 1
            delay = backoff(child.failures)
            child.restart_at = now + delay
            print(f"{child.name} exited with {code} after {lived:.0f} s; restarting in {delay:.0f} s",
                  flush=True)  # fmt: skip
        if on_tick is not None:
            on_tick()
        time.sleep(tick)
    return 0


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        process = child.process
        if process is None or process.poll() is not None:
            child.reap_group()
            continue
        print(f"stopping {child.name}…", flush=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop in {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            process.kill()
            process.wait()
        child.reap_group()


if __name__ == "__main__":
    sys.exit(main())
