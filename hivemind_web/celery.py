"""The Celery app.

Broker: `CELERY_BROKER_URL` (Redis or RabbitMQ) in production; without it, the
embedded Redis that `make run` starts in the data dir (hivemind_web/embedded_broker.py).
`celery -A hivemind_web worker` / `beat` run the tasks.

Tasks are registered at start-up in every process (web, worker, beat,
management commands): `TASK_MODULES` is imported by `register_tasks`, which the
`hivemind_web` app config calls once Django's apps are ready. Apps trigger the
tasks of apps above them by name through `enqueue`, the one path for that; an
unknown name raises instead of silently doing nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")

TASK_MODULES = (
    "workspaces.tasks",
    "traces.tasks",
    "failures.tasks",
    "skills.tasks",
    "metrics.tasks",
)

app = Celery("hivemind_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The worker also imports its start-up hooks (hivemind_web/worker.py).
app.conf.imports = (*TASK_MODULES, "hivemind_web.worker")

# Periodic work, all in one place.
app.conf.beat_schedule = {
    # Ingest queues analysis after each commit; this sweep only catches what a lost
    # message or a broker outage left behind, so every few minutes is enough.
    "sweep-unfinished": {"task": "failures.tasks.sweep_unfinished", "schedule": 300.0},
    # New incidents join existing modes at once; a full re-cluster finds new
    # modes and merges drift. Hourly keeps modes fresh without hogging workers.
    "recluster-all": {"task": "failures.tasks.recluster_all", "schedule": 3600.0},
    # Rollups of traces whose refresh message was lost (broker down at ingest).
    "sweep-rollups": {"task": "metrics.tasks.sweep_rollups", "schedule": 300.0},
    # Trial rollups and verdicts (also refreshed after ingest and after incidents change
    # modes). Runs already compared with a labels-only mode's labels are not compared
    # again here; a change of the mode compares them all again.
    "refresh-trials": {
        "task": "metrics.tasks.refresh_trials",
        "schedule": 300.0,
        "kwargs": {"recheck": False},
    },
    "sweep-jobs": {"task": "skills.tasks.sweep_jobs", "schedule": 300.0},
    # Alerts: new failure modes, modes that jump, skills whose trial says they hurt.
    "alerts-sweep": {"task": "skills.tasks.alerts_sweep", "schedule": 600.0},
    # Rate-limit windows are per minute; old ones only take space.
    "sweep-rate-windows": {"task": "workspaces.tasks.sweep_rate_windows", "schedule": 3600.0},
    # Retention: traces older than each workspace's policy go; rollups stay.
    "purge-expired": {"task": "traces.tasks.purge_expired", "schedule": 24 * 3600.0},
    # Hook sessions whose turn never ended (a killed client): unknown after a day.
    "settle-stale-sessions": {"task": "traces.tasks.settle_stale_sessions", "schedule": 3600.0},
}
# A request that enqueues follow-up work must not hang on a dead broker.
app.conf.broker_connection_timeout = 2
app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0.2}
# enqueue() below waits for a publish at most ENQUEUE_TIMEOUT; these bound how long
# the publishing thread itself can hang on a broker that accepted the connection
# but does not answer (SIGSTOP, overload).

logger = logging.getLogger(__name__)


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_logs(logger: logging.Logger, **kwargs: object) -> None:
    """Celery (worker and beat) sets up its own handlers; each line they write is
    redacted first (workspaces/logredaction.py)."""
    from workspaces.logredaction import install

    install(logger)


# The retry policy of every task of the apps: a transient database or connection
# error (the database restarting, a connection it closed) is retried with a
# jittered backoff up to 5 minutes apart, 12 times (about half an hour of
# outage); a task is acknowledged only after it ran, so a worker killed mid-task
# leaves it to be redelivered. Work that still did not run is found again by the
# periodic sweeps (analysis, embedding, rollups, drafting jobs, deliveries).
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError)
TASK_RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 12,
    "acks_late": True,
}


class UnknownTask(LookupError):
    """`enqueue` was given a name no task module registers."""


def register_tasks() -> None:
    """Import every task module so each process knows every task by name."""
    for module in TASK_MODULES:
        importlib.import_module(module)


# A web request waits at most this long to hand follow-up work to the broker; a
# broker that does not answer (down, paused, overloaded) is then left alone for
# BROKER_BACKOFF seconds, so requests after it do not wait at all. Nothing is
# lost: the data is committed and the periodic sweeps enqueue what is missing.
ENQUEUE_TIMEOUT = float(os.environ.get("HIVEMIND_ENQUEUE_TIMEOUT", "0.5"))
BROKER_BACKOFF = float(os.environ.get("HIVEMIND_BROKER_BACKOFF", "10"))
# Publishing runs on these threads so a request can stop waiting for it; a
# publish stuck on a frozen broker ends with the transport's socket timeout.
_publisher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hivemind-enqueue")
_broker_lock = threading.Lock()
_broker_down_until = 0.0
# A publish that outlived ENQUEUE_TIMEOUT may still go through (a first connection
# on a busy machine): what is enqueued while it is in flight waits here, and is
# sent when it lands, or dropped for the sweeps when it fails. Bounded, so a
# frozen broker cannot grow it without end.
DEFERRED_MAX = 1000
_in_flight = 0
_deferred: list[tuple[Any, tuple[object, ...]]] = []


def _broker_failed(reason: str) -> None:
    global _broker_down_until
    with _broker_lock:
        _broker_down_until = time.monotonic() + BROKER_BACKOFF
    logger.warning(
        "broker %s; not enqueueing for %.0f s (the periodic sweeps catch up)",
        reason, BROKER_BACKOFF,
    )  # fmt: skip


def broker_forget_failures() -> None:
    """Try the broker again at the next enqueue (a new broker URL, tests)."""
    global _broker_down_until, _in_flight
    with _broker_lock:
        _broker_down_until = 0.0
        _in_flight = 0
        _deferred.clear()


def _late_publish_done(future: Future[Any]) -> None:
    """A publish that outlived ENQUEUE_TIMEOUT ended: if it went through, the broker
    is up after all, and what waited behind it is sent; if not, that is left to
    the periodic sweeps."""
    global _broker_down_until, _in_flight
    with _broker_lock:
        _in_flight = max(0, _in_flight - 1)
        waiting = list(_deferred) if _in_flight == 0 else []
        if _in_flight == 0:
            _deferred.clear()
        if future.exception() is None:
            _broker_down_until = 0.0
    if future.exception() is not None:
        if waiting:
            logger.warning("broker did not take %d queued task(s); the periodic sweeps "
                           "catch up", len(waiting))  # fmt: skip
        return
    for task, args in waiting:
        _publisher.submit(task.apply_async, args, retry=False)


def broker_backing_off() -> bool:
    """Did the broker fail in the last BROKER_BACKOFF seconds (in this process)?"""
    return time.monotonic() < _broker_down_until


def enqueue(name: str, *args: object) -> bool:
    """Send a task by name (apps trigger higher apps' tasks this way), never failing
    the caller on a broker outage and never waiting more than ENQUEUE_TIMEOUT for
    it: the data is already committed, and the periodic sweeps (analysis,
    embedding, rollups, jobs) pick the work up when the broker is back. An
    unknown name is a programming error and raises."""
    task = app.tasks.get(name)
    if task is None:
        raise UnknownTask(f"No task named {name!r}; is its module in TASK_MODULES?")
    if app.conf.task_always_eager:  # runs here, now (the test suite)
        task.delay(*args)
        return True
    global _in_flight
    if broker_backing_off():
        with _broker_lock:
            if _in_flight and len(_deferred) < DEFERRED_MAX:
                _deferred.append((task, args))
                logger.info("broker slow; %s sent once the publish before it lands", name)
                return False
        logger.info("broker failed recently; %s left to the periodic sweep", name)
        return False
    future = _publisher.submit(task.apply_async, args, retry=False)
    try:
        future.result(timeout=ENQUEUE_TIMEOUT)
    except FutureTimeout:
        with _broker_lock:
            _in_flight += 1
        _broker_failed(f"did not take {name} within {ENQUEUE_TIMEOUT:g} s")
        future.add_done_callback(_late_publish_done)
        return False
    except (BrokerError, ConnectionError, OSError) as exc:
        _broker_failed(f"refused {name} ({exc})")
        return False
    return True


def broker_state(timeout: float = 0.25) -> str:
    """ "ok", "down" (refused), "not answering" (no reply within `timeout`) or
    "unknown" (a broker this cannot ping quickly), never waiting longer than `timeout`:
    /healthz shows it without blocking on a frozen broker."""
    if app.conf.task_always_eager:
        return "inline"
    url = urlsplit(str(app.conf.broker_url or ""))
    if url.scheme not in ("redis", "redis+socket", "rediss"):
        return "unknown" if not broker_backing_off() else "not answering"
    family, address = (
        (socket.AF_UNIX, url.path) if url.scheme == "redis+socket"
        else (socket.AF_INET, (url.hostname or "127.0.0.1", url.port or 6379))
    )  # fmt: skip
    try:
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(address)
            if url.password:
                client.sendall(f"AUTH {url.password}\r\n".encode())
                client.recv(64)
            client.sendall(b"PING\r\n")
            reply = client.recv(64)
    except TimeoutError:
        return "not answering"
    except OSError:
        return "down"
    return "ok" if reply.startswith(b"+PONG") else "not answering"
