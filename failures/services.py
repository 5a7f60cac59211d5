"""Writes for failure modes (services): nearest-mode joins, re-clustering, and
the per-mode counts every page reads.

Flow: `failures.tasks.analyse_traces` mines incidents (mining.py) and embeds
them (embedding.py); each new incident joins the nearest mode at once if it is
close enough (`incidents_assign_nearest`). When enough are left without a mode
(or hourly, or when a lead asks) `failure_modes_recluster` re-runs HDBSCAN over
the workspace and matches the new clusters to existing modes, so mode ids (and
the skills and links attached to them) survive. Lead actions are in modes.py.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from hivemind_web.celery import enqueue
from traces.models import Trace
from traces.services import retention_cutoff
from workspaces import locks
from workspaces.locks import workspace_xact_lock
from workspaces.models import Workspace

from . import clustering
from .models import (
    EMBEDDING_DIMENSIONS,
    NOT_CAUSES,
    Assignment,
    ClusterRun,
    FailureMode,
    Incident,
    ModeDailyCount,
    ModeStatus,
    RunState,
)

logger = logging.getLogger(__name__)

# Where a workspace's incidents sit (their modes, their vectors) and its modes'
# counts are written under this lock (pg_advisory_xact_lock key): see `modes_lock`.
CLUSTER_LOCK = locks.INCIDENTS
# Two rewrites of one workspace's daily mode counts never interleave (they delete
# and re-insert the same keys: interleaved, the second insert hit a duplicate key).
DAILY_LOCK = 0x444159
# A queued or running re-cluster older than this lost its message or its worker
# (the task's hard time limit is 1,900 s).
RUN_LOST_AFTER = timedelta(minutes=40)
_INCIDENTS = Incident._meta.db_table
_DAILY = ModeDailyCount._meta.db_table


def modes_lock(workspace_id: int, *, shared: bool = False) -> None:
    """Take the workspace's lock on its incidents' placement for the rest of the
    current transaction, before any row is written, so writers that would hold
    rows the other waits for queue instead of deadlocking (seen in the worker log:
    an embedding's update against a re-cluster's). Whoever re-places incidents
    wholesale takes it alone: a re-cluster, a lead's merge, split or label, the
    text prune, and the retention purge (`traces_purge_expired`, in traces). The
    steady writers share it (`shared`): a re-diagnosis's write, the embedding's
    store, its nearest-mode joins and new modes run beside each other, as they did
    before the lock, and wait only for those."""
    workspace_xact_lock(CLUSTER_LOCK, workspace_id, shared=shared)


def incidents_assign_nearest(*, workspace_id: int, incident_ids: list[int]) -> int:
    """Let new incidents join an existing mode whose centroid is close enough, within
    the incident's own category group, as re-clustering keeps them
    (`clustering.category_group`): a finding of one kind ("never called `X`")
    does not join a mode of another ("`db_match` failed") on closeness alone."""
    modes = list(
        FailureMode.objects.filter(workspace_id=workspace_id, centroid__isnull=False)
        .exclude(status=ModeStatus.MERGED)
        .values_list("id", "centroid")
    )
    if not modes:
        return 0
    rows = list(
        Incident.objects.filter(pk__in=incident_ids, failure_mode=None)
        .exclude(embedding=None)
        .exclude(kind__in=NOT_CAUSES)
        .values_list("id", "embedding", "signature", "stats__method")
    )
    if not rows:
        return 0
    # A mode's group is its incidents' (clusters form within one group): one row each.
    group_of_mode = {
        mode_id: clustering.category_group(signature, method or "")
        for mode_id, signature, method in Incident.objects.filter(
            failure_mode_id__in=[m for m, _ in modes]
        )
        .order_by("failure_mode_id", "pk")
        .distinct("failure_mode_id")
        .values_list("failure_mode_id", "signature", "stats__method")
    }
    by_group: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_group.setdefault(clustering.category_group(row[2], row[3] or ""), []).append(i)
    vectors = np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
    labels = np.full(len(rows), clustering.NOISE)
    for group, members in by_group.items():
        centroid_map = {
            mode_id: np.asarray(c, dtype=np.float32)
            for mode_id, c in modes
            if group_of_mode.get(mode_id) == group
        }
        labels[members] = clustering.assign_nearest(
            vectors[members], centroid_map, settings.HIVEMIND_ASSIGN_SIMILARITY
        )
    joined: dict[int, list[int]] = {}
    for row, label in zip(rows, labels, strict=True):
        if label != clustering.NOISE:
            joined.setdefault(int(label), []).append(row[0])
    # A mode that at least doubles here is labelled again from its incidents: its
    # label must say what most of them say, not what its first few did.
    sizes = dict(FailureMode.objects.filter(pk__in=joined).values_list("pk", "incident_count"))
    grown = [m for m, ids in joined.items() if len(ids) >= sizes.get(m, 0)]
    with transaction.atomic():
        modes_lock(workspace_id, shared=True)
        for mode_id, ids in joined.items():
            Incident.objects.filter(pk__in=ids, failure_mode=None).update(
                failure_mode_id=mode_id, assigned_by=Assignment.NEAREST
            )
        ids = [i for members in joined.values() for i in members]
        failure_modes_refresh(mode_ids=[m for m in joined if m not in grown], relabel=False,
                              incident_ids=ids)  # fmt: skip
        failure_modes_refresh(mode_ids=grown, relabel=True, incident_ids=ids)
    return sum(len(ids) for ids in joined.values())


def recluster_due(*, workspace_id: int) -> bool:
    """Enough embedded incidents the last re-cluster did not see are waiting without
    a mode (HIVEMIND_RECLUSTER_AFTER of them). A text waiting often enough to be a
    mode on its own is made one without a re-cluster (`incidents_form_modes`)."""
    waiting = Incident.objects.filter(
        workspace_id=workspace_id, failure_mode=None, embedded_at__isnull=False
    ).exclude(kind__in=NOT_CAUSES)
    last = (
        ClusterRun.objects.filter(workspace_id=workspace_id, state=RunState.DONE)
        .order_by("-started_at")
        .first()
    )
    if last is not None:
        # Created, or embedded, after it started: a run clusters only what is
        # embedded, so an incident diagnosed before it and embedded during it was
        # not in it either.
        waiting = waiting.filter(
            Q(created_at__gt=last.started_at) | Q(embedded_at__gt=last.started_at)
        )
    count = waiting.count()
    return count >= settings.HIVEMIND_RECLUSTER_AFTER or (
        last is None and count >= 2 * settings.HIVEMIND_MIN_MODE_SIZE
    )


def incidents_form_modes(*, workspace_id: int) -> list[int]:
    """New modes from incidents waiting without one whose text (embedding key) they
    share with HIVEMIND_MIN_MODE_SIZE - 1 others or more: what a re-cluster would
    make of them (`clustering.cluster_vectors`: a text seen that often is a mode on
    its own), made incrementally, so a recurring failure is a mode once it recurs
    rather than at the next full re-cluster (hourly, or a lead's click). Under the
    re-cluster's lock, so the two never interleave. Returns the new modes' ids."""
    waiting = (
        Incident.objects.filter(
            workspace_id=workspace_id, failure_mode=None, embedded_at__isnull=False
        )
        .exclude(kind__in=NOT_CAUSES)
        .exclude(embedding_key="")
    )  # fmt: skip
    keys = list(
        waiting.values("embedding_key").annotate(n=Count("id"))
        .filter(n__gte=settings.HIVEMIND_MIN_MODE_SIZE).values_list("embedding_key", flat=True)
    )  # fmt: skip
    if not keys:
        return []
    formed = []
    with transaction.atomic():
        modes_lock(workspace_id, shared=True)  # the embedding, its only caller, runs alone
        for key in keys:
            ids = list(waiting.filter(embedding_key=key).values_list("pk", flat=True))
            if len(ids) < settings.HIVEMIND_MIN_MODE_SIZE:  # placed meanwhile
                continue
            mode = FailureMode.objects.create(workspace_id=workspace_id, label="(new mode)")
            Incident.objects.filter(pk__in=ids, failure_mode=None).update(
                failure_mode=mode, assigned_by=Assignment.CLUSTER
            )
            formed.append(mode.pk)
        failure_modes_refresh(mode_ids=formed, relabel=True)
    return formed


@transaction.atomic
def cluster_run_request(*, workspace_id: int, actor: User | None) -> tuple[ClusterRun, bool]:
    """Queue a re-clustering of the workspace, unless one is already queued or
    running: then that one is returned (one pending re-cluster per workspace,
    however many ingests or clicks ask), and a lead's request sends a queued one's
    message again. A run queued or running for longer than a run may take is
    marked failed and replaced."""
    # Serialise requests of one workspace so two cannot both see "none pending".
    Workspace.objects.select_for_update().filter(pk=workspace_id).first()
    stale = timezone.now() - RUN_LOST_AFTER
    pending = ClusterRun.objects.filter(
        workspace_id=workspace_id, state__in=[RunState.QUEUED, RunState.RUNNING]
    )
    pending.filter(created_at__lt=stale).update(state=RunState.FAILED, finished_at=timezone.now())
    active = pending.filter(created_at__gte=stale).order_by("-created_at").first()
    if active is not None:
        if actor is not None and active.state == RunState.QUEUED:
            # A lead asks again while it waits: its message may have been lost (the
            # broker was away), so send it again; one message claims it, the other
            # does nothing (`cluster_run_claim`).
            transaction.on_commit(
                lambda: enqueue("failures.tasks.recluster_workspace", workspace_id, active.pk)
            )
        return active, False
    run = ClusterRun.objects.create(workspace_id=workspace_id, requested_by=actor)
    transaction.on_commit(
        lambda: enqueue("failures.tasks.recluster_workspace", workspace_id, run.pk)
    )
    return run, True


def cluster_run_claim(*, workspace_id: int, run_id: int) -> bool:
    """Take a queued run for this process (queued -> running). False when another
    message for the same run took it first: a run re-sent by the sweep
    (`cluster_runs_lost`) whose first message arrived after all runs once."""
    return bool(
        ClusterRun.objects.filter(pk=run_id, workspace_id=workspace_id, state=RunState.QUEUED)
        .update(state=RunState.RUNNING, started_at=timezone.now())
    )  # fmt: skip


def cluster_runs_lost(*, older_than: timedelta) -> list[tuple[int, int]]:
    """(workspace id, run id) of runs still queued after `older_than`: their message
    was lost (the broker was away when a lead clicked, or right after a start)."""
    return list(
        ClusterRun.objects.filter(
            state=RunState.QUEUED, created_at__lt=timezone.now() - older_than
        ).values_list("workspace_id", "pk")
    )  # fmt: skip


def failure_modes_recluster(*, workspace_id: int, run_id: int | None = None) -> ClusterRun:
    """Re-cluster every embedded incident of a workspace, keeping mode ids.

    Incidents a lead placed by hand stay where they are. Runs under a
    per-workspace advisory lock, so two runs never interleave their writes.
    `run_id` names a queued run (a lead's request) to fill in; without it a new
    run is recorded. A run that ends in an error is marked failed.
    """
    run = _run_start(workspace_id, run_id)
    clock = time.perf_counter()
    try:
        with transaction.atomic():
            modes_lock(workspace_id)
            rows = list(
                Incident.objects.filter(workspace_id=workspace_id, embedded_at__isnull=False)
                .exclude(assigned_by=Assignment.MANUAL)
                .exclude(kind__in=NOT_CAUSES)
                .values_list(
                    "id",
                    "embedding",
                    "failure_mode_id",
                    "embedding_key",
                    "signature",
                    "stats__method",
                )
            )
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = (
                np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
                if rows
                else np.zeros((0, EMBEDDING_DIMENSIONS), dtype=np.float32)
            )
            labels = clustering.cluster_within(
                vectors,
                [clustering.category_group(r[4], r[5] or "") for r in rows],
                min_cluster_size=settings.HIVEMIND_MIN_MODE_SIZE,
                join_similarity=settings.HIVEMIND_ASSIGN_SIMILARITY,
                keys=[r[3] or f"row:{r[0]}" for r in rows],
            )
            labels = clustering.merge_same_text(labels, [clustering.mode_text(r[4]) for r in rows])
            rows = [(r[0], r[1], r[2]) for r in rows]  # type: ignore[misc]
            mapping = _match_to_modes(workspace_id, rows, ids, vectors, labels)
            _apply_labels(workspace_id, ids, labels, mapping)
            touched = set(mapping.values()) | {r[2] for r in rows if r[2] is not None}
            failure_modes_refresh(mode_ids=[m for m in touched if m is not None], relabel=True)
    except (OperationalError, InterfaceError):
        # A deadlock with a concurrent write, a lost connection: the task retries
        # (TASK_RETRY), and a lead's run waits for it, queued, rather than failed
        # with its retry finding nothing to claim.
        ClusterRun.objects.filter(pk=run.pk).update(
            state=RunState.QUEUED if run_id is not None else RunState.FAILED,
            started_at=None if run_id is not None else run.started_at,
            finished_at=None if run_id is not None else timezone.now(),
            seconds=time.perf_counter() - clock,
        )  # fmt: skip
        raise
    except Exception:
        ClusterRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED, finished_at=timezone.now(),
            seconds=time.perf_counter() - clock,
        )  # fmt: skip
        raise
    run.state, run.finished_at = RunState.DONE, timezone.now()
    run.seconds = time.perf_counter() - clock
    run.incidents, run.modes = len(rows), len(set(mapping.values()))
    run.noise = int((labels == clustering.NOISE).sum())
    run.save()
    return run


def _run_start(workspace_id: int, run_id: int | None) -> ClusterRun:
    run = None
    if run_id is not None:
        run = ClusterRun.objects.filter(pk=run_id, workspace_id=workspace_id).first()
    if run is None:
        run = ClusterRun(workspace_id=workspace_id)
    run.state, run.started_at = RunState.RUNNING, timezone.now()
    run.save()
    return run


def _match_to_modes(
    workspace_id: int, rows: list, ids: np.ndarray, vectors: np.ndarray, labels: np.ndarray
) -> dict[int, int]:
    """New cluster label -> FailureMode id (existing where it continues one)."""
    new_members = {
        int(label): set(ids[labels == label].tolist())
        for label in np.unique(labels)
        if label != clustering.NOISE
    }
    live_modes = FailureMode.objects.filter(workspace_id=workspace_id).exclude(
        status=ModeStatus.MERGED
    )
    live = {m.pk: m for m in live_modes}
    old_members: dict[int, set[int]] = {}
    for incident_id, _, mode_id in rows:
        if mode_id in live:
            old_members.setdefault(mode_id, set()).add(incident_id)
    old_centroids = {
        pk: np.asarray(m.centroid, dtype=np.float32)
        for pk, m in live.items()
        if m.centroid is not None
    }
    matched = clustering.match_clusters(
        new_members, old_members, clustering.centroids(vectors, labels), old_centroids
    )
    result = {}
    for label, mode_id in matched.items():
        if mode_id is None:
            mode_id = FailureMode.objects.create(workspace_id=workspace_id, label="(new mode)").pk
        result[label] = mode_id
    return result


def _apply_labels(
    workspace_id: int, ids: np.ndarray, labels: np.ndarray, mapping: dict[int, int]
) -> None:
    mode_ids = [mapping.get(int(label)) if label != clustering.NOISE else None for label in labels]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {_INCIDENTS} i SET failure_mode_id = u.mode_id,
                assigned_by = CASE WHEN u.mode_id IS NULL THEN '' ELSE 'cluster' END
            FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, mode_id)
            WHERE i.id = u.id AND i.workspace_id = %s
              AND i.failure_mode_id IS DISTINCT FROM u.mode_id
            """,
            [ids.tolist(), mode_ids, workspace_id],
        )
        cursor.execute(
            f"""
            UPDATE {_INCIDENTS} SET assigned_by = 'cluster'
            WHERE id = ANY(%s) AND failure_mode_id IS NOT NULL AND assigned_by = ''
            """,
            [ids.tolist()],
        )


_MODE_DAILY_SQL = f"""
    INSERT INTO {_DAILY} (workspace_id, failure_mode_id, day, agent, incidents, traces)
    SELECT i.workspace_id, i.failure_mode_id, (i.occurred_at AT TIME ZONE 'UTC')::date, t.agent,
           count(*), count(DISTINCT i.trace_id)
    FROM {_INCIDENTS} i JOIN {Trace._meta.db_table} t ON t.id = i.trace_id
    WHERE {{where}}
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (failure_mode_id, day, agent)
    DO UPDATE SET incidents = EXCLUDED.incidents, traces = EXCLUDED.traces
"""


# The (mode, day) keys before a cutoff that incidents still stored fall on: imported
# runs are kept for the retention period from their arrival, whatever their age.
_OLD_DAYS_SQL = f"""
    DELETE FROM {_DAILY} d
    USING (SELECT DISTINCT i.failure_mode_id, (i.occurred_at AT TIME ZONE 'UTC')::date AS day
           FROM {_INCIDENTS} i WHERE {{where}}) k
    WHERE d.failure_mode_id = k.failure_mode_id AND d.day = k.day
"""


def mode_daily_counts_refresh(
    *, mode_ids: list[int] | None = None, workspace_id: int | None = None
) -> None:
    """Rewrite the per-day incident counts of these modes (or of a workspace, or of
    all): every day from each workspace's retention cutoff on, and every earlier day
    that a stored incident falls on (imported runs of last year, kept because
    retention counts from arrival). Earlier days with no stored incident keep their
    counts: their incidents were purged, and rollups keep what remains of them."""
    if mode_ids is not None:
        scopes = list(
            FailureMode.objects.filter(pk__in=mode_ids)
            .values_list("workspace_id", flat=True)
            .distinct()
        )
    elif workspace_id is not None:
        scopes = [workspace_id]
    else:
        scopes = list(Workspace.objects.values_list("pk", flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        for ws in sorted(scopes):  # one lock order: no deadlock between two refreshes
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [DAILY_LOCK, ws])
            day = retention_cutoff(workspace_id=ws).date()
            where = "workspace_id = %s AND day >= %s"
            params: list[Any] = [ws, day]
            insert_where = "i.workspace_id = %s AND i.failure_mode_id IS NOT NULL"
            insert_params: list[Any] = [ws]
            if mode_ids is not None:
                where += " AND failure_mode_id = ANY(%s)"
                params.append(mode_ids)
                insert_where += " AND i.failure_mode_id = ANY(%s)"
                insert_params.append(mode_ids)
            cursor.execute(f"DELETE FROM {_DAILY} WHERE {where}", params)
            cursor.execute(
                _OLD_DAYS_SQL.format(
                    where=insert_where + " AND (i.occurred_at AT TIME ZONE 'UTC')::date < %s"
                ),
                [*insert_params, day],
            )
            cursor.execute(_MODE_DAILY_SQL.format(where=insert_where), insert_params)


# The days of some incidents, recounted: only the (mode, day) keys they fall on.
_KEYS_OF = f"""
    SELECT DISTINCT failure_mode_id AS mode_id, (occurred_at AT TIME ZONE 'UTC')::date AS day
    FROM {_INCIDENTS} WHERE id = ANY(%(ids)s) AND failure_mode_id = ANY(%(modes)s)
"""
_DAYS_OF_DELETE = f"""
    DELETE FROM {_DAILY} d USING ({_KEYS_OF}) k
    WHERE d.failure_mode_id = k.mode_id AND d.day = k.day
"""
_DAYS_OF_INSERT = f"""
    INSERT INTO {_DAILY} (workspace_id, failure_mode_id, day, agent, incidents, traces)
    SELECT i.workspace_id, i.failure_mode_id, k.day, t.agent, count(*), count(DISTINCT i.trace_id)
    FROM ({_KEYS_OF}) k
    JOIN {_INCIDENTS} i ON i.failure_mode_id = k.mode_id
     AND i.occurred_at >= (k.day::timestamp AT TIME ZONE 'UTC')
     AND i.occurred_at < ((k.day + 1)::timestamp AT TIME ZONE 'UTC')
    JOIN {Trace._meta.db_table} t ON t.id = i.trace_id
    GROUP BY 1, 2, 3, 4
"""


def mode_daily_counts_refresh_days(*, mode_ids: list[int], incident_ids: list[int]) -> None:
    """Recount the days that these incidents, just joined to these modes, fall on
    (every agent of those days); other days cannot have changed. Reads the modes'
    incidents of those days only, where a full refresh reads all of them."""
    if not mode_ids or not incident_ids:
        return
    scopes = sorted(set(
        FailureMode.objects.filter(pk__in=mode_ids).values_list("workspace_id", flat=True)
    ))  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        for ws in scopes:  # the same locks as a full refresh, in the same order
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [DAILY_LOCK, ws])
        params = {"ids": incident_ids, "modes": mode_ids}
        cursor.execute(_DAYS_OF_DELETE, params)
        cursor.execute(_DAYS_OF_INSERT, params)


def failure_modes_refresh(
    *, mode_ids: list[int], relabel: bool, incident_ids: list[int] | None = None
) -> None:
    """Recompute counts, daily counts, first/last seen, centroid, and (unless locked)
    label and keywords. With `incident_ids` (the incidents that just joined these
    modes, none left them), only the days those fall on are recounted."""
    if not mode_ids:
        return
    if incident_ids is not None:
        mode_daily_counts_refresh_days(mode_ids=mode_ids, incident_ids=incident_ids)
    else:
        mode_daily_counts_refresh(mode_ids=mode_ids)
    modes = {m.pk: m for m in FailureMode.objects.filter(pk__in=mode_ids)}
    # Skill trials count traces that hit their modes: theirs may have changed.
    for workspace_id in sorted({m.workspace_id for m in modes.values()}):
        changed = sorted(pk for pk, m in modes.items() if m.workspace_id == workspace_id)
        transaction.on_commit(
            lambda ws=workspace_id, changed=changed: enqueue(  # type: ignore[misc]
                "metrics.tasks.refresh_trials", ws, changed
            )
        )
    stats = {
        row["failure_mode"]: row
        for row in Incident.objects.filter(failure_mode__in=mode_ids)
        .values("failure_mode")
        .annotate(
            n=Count("id"),
            traces=Count("trace", distinct=True),
            first=Min("occurred_at"),
            last=Max("occurred_at"),
        )  # fmt: skip
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT failure_mode_id, avg(embedding) FROM {_INCIDENTS}
            WHERE failure_mode_id = ANY(%s) AND embedding IS NOT NULL GROUP BY failure_mode_id
            """,
            [mode_ids],
        )
        centroid_rows = dict(cursor.fetchall())
    from .stats import modes_figures

    workspace_ids = {m.workspace_id for m in modes.values()}
    figures: dict[int, dict] = {}
    for ws in workspace_ids:
        figures |= modes_figures(
            workspace_id=ws, mode_ids=[pk for pk, m in modes.items() if m.workspace_id == ws]
        )
    docs = _mode_docs(mode_ids) if relabel else {}
    keywords = clustering.ctfidf_keywords({k: v[0] for k, v in docs.items()}) if docs else {}
    now = timezone.now()
    for pk, mode in modes.items():
        mode.updated_at = now
        row = stats.get(pk)
        mode.incident_count = row["n"] if row else 0
        mode.trace_count = row["traces"] if row else 0
        mode.first_seen = row["first"] if row else None
        mode.last_seen = row["last"] if row else None
        mode.stats = figures.get(pk, {})
        centroid = centroid_rows.get(pk)
        if centroid is not None:
            vector = np.asarray(_vector(centroid), dtype=np.float32)
            mode.centroid = vector / max(float(np.linalg.norm(vector)), 1e-9)
        if relabel and pk in docs:
            signatures, tools = docs[pk]
            mode.keywords = keywords.get(pk, [])
            if not mode.label_locked and mode.label_source not in ("claude", "model"):
                mode.label = clustering.mode_label(signatures, tools)[:200]
    FailureMode.objects.bulk_update(list(modes.values()), REFRESHED_FIELDS)


REFRESHED_FIELDS = [
    "incident_count", "trace_count", "first_seen", "last_seen", "centroid", "keywords", "label",
    "stats", "updated_at",
]  # fmt: skip


def _vector(value: object) -> list[float]:
    if isinstance(value, str):  # pgvector text form "[0.1,0.2,…]"
        return [float(x) for x in value.strip("[]").split(",")]
    return list(value)  # type: ignore[call-overload]


def _mode_docs(mode_ids: list[int]) -> dict[int, tuple[list[str], list[str]]]:
    docs: dict[int, tuple[list[str], list[str]]] = {}
    rows = Incident.objects.filter(failure_mode__in=mode_ids).values_list(
        "failure_mode", "signature", "tool"
    )
    for mode_id, signature, tool in rows:
        signatures, tools = docs.setdefault(mode_id, ([], []))
        if len(signatures) < 2000:
            signatures.append(signature)
            tools.append(tool)
    return docs


@transaction.atomic
def modes_refresh_workspace(*, workspace_id: int) -> int:
    """Recompute every mode of a workspace (after incidents went away in bulk)."""
    modes_lock(workspace_id)
    mode_ids = list(
        FailureMode.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True)
    )
    failure_modes_refresh(mode_ids=mode_ids, relabel=False)
    return len(mode_ids)


def failure_mode_mark_addressed(*, mode_id: int) -> bool:
    """A published skill now addresses this mode (an open mode only: ignored and
    merged modes keep their status). Called by the skills app on approval."""
    return bool(
        FailureMode.objects.filter(pk=mode_id, status=ModeStatus.OPEN).update(
            status=ModeStatus.ADDRESSED, updated_at=timezone.now()
        )
    )


def failure_mode_mark_open(*, mode_id: int) -> bool:
    """No published skill addresses this mode any more (its skill was retired): an
    addressed mode is open again. Called by the skills app."""
    return bool(
        FailureMode.objects.filter(pk=mode_id, status=ModeStatus.ADDRESSED).update(
            status=ModeStatus.OPEN, updated_at=timezone.now()
        )
    )
