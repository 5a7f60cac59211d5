"""Writes for traces: batch ingest, late outcomes."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from hivemind_web.celery import enqueue
from workspaces.errors import InvalidInput, NotFound, PermissionDenied
from workspaces.locks import INCIDENTS, workspace_xact_lock
from workspaces.models import PiiPolicy, Workspace
from workspaces.redaction import redactor_for_policy
from workspaces.services import audit_record
from workspaces.textsafety import clean_text

from .ingest import (
    PreparedTrace,
    apply_pending_outcomes,
    checks_redacted,
    prepare_trace,
    without_step_maps,
    write_traces,
)
from .models import Outcome, SavedView, Trace
from .schemas import OutcomeIn, TraceIn

logger = logging.getLogger(__name__)


@dataclass
class ItemResult:
    index: int
    external_id: str | None
    status: str  # created / updated / unchanged / rejected / skipped
    detail: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchResult:
    results: list[ItemResult]
    trace_ids: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def capture_policy_get(*, workspace: Workspace, policy: PiiPolicy | None = None) -> PiiPolicy:
    """The workspace's policy (`policy`, when the caller has read it already);
    raises PermissionDenied when capture is off."""
    if policy is None or policy.workspace_id != workspace.pk:
        policy, _ = PiiPolicy.objects.get_or_create(workspace=workspace)
    if not policy.capture_enabled:
        raise PermissionDenied(
            f"Capture is switched off for workspace '{workspace.slug}': nothing is stored. "
            "An admin can switch it on under Settings → PII policy."
        )
    return policy


def trace_ingest_batch(
    *,
    workspace: Workspace,
    items: list[Any],
    policy: PiiPolicy | None = None,
    skip_unchanged: bool = True,
) -> BatchResult:
    """Validate, redact and upsert a batch of traces.

    Each trace is accepted or rejected on its own, and a rejected trace writes
    nothing. Re-sending a trace (same external_id) updates it; steps are matched
    by index, so a retried batch creates nothing new. A trace sent again exactly
    as it was last written, under the same PII policy, is `unchanged`: nothing is
    written or analysed again (`skip_unchanged`; a caller that has just removed
    a trace's steps to rewrite them passes False). `policy`: the workspace's PII
    policy when the caller has read it already (a hook event).
    """
    policy = capture_policy_get(workspace=workspace, policy=policy)
    if len(items) > settings.HIVEMIND_MAX_TRACES_PER_BATCH:
        raise InvalidInput(
            f"Batch has {len(items)} traces; the limit is "
            f"{settings.HIVEMIND_MAX_TRACES_PER_BATCH}. Split it into smaller batches."
        )
    results: list[ItemResult | None] = [None] * len(items)
    valid: list[tuple[int, TraceIn, str]] = []
    seen: set[str] = set()
    salt = f"{policy.pk}:{policy.updated_at.isoformat()}".encode()
    for position, item in enumerate(items):
        outcome = _validate_item(position, item, seen)
        if isinstance(outcome, ItemResult):
            results[position] = outcome
            continue
        seen.add(outcome.external_id)
        valid.append((position, outcome, content_digest(item, salt)))
    redactor = redactor_for_policy(policy)
    _adopt_former_ids(workspace, redactor, [trace.external_id for _, trace, _ in valid])
    stored = _stored_digests(workspace, redactor, valid) if skip_unchanged else {}
    todo = []
    for position, trace, digest in valid:
        if stored.get(position) == digest:
            results[position] = ItemResult(position, trace.external_id, "unchanged")
        else:
            todo.append((position, trace, digest))
    # Every string of what is to be written through the pre-check at once (most pass it).
    redactor = redactor.screened(without_step_maps([items[p] for p, _, _ in todo]))
    prepared = [prepare_trace(p, trace, redactor, digest=digest) for p, trace, digest in todo]
    trace_ids = _write(workspace, prepared, results)
    _after_commit_analyse(workspace.pk, trace_ids)
    return BatchResult(results=[r for r in results if r is not None], trace_ids=trace_ids)


def content_digest(item: Any, salt: bytes) -> str:
    """A digest of a trace as it was sent (and of the PII policy it is stored
    under, `salt`): the same trace sent again has the same one. Key order counts;
    a trace re-serialised in another order is written again, which is harmless."""
    try:
        data = orjson.dumps(item)
    except TypeError:  # an integer beyond 64 bits
        data = json.dumps(item, default=str).encode()
    # SHA-256 (cut to 128 bits): where the CPU has SHA instructions, as x86 servers of
    # the last years do, 2.7 times BLAKE2b's speed (21.5 against 57.5 µs for a 30 KB
    # tau2 run). It only tells a trace sent again from one that changed.
    return hashlib.sha256(data + b"\0" + salt).hexdigest()[:32]


def _adopt_former_ids(workspace: Workspace, redactor: Any, external_ids: list[str]) -> None:
    """Runs stored under the id an earlier version's redaction gave them
    (`Redactor.former_identifier`) take the one it gives now, with their pending
    outcomes: a run sent or imported again after an upgrade updates its row
    instead of adding a second."""
    pairs = []
    for sent in external_ids:
        former = redactor.former_identifier(clean_text(sent))
        if former is not None:
            pairs.append((former, redactor.identifier(clean_text(sent), Counter())))
    if not pairs:
        return
    olds, news = [list(column) for column in zip(*pairs, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE traces_outcome o SET external_id = p.new
            FROM unnest(%s::text[], %s::text[]) AS p(old, new)
            WHERE o.workspace_id = %s AND o.external_id = p.old
            """,
            [olds, news, workspace.pk],
        )
        # Not where a run of the new id was stored since: the two stay apart.
        cursor.execute(
            """
            UPDATE traces_trace t SET external_id = p.new
            FROM unnest(%s::text[], %s::text[]) AS p(old, new)
            WHERE t.workspace_id = %s AND t.external_id = p.old
              AND NOT EXISTS (SELECT 1 FROM traces_trace n
                              WHERE n.workspace_id = t.workspace_id AND n.external_id = p.new)
            """,
            [olds, news, workspace.pk],
        )


