"""Stops the embedded PostgreSQL if `make run`'s supervisor dies without stopping it.

    python -m hivemind_web.reaper <pgdata> <supervisor pid>

pg_ctl starts the postmaster as a daemon, outside the supervisor's process
tree, so the kernel's parent-death signal cannot reach it. The supervisor starts
this process with that signal set (hivemind_web.run.terminate_with_parent): when the
supervisor dies, however it dies, this process gets SIGTERM and asks the
postmaster for a fast shutdown (SIGINT: open transactions are rolled back,
nothing committed is lost). On a normal stop the supervisor kills this process
first and pgserver stops PostgreSQL as usual. Imports nothing heavy: it only
waits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


def stop_postgres(pgdata: Path) -> None:
    pid = postmaster_pid(pgdata)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGINT)  # "fast" shutdown
    except ProcessLookupError:
        return
    print(f"reaper: the supervisor died; stopped PostgreSQL (pid {pid})", flush=True)


def main(argv: list[str]) -> int:
    pgdata, supervisor = Path(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the supervisor's
    waits = hasattr(signal, "sigtimedwait")
    if waits:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    while os.getppid() == supervisor:
        # Woken by the parent-death signal, or every few seconds to look (the
        # signal is Linux only).
        if waits:
            signal.sigtimedwait([signal.SIGTERM], 5)
        else:
            time.sleep(5)
    stop_postgres(pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
