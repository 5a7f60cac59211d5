"""Plain factory functions: each makes one valid object with overridable fields."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model

from workspaces.models import Role, Scope, Workspace
from workspaces.services import api_key_create, membership_set, workspace_create

_seq = itertools.count(1)


def make_user(username: str = "", password: str = "pw-for-tests-1", **extra: Any) -> Any:
    username = username or f"user{next(_seq)}"
    extra.setdefault("email", f"{username}@example.com")
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def make_workspace(name: str = "", owner: Any = None) -> Workspace:
    name = name or f"Workspace {next(_seq)}"
    return workspace_create(name=name, owner=owner or make_user())


def add_member(workspace: Workspace, role: str = Role.VIEWER, user: Any = None) -> Any:
    user = user or make_user()
    membership_set(workspace=workspace, user=user, role=role, actor=None)
    return user


def make_key(workspace: Workspace, scopes: list[str] | None = None, name: str = "test") -> str:
    scopes = scopes if scopes is not None else [Scope.INGEST, Scope.SKILLS_READ]
    return api_key_create(workspace=workspace, name=name, scopes=scopes, actor=None).secret


def trace_payload(external_id: str = "", **overrides: Any) -> dict[str, Any]:
    """A valid native trace (two steps, the second failing)."""
    payload: dict[str, Any] = {
        "external_id": external_id or f"trace-{next(_seq)}",
        "agent": "checkout-agent",
        "session_id": "s-1",
        "task": "Refund order 8812",
        "status": "failed",
        "started_at": "2026-11-20T10:00:00Z",
        "steps": [
            {"kind": "user_prompt", "input": "Refund order 8812"},
            {
                "kind": "tool_call",
                "name": "payments.refund",
                "input": {"order": "8812"},
                "error": "429 Too Many Requests: retry after 2s",
            },
        ],
    }
    payload.update(overrides)
    return payload


def successful_payloads(
    count: int, *, tool: str = "payments.refund", agent: str = "checkout-agent", prefix: str = "ok"
) -> list[dict[str, Any]]:
    """Runs of the same agent that called `tool` without an error and succeeded:
    the contrast a diagnosis and an offline draft need (failures/contrast.py)."""
    return [
        trace_payload(
            f"{prefix}-{i}",
            agent=agent,
            status="succeeded",
            steps=[
                {"kind": "user_prompt", "input": "Refund order 8812"},
                {
                    "kind": "tool_call",
                    "name": tool,
                    "input": {"order": str(i)},
                    "output": {"ok": True},
                },
            ],
        )  # fmt: skip
        for i in range(count)
    ]


def split_keys(prefix: str, n: int) -> list[str]:
    """n task keys, alternately in the backtest half and in the drafting half of the
    runs (failures/backtest.held_out): a test's runs split the same way every time."""
    from failures.backtest import held_out
    from failures.mining import analysis_task_key

    halves: dict[bool, list[str]] = {True: [], False: []}
    i = 0
    while len(halves[True]) < n or len(halves[False]) < n:
        key = f"{prefix}:{i}"
        halves[held_out(analysis_task_key(key, ""), 0)].append(key)
        i += 1
    return [halves[j % 2 == 0][j // 2] for j in range(n)]


def retried_payloads(
    count: int, *, tool: str = "payments.refund", agent: str = "checkout-agent",
    error: str = "429 Too Many Requests: retry after 2s", prefix: str = "retried",
) -> list[dict[str, Any]]:  # fmt: skip
    """Runs that hit `error`, called `tool` again, got an answer and succeeded: what
    backs "not done until a call succeeds" on runs it was not drafted from (half
    of them in each half of the split)."""
    return [
        trace_payload(
            f"{prefix}-{i}",
            agent=agent,
            status="succeeded",
            task_key=key,
            steps=[
                {"kind": "user_prompt", "input": "Refund order 8812"},
                {"kind": "tool_call", "name": tool, "input": {"order": str(i)}, "error": error},
                {
                    "kind": "tool_call",
                    "name": tool,
                    "input": {"order": str(i)},
                    "output": {"ok": True},
                },
            ],
        )  # fmt: skip
        for i, key in enumerate(split_keys(prefix, count))
    ]


@contextmanager
def celery_broker(url: str, **transport_options: Any) -> Iterator[Any]:
    """Send tasks to a real broker for the duration (the suite runs them eagerly).

    Celery caches its connection and producer pools per app; they are dropped on
    the way in and out, so no test publishes through another test's broker.
    """
    from hivemind_web.celery import app, broker_forget_failures

    saved = (app.conf.task_always_eager, app.conf.broker_url, app.conf.broker_transport_options)

    def reset() -> None:
        app._pool = None
        app.amqp._producer_pool = None
        broker_forget_failures()

    app.conf.task_always_eager = False
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    reset()
    try:
        yield app
    finally:
        app.conf.task_always_eager, app.conf.broker_url, app.conf.broker_transport_options = saved
        reset()


def analyse(workspace: Workspace) -> None:
    """Run the failures stage on every trace of the workspace, as the worker does
    after ingest commits (the suite's transactions never commit)."""
    from failures.mining import incidents_mine
    from traces.models import Trace

    trace_ids = list(Trace.objects.filter(workspace=workspace).values_list("pk", flat=True))
    incidents_mine(workspace_id=workspace.pk, trace_ids=trace_ids)


def ingest(workspace: Workspace, items: list[Any]) -> Any:
    """Store traces through the ingest service, then find their incidents."""
    from traces.services import trace_ingest_batch

    batch = trace_ingest_batch(workspace=workspace, items=items)
    analyse(workspace)
    return batch


@contextmanager
def running_worker(**env: str) -> Iterator[str]:
    """The default runtime for one test: an embedded Redis (as `make run` starts it)
    on a private socket and a real `celery worker` process on the test database.
    Tasks this process enqueues go to that broker for the duration; `env` sets
    the worker's settings (e.g. HIVEMIND_MIN_MODE_SIZE). Yields the broker URL."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    from failures.diagnosis import evidence
    from hivemind_web import embedded_broker

    directory = Path(tempfile.mkdtemp(prefix="hm-", dir="/tmp"))  # short: socket paths cap at 107
    broker = embedded_broker.start(directory / "redis.sock")
    url = f"redis+socket://{directory / 'redis.sock'}"
    worker_env = {
        **os.environ, "CELERY_BROKER_URL": url, "HIVEMIND_DATA_DIR": str(settings.DATA_DIR),
        "HIVEMIND_DB_NAME": connection.settings_dict["NAME"], "HIVEMIND_TASKS_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "hivemind_web.settings",
        # The worker gates evidence on the table this test sees (tests/conftest.py).
        "HIVEMIND_EVIDENCE_PRECISION": str(evidence.PRECISION_FILE), **env,
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hivemind_web", "worker", "--pool", "solo",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR, env=worker_env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with celery_broker(url):
            yield url
    finally:
        for process in (worker, broker):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(directory, ignore_errors=True)


def migrate(target: list[tuple[str, str]]) -> Any:
    """Migrate the test database to `target` (for tests of a data migration); the
    executor returned knows the state there (`.loader.project_state(target).apps`)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return MigrationExecutor(connection)


def latest_migrations() -> list[tuple[str, str]]:
    """Every app's newest migration: where a data-migration test returns to."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    return MigrationExecutor(connection).loader.graph.leaf_nodes()


# LangChain's LLMResult as openinference's instrumentation records a model call's
# answer: one generation, an AIMessage in dumpd's constructor form, calling `lookup`.
LANGCHAIN_LLM_RESULT: dict[str, Any] = {
    "type": "LLMResult",
    "generations": [
        [
            {
                "text": "",
                "message": {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "schema", "messages", "AIMessage"],
                    "kwargs": {
                        "content": "",
                        "tool_calls": [{"id": "c1", "name": "lookup", "args": {"id": 1}}],
                    },
                },
            }
        ]
    ],
}