def _stored_digests(
    workspace: Workspace, redactor: Any, valid: list[tuple[int, TraceIn, str]]
) -> dict[int, str]:
    """Position in the batch -> the digest of what was last written for that trace."""
    if not valid:
        return {}
    stored_id = {
        position: redactor.identifier(clean_text(trace.external_id), Counter())
        for position, trace, _ in valid
    }
    # One array parameter, not an IN list the ORM builds: a quarter of the time.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id, content_digest FROM traces_trace WHERE workspace_id = %s"
            " AND external_id = ANY(%s) AND content_digest <> ''",
            [workspace.pk, list(stored_id.values())],
        )
        digests = dict(cursor.fetchall())
    return {p: digests[e] for p, e in stored_id.items() if e in digests}


def trace_batch_check(*, items: list[Any]) -> BatchResult:
    """What `trace_ingest_batch` would accept and reject, writing nothing: each
    trace is `valid` or `rejected` with the same reasons. Lets an importer send a
    file all or nothing (hivemind_client/importer.py)."""
    if len(items) > settings.HIVEMIND_MAX_TRACES_PER_BATCH:
        raise InvalidInput(
            f"Batch has {len(items)} traces; the limit is "
            f"{settings.HIVEMIND_MAX_TRACES_PER_BATCH}. Split it into smaller batches."
        )
    results: list[ItemResult] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        outcome = _validate_item(position, item, seen)
        if isinstance(outcome, ItemResult):
            results.append(outcome)
            continue
        seen.add(outcome.external_id)
        results.append(ItemResult(position, outcome.external_id, "valid", ""))
    return BatchResult(results=results, trace_ids=[])


def _after_commit_analyse(workspace_id: int, trace_ids: list[int]) -> None:
    """Queue the next stages for stored traces: failure analysis and rollups.

    By task name, since apps import downward only (traces never imports failures
    or metrics); after the commit, since the tasks load what this one wrote.
    """
    if not trace_ids:
        return
    ids = list(trace_ids)
    transaction.on_commit(lambda: enqueue("failures.tasks.analyse_traces", workspace_id, ids))
    transaction.on_commit(lambda: enqueue("metrics.tasks.refresh_rollups", ids))


