"""What web and worker processes load before they fork and serve (hivemind_web/warmup.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import get_resolver

from hivemind_web import gunicorn_conf, warmup


def test_gunicorn_loads_the_app_in_the_master_and_warms_each_worker():
    assert gunicorn_conf.preload_app is True
    assert callable(gunicorn_conf.on_starting) and callable(gunicorn_conf.post_worker_init)


@pytest.mark.django_db(transaction=True)
def test_warm_process_compiles_every_template_and_leaves_no_connection_to_share(monkeypatch):
    frozen: list[bool] = []
    monkeypatch.setattr(warmup.gc, "freeze", lambda: frozen.append(True))
    from workspaces.redaction import _compiled_redactor

    _compiled_redactor.cache_clear()
    connection.ensure_connection()
    warmup.warm_process()  # raises on a template that does not compile
    # The default policy's redactor is compiled before the first trace arrives.
    assert _compiled_redactor.cache_info().currsize == 1
    # A forked child must open its own connection, never share the parent's.
    assert connection.connection is None or connection.connection.closed
    assert get_resolver()._populated
    assert frozen == [True]


def test_each_web_worker_collects_garbage_less_often(monkeypatch):
    """At Python's threshold (700) the collector ran 39 times inside one ingest
    request of 2,000 steps, walking objects that were all still in use."""
    import gc

    monkeypatch.setattr(warmup, "warm_inference", lambda: None)
    before = gc.get_threshold()
    try:
        gunicorn_conf.post_worker_init(None)
        assert gc.get_threshold() == warmup.WEB_GC_THRESHOLD
        assert warmup.WEB_GC_THRESHOLD[0] >= 10_000
    finally:
        gc.set_threshold(*before)


def test_warm_inference_embeds_once():
    warmup.warm_inference()


def test_a_stopping_worker_keeps_its_exit_code_and_boot_failures_are_left_to_gunicorn(
    monkeypatch,
):
    import atexit
    from types import SimpleNamespace

    codes: list[int] = []
    ran: list[bool] = []
    monkeypatch.setattr(gunicorn_conf.os, "_exit", codes.append)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append(True))
    booted, not_booted = SimpleNamespace(booted=True), SimpleNamespace(booted=False)

    def leave(worker: object, exc: BaseException) -> None:
        # As gunicorn calls it: in the `finally` of the worker's process.
        try:
            raise exc
        finally:
            gunicorn_conf.worker_exit(None, worker)

    for code in (0, 1, None):  # a stop, a timeout's abort, a bare sys.exit()
        with pytest.raises(SystemExit):
            leave(booted, SystemExit(code))
    assert codes == [0, 1, 0] and len(ran) == 3
    with pytest.raises(SystemExit):
        leave(not_booted, SystemExit(3))  # gunicorn reads a boot error's code itself
    with pytest.raises(ValueError):
        leave(booted, ValueError("crash"))
    assert codes == [0, 1, 0] and len(ran) == 3


def test_the_worker_parent_imports_every_library_its_tasks_import_lazily(monkeypatch):
    """sklearn imported on first use cost ~63 MiB in each pool child; imported by
    the parent before it forks, the children share it. A lazy import of a module
    that the parent does not load would bring the copies back."""
    import re
    from pathlib import Path

    from hivemind_web import worker

    root = Path(warmup.__file__).resolve().parent.parent
    lazy: set[str] = set()
    for app in ("failures", "skills", "metrics", "traces", "workspaces"):
        for path in (root / app).rglob("*.py"):
            for module in re.findall(r"^\s+from (sklearn[\w.]*) import", path.read_text(), re.M):
                lazy.add(module)
    assert lazy and lazy <= set(warmup.WORKER_MODULES), sorted(lazy - set(warmup.WORKER_MODULES))

    loaded: list[tuple[str, ...]] = []
    monkeypatch.setattr(warmup, "warm_process", lambda modules=(): loaded.append(modules))
    worker.load_before_forking()
    assert loaded == [warmup.WORKER_MODULES]


def test_worker_pool_children_yield_the_cpu_to_the_web_server(monkeypatch):
    """A page opened while the worker drafts (the demo's skills, right after a
    start) waits less for it: the pool's children run at a lower priority."""
    from hivemind_web import worker

    niced: list[int] = []
    monkeypatch.setattr(worker.os, "nice", niced.append)
    worker.yield_to_the_web_server()
    assert niced == [worker.WORKER_NICENESS] and 0 < worker.WORKER_NICENESS <= 19


