"""What a process loads before it serves its first request or task.

Called in gunicorn's master before it forks its workers (`preload_app`), and in
the Celery worker's parent before it forks its children: the children then
share these pages instead of each loading its own copy (the embedding model is
~90 MB of weights). Inference is warmed only after the fork (`warm_inference`).
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

# Libraries only the worker's tasks use (clustering, keywords, the offline
# diagnosis), imported on first use otherwise: ~63 MiB in each pool child that
# imported them, shared when the parent has.
WORKER_MODULES = (
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.feature_extraction.text",
    "sklearn.metrics",
)


# Set by the default run (hivemind_web/run.py), which starts the web server and the
# worker while its `migrate` runs: each loads what it needs meanwhile, then waits for
# the schema before it accepts a request or a task.
AWAIT_MIGRATIONS = "HIVEMIND_AWAIT_MIGRATIONS"


def await_migrations(poll: float = 0.2) -> None:
    """Return once every migration on disk is applied (each app's last one recorded:
    `migrate` applies them in order, so the rest are too)."""
    from django.db import DatabaseError, connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    leaves = set(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes())
    recorder = MigrationRecorder(connection)
    while True:
        try:
            if recorder.has_table() and leaves <= set(recorder.applied_migrations()):
                return
        except DatabaseError:
            connection.close()  # the server restarting, or the table being created
        time.sleep(poll)


def warm_process(modules: tuple[str, ...] = ()) -> None:
    """URL conf and every view module, the templates, the embedding model, the
    default PII policy's redactor, and `modules`. Leaves no database connection open (a forked child must not share
    one)."""
    import importlib

    from django.conf import settings
    from django.db import connections
    from django.template.loader import get_template
    from django.urls import get_resolver

    from failures.embedding import get_embedder

    get_resolver().url_patterns  # imports every view module  # noqa: B018
    get_resolver()._populate()
    # Every template of the project, compiled into the cached loader.
    engine: dict[str, Any] = settings.TEMPLATES[0]
    folders = [Path(f) for f in engine["DIRS"]]
    for folder in folders:
        for path in sorted(folder.rglob("*.html")):
            get_template(str(path.relative_to(folder)))
    if settings.HIVEMIND_EMBED_THREADS == 1:
        # A session on the calling thread starts no pool: safe to share across the
        # fork. With more threads, each child loads its own (warm_inference).
        get_embedder()
    # The redactor of a workspace with the default PII policy (most workspaces) and
    # the logs': compiling the kinds' patterns takes tens of milliseconds, which the
    # first trace a process stored would otherwise wait for.
    from workspaces.logredaction import log_redactor
    from workspaces.models import PiiPolicy
    from workspaces.redaction import redactor_for_policy

    redactor_for_policy(PiiPolicy(workspace_id=0))
    log_redactor()
    for module in modules:
        importlib.import_module(module)
    if os.environ.get(AWAIT_MIGRATIONS):
        await_migrations()
    connections.close_all()
    # What is loaded now stays out of the garbage collector's way: collections in
    # a child would otherwise write to (and so copy) every page they scan.
    gc.freeze()


# The young generation's threshold in a web worker: a collection after this many
# container objects are allocated (net of those freed), not Python's 700. An
# ingest request of 100 runs of 20 steps keeps tens of thousands of dicts and
# lists alive while it works, and at 700 the collector ran 39 times inside it (36
# young, 3 middle-generation passes), each walking objects that were all still in
# use; at this threshold, none. In one process, alternating the two over 16 such
# requests, the request's CPU per step was 32.5 µs against 33.6 (medians): small,
# and free. Cycles are still collected; at most this many young containers wait
# for it (a few MB).
WEB_GC_THRESHOLD = (50_000, 20, 20)


def tune_collector() -> None:
    """The collector's thresholds for a web worker (WEB_GC_THRESHOLD)."""
    gc.set_threshold(*WEB_GC_THRESHOLD)


def warm_inference() -> None:
    """One embedding in this process, so its first search does not start the pool."""
    from failures.embedding import get_embedder

    get_embedder().embed(["warm up"])
