"""Writes for incidents' embeddings and failure modes (services).

Flow: ingest commits → `incidents_embed` gives new incidents a vector and lets
each join the nearest mode at once if it is close enough → when enough are left
without a mode (or on the periodic sweep) `failure_modes_recluster` re-runs
HDBSCAN over the workspace and matches the new clusters to existing modes.
Lead actions (rename, merge, split, ignore) are here too, each audited.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from workspaces.errors import InvalidInput, NotFound, PermissionDenied
from workspaces.models import Membership, Role, Workspace
from workspaces.services import audit_record

from . import clustering
from .embeddings import get_embedder
from .models import Assignment, ClusterRun, FailureMode, Incident, ModeStatus
from .signatures import embedding_text

EMBED_BATCH = 256


def incidents_embed(*, workspace_id: int, limit: int = 5000) -> list[int]:
    """Embed the workspace's incidents that have no vector yet; return their ids.

    Idempotent: only incidents with `embedded_at` unset are touched, and the
    update re-checks it, so two workers racing embed each incident once.
    """
    pending = list(
        Incident.objects.filter(workspace_id=workspace_id, embedded_at=None)
        .order_by("id")
        .values_list("id", "signature")[:limit]
    )
    if not pending:
        return []  # spares loading the model when there is nothing to do
    embedder = get_embedder()
    done: list[int] = []
    for start in range(0, len(pending), EMBED_BATCH):
        chunk = pending[start : start + EMBED_BATCH]
        vectors = embedder.embed([embedding_text(signature) for _, signature in chunk])
        now = timezone.now()
        with transaction.atomic():
            for (incident_id, _), vector in zip(chunk, vectors, strict=True):
                updated = Incident.objects.filter(pk=incident_id, embedded_at=None).update(
                    embedding=vector, embedded_at=now
                )
                if updated:
                    done.append(incident_id)
    if done:
        incidents_assign_nearest(workspace_id=workspace_id, incident_ids=done)
    return done


def incidents_assign_nearest(*, workspace_id: int, incident_ids: list[int]) -> int:
    """Let new incidents join an existing mode whose centroid is close enough."""
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
        .values_list("id", "embedding")
    )
    if not rows:
        return 0
    centroid_map = {mode_id: np.asarray(c, dtype=np.float32) for mode_id, c in modes}
    vectors = np.stack([np.asarray(v, dtype=np.float32) for _, v in rows])
    labels = clustering.assign_nearest(vectors, centroid_map, settings.HIVEMIND_ASSIGN_SIMILARITY)
    joined: dict[int, list[int]] = {}
    for (incident_id, _), label in zip(rows, labels, strict=True):
        if label != clustering.NOISE:
            joined.setdefault(int(label), []).append(incident_id)
    with transaction.atomic():
        for mode_id, ids in joined.items():
            Incident.objects.filter(pk__in=ids, failure_mode=None).update(
                failure_mode_id=mode_id, assigned_by=Assignment.NEAREST
            )
        failure_modes_refresh(mode_ids=list(joined), relabel=False)
    return sum(len(ids) for ids in joined.values())


def recluster_due(*, workspace_id: int) -> bool:
    """Enough embedded incidents are waiting without a mode to re-cluster."""
    waiting = Incident.objects.filter(
        workspace_id=workspace_id, failure_mode=None, embedded_at__isnull=False
    )
    last = ClusterRun.objects.filter(workspace_id=workspace_id).order_by("-started_at").first()
    if last is not None:
        waiting = waiting.filter(created_at__gt=last.started_at)
    return waiting.count() >= settings.HIVEMIND_RECLUSTER_AFTER or (
        last is None and waiting.count() >= 2 * settings.HIVEMIND_MIN_MODE_SIZE
    )


def failure_modes_recluster(*, workspace_id: int) -> ClusterRun:
    """Re-cluster every embedded incident of a workspace, keeping mode ids.

    Incidents a lead placed by hand stay where they are. Runs under a
    per-workspace advisory lock, so two runs never interleave their writes.
    """
    started = timezone.now()
    clock = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x434C55, workspace_id])
        rows = list(
            Incident.objects.filter(workspace_id=workspace_id, embedded_at__isnull=False)
            .exclude(assigned_by=Assignment.MANUAL)
            .values_list("id", "embedding", "failure_mode_id")
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (
            np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, 384), dtype=np.float32)
        )
        labels = clustering.cluster_vectors(
            vectors,
            min_cluster_size=settings.HIVEMIND_MIN_MODE_SIZE,
            join_similarity=settings.HIVEMIND_ASSIGN_SIMILARITY,
        )
        mapping = _match_to_modes(workspace_id, rows, ids, vectors, labels)
        _apply_labels(workspace_id, ids, labels, mapping)
        touched = set(mapping.values()) | {r[2] for r in rows if r[2] is not None}
        failure_modes_refresh(mode_ids=[m for m in touched if m is not None], relabel=True)
        return ClusterRun.objects.create(
            workspace_id=workspace_id,
            started_at=started,
            seconds=time.perf_counter() - clock,
            incidents=len(rows),
            modes=len(set(mapping.values())),
            noise=int((labels == clustering.NOISE).sum()),
        )


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
            """
            UPDATE traces_incident i SET failure_mode_id = u.mode_id,
                assigned_by = CASE WHEN u.mode_id IS NULL THEN '' ELSE 'cluster' END
            FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, mode_id)
            WHERE i.id = u.id AND i.workspace_id = %s
              AND i.failure_mode_id IS DISTINCT FROM u.mode_id
            """,
            [ids.tolist(), mode_ids, workspace_id],
        )
        cursor.execute(
            """
            UPDATE traces_incident SET assigned_by = 'cluster'
            WHERE id = ANY(%s) AND failure_mode_id IS NOT NULL AND assigned_by = ''
            """,
            [ids.tolist()],
        )


_MODE_DAILY_SQL = """
    INSERT INTO traces_modedailycount (workspace_id, failure_mode_id, day, agent, incidents, traces)
    SELECT i.workspace_id, i.failure_mode_id, (i.occurred_at AT TIME ZONE 'UTC')::date, t.agent,
           count(*), count(DISTINCT i.trace_id)
    FROM traces_incident i JOIN traces_trace t ON t.id = i.trace_id
    WHERE {where}
    GROUP BY 1, 2, 3, 4
