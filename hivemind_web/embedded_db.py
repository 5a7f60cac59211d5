"""Embedded PostgreSQL (with pgvector) for the zero-configuration run.

With no ``DATABASE_URL``, settings call :func:`database_settings`, which starts
(or joins) a PostgreSQL server owned by the ``pgserver`` package inside
``HIVEMIND_DATA_DIR``. pgserver serialises start-up with an inter-process file
lock and keeps a reference list of the processes using the server, so the web
server, a Celery worker and ``manage.py`` commands started at the same time all
attach to the same postmaster instead of racing to create their own. The server
stops when the last process that uses it exits; a process killed with SIGKILL
leaves the server running, and the next start simply reuses it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

DATABASE_NAME = "hivemind"


def prune_dead_handles(pgdata: Path) -> None:
    """Drop pids of processes that died without cleaning up; repair a torn file.

    pgserver stops the server when the last registered process exits. A pid left
    behind by a killed process would keep the server alive forever; removing it
    lets the normal "last one out stops it" rule work again.
    """
    import json

    import psutil

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    # pgserver rewrites this file in place; a process killed mid-write leaves it
    # empty or cut short, and pgserver then fails on every start. Rewrite it whole.
    try:
        pids = json.loads(handles.read_text())
        valid = isinstance(pids, list) and all(isinstance(p, int) for p in pids)
    except ValueError:
        pids, valid = [], False
    pids = pids if valid else []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if not valid or alive != pids:
        tmp = handles.with_suffix(".tmp")
        tmp.write_text(json.dumps(alive))
        tmp.replace(handles)


def _ensure_database(uri: str) -> None:
    import psycopg
    from psycopg import errors

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _start(pgserver: Any, pgdata: Path, attempts: int = 3) -> Any:
    """pgserver gives pg_ctl 10 s; on a loaded machine start-up can take longer.
    The postmaster keeps starting after the timeout, so asking again joins it."""
    import subprocess
    import time

    for attempt in range(attempts):
        try:
            return pgserver.get_server(pgdata, cleanup_mode="stop")
        except (subprocess.TimeoutExpired, AssertionError):
            # pgserver caches the half-made handle; drop it so the retry starts afresh.
            pgserver.postgres_server.PostgresServer._instances.pop(pgdata, None)
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    raise RuntimeError("unreachable")


def database_settings(data_dir: Path) -> dict[str, Any]:
    """Start or join the embedded server and return a Django DATABASES entry."""
    # pgserver keeps its inter-process start-up lock under XDG_RUNTIME_DIR, read
    # once at import. Every process sharing this data dir must see the same
    # lock file, so point it inside the data dir (0700, as platformdirs wants)
    # for the import, then restore the caller's environment.
    run_dir = data_dir / "run"
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    try:
        import pgserver
        from pgserver.postgres_server import PostgresServer
    finally:
        if previous is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        if pgdata.exists():
            prune_dead_handles(pgdata)
    server = _start(pgserver, pgdata)
    info = server.get_postmaster_info()
    _ensure_database(server.get_uri())
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or ""),
        "CONN_MAX_AGE": 0,
    }