def test_seed_demo_run_as_its_own_process_skips_the_collections_at_exit(monkeypatch):
    """`make run`'s demo seed ends while the first pages are served; its exit must
    not spend CPU collecting a heap it is about to drop. call_command, where the
    process goes on, leaves the collector alone."""
    from django.core.management import call_command

    from metrics.management.commands import seed_demo

    frozen: list[bool] = []
    monkeypatch.setattr(seed_demo.gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(seed_demo.Command, "handle", lambda self, *a, **o: None)
    call_command("seed_demo")
    assert frozen == []
    seed_demo.Command().run_from_argv(["manage.py", "seed_demo"])
    assert frozen == [True]


@pytest.mark.django_db
def test_a_process_started_beside_migrate_waits_until_every_app_is_migrated(monkeypatch):
    """The default run starts the web server and the worker while `migrate` runs:
    each loads meanwhile, then waits in warm_process until every app's last
    migration is recorded, so no request or task meets a table not yet made."""
    from django.db.migrations.recorder import MigrationRecorder

    real = MigrationRecorder.applied_migrations
    polls: list[int] = []

    def applied(self):  # type: ignore[no-untyped-def]
        found = real(self)
        polls.append(len(polls))
        if len(polls) < 3:  # the traces app's newest migration not applied yet
            del found[max(key for key in found if key[0] == "traces")]
        return found

    monkeypatch.setattr(MigrationRecorder, "applied_migrations", applied)
    monkeypatch.setattr(warmup.gc, "freeze", lambda: None)
    monkeypatch.setenv(warmup.AWAIT_MIGRATIONS, "1")
    monkeypatch.setattr(warmup.time, "sleep", lambda seconds: None)
    warmup.warm_process()
    assert len(polls) == 3
    monkeypatch.delenv(warmup.AWAIT_MIGRATIONS)
    polls.clear()
    warmup.warm_process()  # run on its own (production's gunicorn): no wait
    assert polls == []


def test_the_default_run_starts_the_web_server_and_the_worker_before_it_migrates(monkeypatch):
    """Their start (loading the app and the model) overlaps the migrations; the web
    server's follows the static files (it reads their manifest once), and the demo
    seed, which writes to the tables, starts after the migrations."""
    import os
    import subprocess

    from hivemind_web import run

    events: list[str] = []

    class Done:
        """A process that ran to its end, saying when it is waited on."""

        def __init__(self, command: list[str]) -> None:
            self.args, self.name = command, command[2]
            self.returncode = 0
            events.append(f"{self.name} started")

        def wait(self) -> int:
            events.append(f"{self.name} done")
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(run, "hold_run_lock", lambda *args: None)
    monkeypatch.setattr(run, "_start_reaper", lambda settings: None)
    monkeypatch.setattr(run, "_start", Done)
    monkeypatch.setattr(run.Child, "launch", lambda child: events.append(
        f"{child.name} ({os.environ.get(warmup.AWAIT_MIGRATIONS)})"))  # fmt: skip
    monkeypatch.setattr(run, "supervise", lambda children, stopping, on_tick: [
        child.launch() for child in children if child.name == "demo seed"] and 0)  # fmt: skip
    monkeypatch.setattr(run.signal, "signal", lambda *args: None)  # pytest keeps its Ctrl-C
    monkeypatch.delenv(warmup.AWAIT_MIGRATIONS, raising=False)
    # What main() sets for its children, restored after the test.
    monkeypatch.setenv("HIVEMIND_PUBLIC_URL", "http://127.0.0.1:8999")
    monkeypatch.setenv("HIVEMIND_STATIC_MANIFEST", os.environ.get("HIVEMIND_STATIC_MANIFEST", ""))
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # no embedded broker
    monkeypatch.setattr(subprocess, "Popen", None)  # nothing else may start a process
    try:
        assert run.main(["--port", "8999"]) == 0
    finally:
        os.environ.pop(warmup.AWAIT_MIGRATIONS, None)
    assert events == [
        "prepare_static started", "worker (1)", "migrate started",
        # The web server loads while the migrations run, after the static files.
        "prepare_static done", "web (1)", "migrate done",
        "demo seed (1)",
    ]  # fmt: skip


def test_prepare_static_runs_every_system_check_before_it_collects(monkeypatch):
    """The default run migrates with --skip-checks: the checks run here instead, so a
    failing one (any tag, not only the static files') still stops the start."""
    from django.contrib.staticfiles.management.commands import collectstatic
    from django.core import checks
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    collected: list[dict] = []
    monkeypatch.setattr(collectstatic.Command, "handle",
                        lambda self, **options: collected.append(options) or "")  # fmt: skip

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        return [checks.Error("a model is broken", id="tests.E001")]

    registry = checks.registry.registry
    monkeypatch.setattr(registry, "registered_checks", {*registry.registered_checks, broken})
    with pytest.raises(SystemCheckError, match="a model is broken"):
        call_command("prepare_static", skip_checks=False)  # as from the command line
    assert collected == []
    monkeypatch.setattr(registry, "registered_checks", registry.registered_checks - {broken})
    call_command("prepare_static", skip_checks=False)
    assert len(collected) == 1 and collected[0]["interactive"] is False
