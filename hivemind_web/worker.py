"""Start-up hooks of Celery worker processes (imported by the worker: `imports`)."""

from __future__ import annotations

import os

from celery.signals import beat_init, worker_init, worker_process_init

# Added to a pool child's niceness (0 to 19; 19 yields the most).
WORKER_NICENESS = 10


@worker_init.connect
def load_before_forking(**kwargs: object) -> None:
    """The worker's parent loads the embedding model (and the rest its tasks use)
    before it forks its pool: the children share those pages instead of each
    loading a copy (hivemind_web/warmup.py)."""
    from hivemind_web.warmup import WORKER_MODULES, warm_process

    warm_process(WORKER_MODULES)


@worker_process_init.connect
def die_with_the_worker(**kwargs: object) -> None:
    """A pool child dies when the worker's parent dies, however it dies: a parent
    killed (OOM, kill -9) otherwise leaves its forked children running as orphans,
    each holding the model's memory and a database connection (a fork does not
    inherit the parent's own parent-death signal). Their unfinished tasks are
    acknowledged late, so the broker gives them to the next worker."""
    import os
    import signal

    from hivemind_web.run import die_with_parent

    die_with_parent()
    if os.getppid() == 1:  # the parent died between the fork and this line
        os.kill(os.getpid(), signal.SIGKILL)


@beat_init.connect
def embedded_beat_dies_with_the_worker(**kwargs: object) -> None:
    """Beat run inside a worker (`celery worker --beat`, as `make run` does) is a
    forked child of it: it dies with the worker too. A standalone `celery beat` is
    left alone (its parent is a shell or a service manager)."""
    import os

    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            parent = handle.read().split(b"\0")
    except OSError:
        return
    if b"worker" in parent and any(arg.startswith(b"--beat") for arg in parent):
        die_with_the_worker()


@worker_process_init.connect
def warm_child(**kwargs: object) -> None:
    """Each child runs one embedding before its first task (its own thread pool)."""
    from hivemind_web.warmup import warm_inference

    warm_inference()


@worker_process_init.connect
def yield_to_the_web_server(**kwargs: object) -> None:
    """Background work (diagnosis, clustering, drafting) runs at a lower CPU
    priority than the web server: on a machine both keep busy, a page waits
    for the worker's tasks no longer than it must."""
    os.nice(WORKER_NICENESS)
