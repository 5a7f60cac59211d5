"""Incident mining: the failures found in stored traces (a service).

Runs after ingest commits (`failures.tasks.analyse_traces`), over the steps the
traces app stored. Two kinds of incident for now:

- a step that carries an error (or is an error step) is a `step_error`;
- a failed trace with no failing step gets one `trace_failure` incident for the
  whole trace, so every failure can be clustered;

Re-mining the same traces changes nothing (upsert on trace × step index); a step
that no longer carries an error, or a trace that is no longer failed, loses its
incident.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from traces.models import Step, StepKind, Trace, TraceStatus

from .models import TRACE_LEVEL_INDEX, Incident, IncidentKind, TraceAnalysis
from .signatures import step_signature, trace_failure_signature

TABLE = Incident._meta.db_table


@transaction.atomic
def incidents_mine(*, workspace_id: int, trace_ids: list[int]) -> int:
    """Create, refresh or drop the incidents of these traces; return how many exist now."""
    trace_ids = list(
        Trace.objects.filter(workspace_id=workspace_id, pk__in=trace_ids).values_list(
            "pk", flat=True
        )
    )
    if not trace_ids:
        return 0
    rows = _step_error_rows(workspace_id, trace_ids)
    with connection.cursor() as cursor:
        _upsert(cursor, rows)
        _drop_stale_step_incidents(trace_ids, {(r[1], r[2]) for r in rows})
        _sync_trace_level(cursor, workspace_id, trace_ids)
        _mark_analysed(cursor, trace_ids)
    return Incident.objects.filter(trace_id__in=trace_ids).count()


def traces_due_for_analysis(*, limit: int = 2000) -> dict[int, list[int]]:
    """Traces never analysed, or changed since: workspace id -> trace ids (the sweep)."""
    rows = (
        Trace.objects.filter(
            Q(analysis__isnull=True) | Q(updated_at__gt=F("analysis__trace_updated_at"))
        )
        .order_by("updated_at")
        .values_list("workspace_id", "pk")[:limit]
    )
    due: dict[int, list[int]] = {}
    for workspace_id, trace_id in rows:
        due.setdefault(workspace_id, []).append(trace_id)
    return due


def _mark_analysed(cursor: Any, trace_ids: list[int]) -> None:
    cursor.execute(
        f"""
        INSERT INTO {TraceAnalysis._meta.db_table} (trace_id, workspace_id, trace_updated_at,
                                                   analysed_at)
        SELECT id, workspace_id, updated_at, now() FROM {Trace._meta.db_table}
        WHERE id = ANY(%s)
        ON CONFLICT (trace_id) DO UPDATE SET
            trace_updated_at = EXCLUDED.trace_updated_at, analysed_at = EXCLUDED.analysed_at
        """,
        [trace_ids],
    )


def _step_error_rows(workspace_id: int, trace_ids: list[int]) -> list[tuple]:
    steps = (
        Step.objects.filter(trace_id__in=trace_ids)
        .filter(~Q(error="") | Q(kind=StepKind.ERROR))
        .values_list(
            "trace_id", "index", "name", "error", "input", "output", "started_at",
            "trace__task", "trace__ended_at", "trace__started_at",
        )
    )  # fmt: skip
    now = timezone.now()
    rows = []
    for trace_id, index, name, error, step_input, output, started, task, ended, begun in steps:
        signature = step_signature(
            tool=name, error=error or "error step", step_input=step_input, task=task
        )
        rows.append(
            (workspace_id, trace_id, index, IncidentKind.STEP_ERROR, name,
             error or _text_of(output), signature, started or ended or begun or now)
        )  # fmt: skip
    return rows


def _upsert(cursor: Any, rows: list[tuple]) -> None:
    """Insert or refresh incidents; a changed signature drops the stale embedding."""
    if not rows:
        return
    cursor.executemany(
        f"""
        INSERT INTO {TABLE} (workspace_id, trace_id, step_index, kind, tool, error_text,
                             signature, occurred_at, created_at, assigned_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), '')
        ON CONFLICT (trace_id, step_index) DO UPDATE SET
            kind = EXCLUDED.kind, tool = EXCLUDED.tool, error_text = EXCLUDED.error_text,
            occurred_at = EXCLUDED.occurred_at,
            embedding = CASE WHEN {TABLE}.signature = EXCLUDED.signature
                             THEN {TABLE}.embedding END,
            embedded_at = CASE WHEN {TABLE}.signature = EXCLUDED.signature
                               THEN {TABLE}.embedded_at END,
            signature = EXCLUDED.signature
        """,
        rows,
    )


def _drop_stale_step_incidents(trace_ids: list[int], live: set[tuple]) -> None:
    # A re-sent step that no longer carries an error is no longer an incident.
    stale = Incident.objects.filter(trace_id__in=trace_ids, kind=IncidentKind.STEP_ERROR)
    _delete(
        [i for i, t, s in stale.values_list("pk", "trace_id", "step_index") if (t, s) not in live]
    )


def _sync_trace_level(cursor: Any, workspace_id: int, trace_ids: list[int]) -> None:
    """A failed trace with no failing step gets one incident for the whole trace;
    any other trace has none."""
    trace_table, step_table = Trace._meta.db_table, Step._meta.db_table
    cursor.execute(
        f"""
        SELECT i.id FROM {TABLE} i JOIN {trace_table} t ON t.id = i.trace_id
        WHERE t.id = ANY(%s) AND i.step_index = %s
          AND (t.status <> %s OR EXISTS (
                SELECT 1 FROM {TABLE} j WHERE j.trace_id = t.id AND j.step_index >= 0))
        """,
        [trace_ids, TRACE_LEVEL_INDEX, TraceStatus.FAILED],
    )
    _delete([row[0] for row in cursor.fetchall()])
    cursor.execute(
        f"""
        SELECT t.id, t.task, COALESCE(t.ended_at, t.started_at),
            (SELECT s.output #>> '{{}}' FROM {step_table} s WHERE s.trace_id = t.id
             ORDER BY s.index DESC LIMIT 1),
            (SELECT o.comment FROM traces_outcome o WHERE o.trace_id = t.id
             ORDER BY o.received_at DESC, o.id DESC LIMIT 1)
        FROM {trace_table} t
        WHERE t.id = ANY(%s) AND t.status = %s
          AND NOT EXISTS (SELECT 1 FROM {TABLE} j WHERE j.trace_id = t.id AND j.step_index >= 0)
        """,
        [trace_ids, TraceStatus.FAILED],
    )
    rows = []
    for trace_id, task, occurred, last_output, comment in cursor.fetchall():
        last = _text_of(last_output)
        signature = trace_failure_signature(task=task, last_output=last, comment=comment or "")
        rows.append(
            (workspace_id, trace_id, TRACE_LEVEL_INDEX, IncidentKind.TRACE_FAILURE, "",
             comment or last, signature, occurred)
        )  # fmt: skip
    _upsert(cursor, rows)


def _delete(incident_ids: list[int]) -> None:
    # Through the ORM: skill versions cite incidents as evidence, and those links go too.
    if incident_ids:
        Incident.objects.filter(pk__in=incident_ids).delete()


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:2000]
    return json.dumps(value, ensure_ascii=False)[:2000]