def _validate_item(position: int, item: Any, seen: set[str]) -> TraceIn | ItemResult:
    external_id = item.get("external_id") if isinstance(item, dict) else None
    external_id = external_id if isinstance(external_id, str) else None
    where = f"traces[{position}]" + (f" (external_id {external_id!r})" if external_id else "")
    if not isinstance(item, dict):
        return ItemResult(position, None, "rejected", f"{where}: a trace must be a JSON object.")
    steps = item.get("steps")
    limit = settings.HIVEMIND_MAX_STEPS_PER_TRACE
    if isinstance(steps, list) and len(steps) > limit:
        return ItemResult(
            position, external_id, "rejected",
            f"{where}: {len(steps)} steps; the limit is {limit} per trace. "
            "Send long traces in parts with explicit step indexes.",
        )  # fmt: skip
    try:
        trace = TraceIn.model_validate(item)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return ItemResult(position, external_id, "rejected", f"{where}: {summary}", errors)
    indexes = [s.index if s.index is not None else i for i, s in enumerate(trace.steps)]
    if len(indexes) != len(set(indexes)):
        return ItemResult(position, external_id, "rejected", f"{where}: two steps share an index.")
    if trace.external_id in seen:
        return ItemResult(
            position, external_id, "rejected",
            f"{where}: this external_id appears earlier in the same batch.",
        )  # fmt: skip
    return trace


def _write(
    workspace: Workspace, prepared: list[PreparedTrace], results: list[ItemResult | None]
) -> list[int]:
    """Write all valid traces at once; if the database refuses the batch, write
    them one by one so that only the offending trace is rejected."""
    if not prepared:
        return []
    try:
        with transaction.atomic():
            ids = write_traces(workspace.pk, prepared)
        return _record(prepared, ids, results)
    except (DatabaseError, psycopg.Error):
        # psycopg raises its own errors from inside COPY, not Django's DatabaseError.
        logger.exception("bulk ingest failed; retrying trace by trace")
    trace_ids = []
    for trace in prepared:
        try:
            with transaction.atomic():
                ids = write_traces(workspace.pk, [trace])
            trace_ids += _record([trace], ids, results)
        except (DatabaseError, psycopg.Error) as exc:
            logger.warning("trace %s could not be stored: %s", trace.external_id, exc)
            results[trace.position] = ItemResult(
                trace.position, trace.external_id, "rejected",
                f"traces[{trace.position}]: the database refused this trace "
                f"({type(exc).__name__}); nothing of it was stored.",
            )  # fmt: skip
    return trace_ids


def _record(
    prepared: list[PreparedTrace],
    ids: dict[str, tuple[int, bool]],
    results: list[ItemResult | None],
) -> list[int]:
    for trace in prepared:
        created = ids[trace.external_id][1]
        results[trace.position] = ItemResult(
            trace.position, trace.external_id, "created" if created else "updated"
        )
    return [ids[t.external_id][0] for t in prepared]


@transaction.atomic
def outcome_record(*, workspace: Workspace, external_id: str, data: OutcomeIn) -> Outcome:
    """Store a verdict on a trace; apply it now if the trace exists, else on arrival."""
    if "\x00" in external_id:
        raise InvalidInput("external_id cannot contain NUL characters.")
    redactor = redactor_for_policy(capture_policy_get(workspace=workspace))
    counts: Counter[str] = Counter()
    # The same pseudonym the trace's own external_id got, so the two still meet.
    external_id = redactor.identifier(clean_text(external_id), counts)
    outcome = Outcome.objects.create(
        workspace=workspace,
        external_id=external_id,
        status=data.status or "",
        reward=data.reward,
        scores=[
            {
                "name": redactor.identifier(clean_text(s.name), counts),
                "value": s.value,
                "comment": redactor.text(s.comment, counts),
            }
            for s in data.scores
        ],
        checks=checks_redacted(data.checks, redactor, counts),
        comment=redactor.text(data.comment, counts),
    )
    trace = Trace.objects.filter(workspace=workspace, external_id=external_id).first()
    if trace is not None:
        with connection.cursor() as cursor:
            apply_pending_outcomes(cursor, workspace.pk, [external_id])
        outcome.refresh_from_db()
        _after_commit_analyse(workspace.pk, [trace.pk])
    return outcome


def stored_external_id(
    *, workspace: Workspace, external_id: str, policy: PiiPolicy | None = None
) -> str:
    """The external_id as ingest stores it (identifiers holding PII are pseudonymised),
    for code that looks a trace up by the id an agent sent."""
    if policy is None or policy.workspace_id != workspace.pk:
        policy, _ = PiiPolicy.objects.get_or_create(workspace=workspace)
    return redactor_for_policy(policy).identifier(clean_text(external_id), Counter())


def trace_get_for_outcome(*, workspace: Workspace, external_id: str) -> Trace:
    trace = Trace.objects.filter(workspace=workspace, external_id=external_id).first()
    if trace is None:
        raise NotFound(f"No trace {external_id!r} in this workspace.")
    return trace


