"""`make run`: the whole product in one command.

    python -m hivemind_web.run [--port 8000] [--no-demo]

Starts, in order: the embedded PostgreSQL (by loading settings), the embedded
Redis broker (unless CELERY_BROKER_URL names one), migrations and the demo seed,
then a Celery worker, Celery beat and the web server (gunicorn). Ctrl-C (or
SIGTERM) stops them in reverse order and waits for each: the web server first,
so no request enqueues into a stopping broker, the worker after it finishes its
current task, the broker last (it flushes its append-only file). If any of them
dies, the others are stopped too and the exit status says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

STOP_TIMEOUT = 20.0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
    # Links in pages, webhooks and printed commands point at the port we serve on.
    os.environ.setdefault("HIVEMIND_PUBLIC_URL", f"http://{args.host}:{args.port}")
    import django
    from django.conf import settings

    django.setup()  # starts (or joins) the embedded PostgreSQL
    python = sys.executable
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not os.environ.get("CELERY_BROKER_URL"):
            from . import embedded_broker

            children.append(("broker", embedded_broker.start(settings.EMBEDDED_BROKER_SOCKET)))
            print(f"broker: embedded Redis on {settings.EMBEDDED_BROKER_SOCKET}", flush=True)
        _run([python, "manage.py", "migrate", "--noinput"])
        # Hashed, compressed static files (served by WhiteNoise with long caching).
        os.environ.setdefault("HIVEMIND_STATIC_MANIFEST", "true")
        _run([python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"])
        if not args.no_demo:
            _run([python, "manage.py", "seed_demo"])
        celery = [python, "-m", "celery", "-A", "hivemind_web"]
        children.append(("worker", _spawn([*celery, "worker", "--loglevel=INFO",
                                           f"--concurrency={args.concurrency}"])))  # fmt: skip
        beat_file = Path(settings.DATA_DIR) / "celerybeat-schedule"
        children.append(("beat", _spawn([*celery, "beat", "--loglevel=INFO",
                                         f"--schedule={beat_file}", "--pidfile="])))  # fmt: skip
        children.append(("web", _spawn([
            python, "-m", "gunicorn", "hivemind_web.wsgi", "--config=python:hivemind_web.gunicorn_conf",
            f"--bind={args.host}:{args.port}",
            f"--workers={args.web_workers}", "--threads=4", "--timeout=120",
            "--access-logfile=-", "--graceful-timeout=10",
        ])))  # fmt: skip
        print(f"Hivemind is up: http://{args.host}:{args.port}/ (Ctrl-C stops everything)",
              flush=True)  # fmt: skip
        return _supervise(children, lambda: stopping)
    finally:
        _stop_all(children)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-demo", action="store_true", help="do not seed the demo workspace")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    return parser.parse_args(argv)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, start_new_session=True)


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    # Own session: a terminal's Ctrl-C reaches only this runner, which stops the
    # children in order instead of all at once.
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)


def _supervise(
    children: list[tuple[str, subprocess.Popen[bytes]]], stopping: Callable[[], bool]
) -> int:
    while not stopping():
        for name, process in children:
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest", flush=True)
                return process.returncode or 1
        time.sleep(0.5)
    return 0


def _stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for name, process in reversed(children):
        if process.poll() is not None:
            continue
        print(f"stopping {name}…", flush=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
