"""The bulk trace writer behind `trace_ingest_batch`.

A batch is validated and redacted in Python first, trace by trace, so a bad
trace is rejected before anything is written. The valid ones are then written
with set-based SQL: COPY into temporary tables, one INSERT … ON CONFLICT for
traces and one for steps (the upsert on external_id / step index is what makes
retries harmless), aggregate and outcome updates, then incidents. That keeps a
batch at a handful of round trips whatever its size.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from workspaces.redaction import Redactor

from .models import TRACE_LEVEL_INDEX, IncidentKind
from .schemas import StepIn, TraceIn
from .signatures import step_signature, trace_failure_signature


@dataclass
class PreparedStep:
    index: int
    kind: str
    name: str
    input: Any
    output: Any
    error: str
    started_at: datetime | None
    duration_ms: float | None
    tokens: int | None

    @property
    def is_error(self) -> bool:
        return bool(self.error) or self.kind == "error"


@dataclass
class PreparedTrace:
    """A validated, redacted trace, ready to write."""

    position: int
    external_id: str
    fields: dict[str, Any]
    steps: list[PreparedStep]
    redactions: Counter[str] = field(default_factory=Counter)


def prepare_trace(position: int, trace: TraceIn, redactor: Redactor) -> PreparedTrace:
    counts: Counter[str] = Counter()
    steps = [_prepare_step(i, step, redactor, counts) for i, step in enumerate(trace.steps)]
    fields = {
        "agent": trace.agent,
        "session_id": trace.session_id,
        "task": redactor.text(trace.task, counts),
        "status": trace.status or "",
        "reward": trace.reward,
        "started_at": trace.started_at,
        "ended_at": trace.ended_at,
        "model": trace.model,
        "skills_in_scope": trace.skills_in_scope,
        "metadata": redactor.value(trace.metadata, counts),
        "cost_usd": trace.cost_usd,
    }
    return PreparedTrace(position, trace.external_id, fields, steps, counts)


def _prepare_step(
    position: int, step: StepIn, redactor: Redactor, counts: Counter[str]
) -> PreparedStep:
    return PreparedStep(
        index=step.index if step.index is not None else position,
        kind=step.kind,
        name=step.name,
        input=redactor.value(step.input, counts),
        output=redactor.value(step.output, counts),
        error=redactor.text(step.error, counts),
        started_at=step.started_at,
        duration_ms=step.duration_ms,
        tokens=step.tokens,
    )


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


_TRACE_COLUMNS = (
    "external_id text, agent text, session_id text, task text, status text, reward float8, "
    "started_at timestamptz, ended_at timestamptz, model text, skills_in_scope text[], "
    "metadata jsonb, cost_usd float8, redaction_counts jsonb"
)
_STEP_COLUMNS = (
    "external_id text, index int, kind text, name text, input jsonb, output jsonb, error text, "
    "started_at timestamptz, duration_ms float8, tokens int"
)


def write_traces(workspace_id: int, traces: list[PreparedTrace]) -> dict[str, tuple[int, bool]]:
    """Write prepared traces; return external_id -> (trace id, created?).

    Must run inside a transaction (the temporary tables drop on commit).
    """
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE tmp_trace ({_TRACE_COLUMNS}) ON COMMIT DROP")
        cursor.execute(f"CREATE TEMP TABLE tmp_step ({_STEP_COLUMNS}) ON COMMIT DROP")
        _copy_rows(cursor, traces)
        ids = _upsert_traces(cursor, workspace_id)
        trace_ids = [trace_id for trace_id, _ in ids.values()]
        _upsert_steps(cursor, workspace_id)
        _refresh_aggregates(cursor, trace_ids)
        apply_pending_outcomes(cursor, workspace_id, list(ids))
        _sync_incidents(cursor, workspace_id, traces, ids)
        cursor.execute("DROP TABLE tmp_trace, tmp_step")
    return ids


def _copy_rows(cursor: Any, traces: list[PreparedTrace]) -> None:
    with cursor.copy("COPY tmp_trace FROM STDIN") as copy:
        for t in traces:
            f = t.fields
            copy.write_row(
                (
                    t.external_id, f["agent"], f["session_id"], f["task"], f["status"],
                    f["reward"], f["started_at"], f["ended_at"], f["model"],
                    f["skills_in_scope"], _dumps(f["metadata"]), f["cost_usd"],
                    _dumps(dict(t.redactions)),
                )
            )  # fmt: skip
    with cursor.copy("COPY tmp_step FROM STDIN") as copy:
        for t in traces:
            for s in t.steps:
                copy.write_row(
                    (
                        t.external_id, s.index, s.kind, s.name, _dumps(s.input),
                        _dumps(s.output), s.error, s.started_at, s.duration_ms, s.tokens,
                    )
                )  # fmt: skip


def _upsert_traces(cursor: Any, workspace_id: int) -> dict[str, tuple[int, bool]]:
    # Empty strings and NULLs in a re-sent trace keep what was stored: an agent
    # may send a trace in pieces (first the task, later the steps and status).
    cursor.execute(
        """
        INSERT INTO traces_trace (
            workspace_id, external_id, agent, session_id, task, status, reward, started_at,
            ended_at, model, skills_in_scope, metadata, cost_usd, redaction_counts,
            step_count, error_count, total_tokens, received_at, updated_at)
        SELECT %s, external_id, agent, session_id, task, status, reward,
            COALESCE(started_at, ended_at, now()),
            ended_at, model, skills_in_scope, metadata, cost_usd, redaction_counts,
            0, 0, 0, now(), now()
        FROM tmp_trace
        ON CONFLICT (workspace_id, external_id) DO UPDATE SET
            agent = COALESCE(NULLIF(EXCLUDED.agent, ''), traces_trace.agent),
            session_id = COALESCE(NULLIF(EXCLUDED.session_id, ''), traces_trace.session_id),
            task = COALESCE(NULLIF(EXCLUDED.task, ''), traces_trace.task),
            status = COALESCE(NULLIF(EXCLUDED.status, ''), traces_trace.status),
            reward = COALESCE(EXCLUDED.reward, traces_trace.reward),
            started_at = COALESCE(EXCLUDED.started_at, traces_trace.started_at),
            ended_at = COALESCE(EXCLUDED.ended_at, traces_trace.ended_at),
            model = COALESCE(NULLIF(EXCLUDED.model, ''), traces_trace.model),
            skills_in_scope = CASE WHEN cardinality(EXCLUDED.skills_in_scope) > 0
                THEN EXCLUDED.skills_in_scope ELSE traces_trace.skills_in_scope END,
            metadata = traces_trace.metadata || EXCLUDED.metadata,
            cost_usd = COALESCE(EXCLUDED.cost_usd, traces_trace.cost_usd),
            redaction_counts = EXCLUDED.redaction_counts,
            updated_at = now()
        RETURNING id, external_id, (xmax = 0)
        """,
        [workspace_id],
    )
    return {
        external_id: (trace_id, created) for trace_id, external_id, created in cursor.fetchall()
    }


def _upsert_steps(cursor: Any, workspace_id: int) -> None:
    cursor.execute(
        """
        INSERT INTO traces_step (trace_id, index, kind, name, input, output, error,
                                 started_at, duration_ms, tokens)
        SELECT t.id, s.index, s.kind, s.name, s.input, s.output, s.error,
               s.started_at, s.duration_ms, s.tokens
        FROM tmp_step s
        JOIN traces_trace t ON t.workspace_id = %s AND t.external_id = s.external_id
        ON CONFLICT (trace_id, index) DO UPDATE SET
            kind = EXCLUDED.kind, name = EXCLUDED.name, input = EXCLUDED.input,
            output = EXCLUDED.output, error = EXCLUDED.error, started_at = EXCLUDED.started_at,
            duration_ms = EXCLUDED.duration_ms, tokens = EXCLUDED.tokens
        """,
        [workspace_id],
    )


def _refresh_aggregates(cursor: Any, trace_ids: list[int]) -> None:
    cursor.execute(
        """
        UPDATE traces_trace t SET
            status = CASE WHEN t.status = '' THEN 'unknown' ELSE t.status END,
            step_count = COALESCE(a.n, 0),
            error_count = COALESCE(a.errors, 0),
            total_tokens = COALESCE(a.tokens, 0)
        FROM (SELECT id FROM unnest(%s::bigint[]) AS id) ids
        LEFT JOIN (
            SELECT trace_id, count(*) AS n,
                   count(*) FILTER (WHERE error <> '' OR kind = 'error') AS errors,
                   sum(tokens) AS tokens
            FROM traces_step WHERE trace_id = ANY(%s::bigint[]) GROUP BY trace_id
        ) a ON a.trace_id = ids.id
        WHERE t.id = ids.id
        """,
        [trace_ids, trace_ids],
    )


def apply_pending_outcomes(cursor: Any, workspace_id: int, external_ids: list[str]) -> None:
    """Let the latest outcome of each trace decide its status and reward."""
    cursor.execute(
        """
        WITH latest AS (
            SELECT DISTINCT ON (external_id) external_id, status, reward
            FROM traces_outcome
            WHERE workspace_id = %s AND external_id = ANY(%s)
            ORDER BY external_id, received_at DESC, id DESC
        )
        UPDATE traces_trace t SET
            status = COALESCE(NULLIF(latest.status, ''), t.status),
            reward = COALESCE(latest.reward, t.reward)
        FROM latest
        WHERE t.workspace_id = %s AND t.external_id = latest.external_id
        """,
        [workspace_id, external_ids, workspace_id],
    )
    cursor.execute(
        """
        UPDATE traces_outcome o SET trace_id = t.id, applied_at = now()
        FROM traces_trace t
        WHERE o.workspace_id = %s AND o.external_id = ANY(%s) AND o.trace_id IS NULL
          AND t.workspace_id = o.workspace_id AND t.external_id = o.external_id
        """,
        [workspace_id, external_ids],
    )


def _sync_incidents(
    cursor: Any,
    workspace_id: int,
    traces: list[PreparedTrace],
    ids: dict[str, tuple[int, bool]],
) -> None:
    now = timezone.now()
    rows, cleared = [], []
    for t in traces:
        trace_id = ids[t.external_id][0]
        for s in t.steps:
            if not s.is_error:
                cleared.append((trace_id, s.index))
                continue
            signature = step_signature(
                tool=s.name,
                error=s.error or "error step",
                step_input=s.input,
                task=t.fields["task"],
            )
            occurred = s.started_at or t.fields["ended_at"] or t.fields["started_at"] or now
            rows.append(
                (workspace_id, trace_id, s.index, IncidentKind.STEP_ERROR, s.name,
                 s.error or _text_of(s.output), signature, occurred)
            )  # fmt: skip
    upsert_incidents(cursor, rows)
    if cleared:
        # A re-sent step that no longer carries an error is no longer an incident.
        cursor.execute(
            """
            DELETE FROM traces_incident i USING unnest(%s::bigint[], %s::int[]) AS c(trace_id, idx)
            WHERE i.trace_id = c.trace_id AND i.step_index = c.idx
            """,
            [[c[0] for c in cleared], [c[1] for c in cleared]],
        )
    sync_trace_level_incidents(cursor, workspace_id, [ids[t.external_id][0] for t in traces])


def upsert_incidents(cursor: Any, rows: list[tuple]) -> None:
    """Insert or refresh incidents; a changed signature drops the stale embedding."""
    if not rows:
        return
    cursor.executemany(
        """
        INSERT INTO traces_incident (workspace_id, trace_id, step_index, kind, tool, error_text,
                                     signature, occurred_at, created_at, assigned_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), '')
        ON CONFLICT (trace_id, step_index) DO UPDATE SET
            kind = EXCLUDED.kind, tool = EXCLUDED.tool, error_text = EXCLUDED.error_text,
            occurred_at = EXCLUDED.occurred_at,
            embedding = CASE WHEN traces_incident.signature = EXCLUDED.signature
                             THEN traces_incident.embedding END,
            embedded_at = CASE WHEN traces_incident.signature = EXCLUDED.signature
                               THEN traces_incident.embedded_at END,
            signature = EXCLUDED.signature
        """,
        rows,
    )


def sync_trace_level_incidents(cursor: Any, workspace_id: int, trace_ids: list[int]) -> None:
    """A failed trace with no failing step gets one incident for the whole trace;
    any other trace has none."""
    cursor.execute(
        """
        DELETE FROM traces_incident i USING traces_trace t
        WHERE i.trace_id = t.id AND t.id = ANY(%s) AND i.step_index = %s
          AND (t.status <> 'failed' OR EXISTS (
                SELECT 1 FROM traces_incident j WHERE j.trace_id = t.id AND j.step_index >= 0))
        """,
        [trace_ids, TRACE_LEVEL_INDEX],
    )
    cursor.execute(
        """
        SELECT t.id, t.task, COALESCE(t.ended_at, t.started_at),
            (SELECT s.output #>> '{}' FROM traces_step s WHERE s.trace_id = t.id
             ORDER BY s.index DESC LIMIT 1),
            (SELECT o.comment FROM traces_outcome o WHERE o.trace_id = t.id
             ORDER BY o.received_at DESC, o.id DESC LIMIT 1)
        FROM traces_trace t
        WHERE t.id = ANY(%s) AND t.status = 'failed'
          AND NOT EXISTS (SELECT 1 FROM traces_incident j WHERE j.trace_id = t.id AND j.step_index >= 0)
        """,
        [trace_ids],
    )
    rows = []
    for trace_id, task, occurred, last_output, comment in cursor.fetchall():
        last = _text_of(last_output)
        signature = trace_failure_signature(task=task, last_output=last, comment=comment or "")
        rows.append(
            (workspace_id, trace_id, TRACE_LEVEL_INDEX, IncidentKind.TRACE_FAILURE, "",
             comment or last, signature, occurred)
        )  # fmt: skip
    upsert_incidents(cursor, rows)


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:2000]
    return json.dumps(value, ensure_ascii=False)[:2000]