def retention_cutoff(*, workspace_id: int) -> datetime:
    """Traces that reached the product before this are past the workspace's
    retention. It counts from arrival, not from the run's own start: importing
    last year's runs must not schedule them for deletion the next night."""
    days = (
        PiiPolicy.objects.filter(workspace_id=workspace_id)
        .values_list("retention_days", flat=True)
        .first()
    )
    return timezone.now() - timedelta(
        days=days or PiiPolicy._meta.get_field("retention_days").default
    )


def retention_preview(*, workspace_id: int, days: int | None = None) -> int:
    """How many traces the next daily purge would delete (with `days`: under that
    retention instead of the current one)."""
    cutoff = (
        timezone.now() - timedelta(days=days)
        if days is not None
        else retention_cutoff(workspace_id=workspace_id)
    )
    return Trace.objects.filter(workspace_id=workspace_id, received_at__lt=cutoff).count()


@transaction.atomic
def traces_purge_expired(*, workspace_id: int) -> int:
    """Delete traces past retention with their steps and outcomes, and (through the
    ORM's cascade, so traces needs no knowledge of them) what other apps keep about
    a trace: incidents with their vectors. Failure modes are refreshed after the
    commit. Rollups (daily, skill-cohort, per-mode) are kept: refreshes never
    rewrite days before the retention cutoff. The cascade deletes incidents: it
    waits for their writers (a re-cluster, the embedding) instead of deadlocking
    with one."""
    cutoff = retention_cutoff(workspace_id=workspace_id)
    expired = Trace.objects.filter(workspace_id=workspace_id, received_at__lt=cutoff)
    if not expired.exists():
        return 0
    workspace_xact_lock(INCIDENTS, workspace_id)
    _, deleted = expired.delete()
    purged = deleted.get(Trace._meta.label, 0)
    if purged:
        workspace = Workspace.objects.get(pk=workspace_id)
        audit_record(workspace=workspace, actor=None, action="retention.purge", obj=workspace,
                     after={"traces": purged, "before": cutoff.isoformat()})  # fmt: skip
        transaction.on_commit(lambda: enqueue("failures.tasks.refresh_modes", workspace_id))
    return purged


# A hook session (Claude Code, Codex, Cursor) is "running" from a prompt until its
# turn ends (Stop, SessionEnd). One that sent nothing for this long never will: its
# client was killed, or the logger lost its end. Its outcome is then unknown.
STALE_SESSION = timedelta(hours=24)

_SETTLE_SQL = """
UPDATE traces_trace SET status = 'unknown', updated_at = now(),
    metadata = metadata || jsonb_build_object('inferred_status', jsonb_build_object(
        'status', 'unknown', 'reason', %s))
WHERE status = 'running' AND metadata ? 'hook_session' AND updated_at < %s
"""


def traces_settle_stale_sessions(*, idle: timedelta = STALE_SESSION) -> int:
    """Hook sessions still "running" with no event for `idle`: unknown (the status
    this product set when their last prompt came; the agent never reported one).
    Traces an agent sends itself keep what it says. Returns how many changed."""
    hours = round(idle.total_seconds() / 3600)
    reason = (f"no event for {hours} hours and no end of its turn (Stop or SessionEnd): "
              "its end was never sent")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL, [reason, timezone.now() - idle])
        return cursor.rowcount


# A person's saved views per workspace: enough for every filter worth keeping.
SAVED_VIEWS_MAX = 50


def saved_view_save(*, workspace: Workspace, user: Any, name: str, query: str) -> SavedView:
    """Save the trace list's filters under a name (the same name replaces that view)."""
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("Give the view a name, so you can find it in the list.")
    if len(name) > 80:
        raise InvalidInput(f"The name is {len(name)} characters long; at most 80.")
    if not query:
        raise InvalidInput("Set at least one filter (or a search or sort) before saving a view.")
    if len(query) > 1000:
        raise InvalidInput("These filters are too long to save (at most 1,000 characters).")
    mine = SavedView.objects.filter(workspace=workspace, user=user)
    if not mine.filter(name=name).exists() and mine.count() >= SAVED_VIEWS_MAX:
        raise InvalidInput(
            f"You have {SAVED_VIEWS_MAX} saved views, the most there can be: delete one first."
        )
    view, _ = SavedView.objects.update_or_create(
        workspace=workspace, user=user, name=name, defaults={"query": query}
    )
    return view


def saved_view_delete(*, view: SavedView) -> None:
    view.delete()