"""


def mode_daily_counts_refresh(
    *, mode_ids: list[int] | None = None, workspace_id: int | None = None
) -> None:
    """Rewrite the per-day incident counts of these modes (or of a workspace, or of
    all), from each workspace's retention cutoff on: days before it may hold counts
    of purged incidents, which rollups keep."""
    from .services import retention_cutoff

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
        for ws in scopes:
            day = retention_cutoff(workspace_id=ws).date()
            where, params = "workspace_id = %s AND day >= %s", [ws, day]
            insert_where = (
                "i.workspace_id = %s AND i.occurred_at >= %s AND i.failure_mode_id IS NOT NULL"
            )
            insert_params: list = [ws, day]
            if mode_ids is not None:
                where += " AND failure_mode_id = ANY(%s)"
                params.append(mode_ids)
                insert_where += " AND i.failure_mode_id = ANY(%s)"
                insert_params.append(mode_ids)
            cursor.execute(f"DELETE FROM traces_modedailycount WHERE {where}", params)
            cursor.execute(_MODE_DAILY_SQL.format(where=insert_where), insert_params)


def failure_modes_refresh(*, mode_ids: list[int], relabel: bool) -> None:
    """Recompute counts, daily counts, first/last seen, centroid, and (unless locked)
    label and keywords."""
    if not mode_ids:
        return
    mode_daily_counts_refresh(mode_ids=mode_ids)
    modes = {m.pk: m for m in FailureMode.objects.filter(pk__in=mode_ids)}
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
            """
            SELECT failure_mode_id, avg(embedding) FROM traces_incident
            WHERE failure_mode_id = ANY(%s) AND embedding IS NOT NULL GROUP BY failure_mode_id
            """,
            [mode_ids],
        )
        centroid_rows = dict(cursor.fetchall())
    docs = _mode_docs(mode_ids) if relabel else {}
    keywords = clustering.ctfidf_keywords({k: v[0] for k, v in docs.items()}) if docs else {}
    for pk, mode in modes.items():
        row = stats.get(pk)
        mode.incident_count = row["n"] if row else 0
        mode.trace_count = row["traces"] if row else 0
        mode.first_seen = row["first"] if row else None
        mode.last_seen = row["last"] if row else None
        centroid = centroid_rows.get(pk)
        if centroid is not None:
            vector = np.asarray(_vector(centroid), dtype=np.float32)
            mode.centroid = vector / max(float(np.linalg.norm(vector)), 1e-9)
        if relabel and pk in docs:
            signatures, tools = docs[pk]
            mode.keywords = keywords.get(pk, [])
            if not mode.label_locked:
                mode.label = clustering.mode_label(signatures, tools)[:200]
        mode.save()


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


# --- lead actions ---------------------------------------------------------------


def _require_lead(workspace: Workspace, user: AbstractBaseUser) -> None:
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if membership is None or not membership.has_role(Role.LEAD):
        raise PermissionDenied("Only leads and admins can change failure modes.")


def _get_mode(workspace: Workspace, mode_id: int) -> FailureMode:
    mode = FailureMode.objects.filter(workspace=workspace, pk=mode_id).first()
    if mode is None:
        raise NotFound("No such failure mode in this workspace.")
    return mode


@transaction.atomic
def failure_mode_rename(
    *, workspace: Workspace, mode_id: int, label: str, actor: AbstractBaseUser
) -> FailureMode:
    _require_lead(workspace, actor)
    mode = _get_mode(workspace, mode_id)
    label = label.strip()
    if not label or len(label) > 200:
        raise InvalidInput("A label must be 1-200 characters.")
    before = {"label": mode.label}
    mode.label, mode.label_locked = label, True
    mode.save(update_fields=["label", "label_locked", "updated_at"])
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.rename", obj=mode,
        before=before, after={"label": label},
    )  # fmt: skip
    return mode


@transaction.atomic
def failure_mode_merge(
    *, workspace: Workspace, source_id: int, target_id: int, actor: AbstractBaseUser
) -> FailureMode:
    """Move every incident of `source` into `target`; `source` is kept as merged."""
    _require_lead(workspace, actor)
    if source_id == target_id:
        raise InvalidInput("Choose two different modes to merge.")
    source, target = _get_mode(workspace, source_id), _get_mode(workspace, target_id)
    if ModeStatus.MERGED in (source.status, target.status):
        raise InvalidInput("One of these modes was already merged into another.")
    moved = Incident.objects.filter(failure_mode=source).update(failure_mode=target)
    source.status, source.merged_into = ModeStatus.MERGED, target
    source.save(update_fields=["status", "merged_into", "updated_at"])
    failure_modes_refresh(mode_ids=[source.pk, target.pk], relabel=True)
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.merge", obj=source,
        after={"merged_into": target.pk, "incidents_moved": moved},
    )  # fmt: skip
    return target


@transaction.atomic
def failure_mode_split(
    *,
    workspace: Workspace,
    mode_id: int,
    incident_ids: list[int],
    label: str,
    actor: AbstractBaseUser,
) -> FailureMode:
    """Move chosen incidents of a mode into a new mode; re-clustering keeps them there."""
    _require_lead(workspace, actor)
    mode = _get_mode(workspace, mode_id)
    incidents = Incident.objects.filter(workspace=workspace, failure_mode=mode, pk__in=incident_ids)
    if not incidents.exists():
        raise InvalidInput("Choose at least one incident of this mode to split off.")
    new_mode = FailureMode.objects.create(
        workspace=workspace, label=label.strip()[:200] or f"Split from: {mode.label}"[:200],
        label_locked=bool(label.strip()),
    )  # fmt: skip
    count = incidents.update(failure_mode=new_mode, assigned_by=Assignment.MANUAL)
    failure_modes_refresh(mode_ids=[mode.pk, new_mode.pk], relabel=True)
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.split", obj=mode,
        after={"new_mode": new_mode.pk, "incidents": count},
    )  # fmt: skip
    return new_mode


@transaction.atomic
def failure_mode_set_status(
    *, workspace: Workspace, mode_id: int, status: str, actor: AbstractBaseUser
) -> FailureMode:
    """Ignore a mode (no skill will be drafted for it) or open it again."""
    _require_lead(workspace, actor)
    if status not in (ModeStatus.OPEN, ModeStatus.IGNORED):
        raise InvalidInput("A mode can be set to open or ignored.")
    mode = _get_mode(workspace, mode_id)
    if mode.status == ModeStatus.MERGED:
        raise InvalidInput("This mode was merged; act on the mode it was merged into.")
    before = {"status": mode.status}
    mode.status = status
    mode.save(update_fields=["status", "updated_at"])
    audit_record(
        workspace=workspace, actor=actor, action=f"failure_mode.{status}", obj=mode,
        before=before, after={"status": status},
    )  # fmt: skip
    return mode


def latest_run(*, workspace_id: int) -> datetime | None:
    run = ClusterRun.objects.filter(workspace_id=workspace_id).order_by("-started_at").first()
    return run.started_at if run else None
