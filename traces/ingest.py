"""The bulk trace writer behind `trace_ingest_batch`.

A batch is validated and redacted in Python first, trace by trace, so a bad
trace is rejected before anything is written. The valid ones are then written
with set-based SQL: COPY into temporary tables, one INSERT … ON CONFLICT for
traces and one for steps (the upsert on external_id / step index is what makes
retries harmless), then aggregate and outcome updates. That keeps a batch at a
handful of round trips whatever its size. Finding incidents in the stored steps
is the failures app's job, queued after the commit.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from workspaces.redaction import Redactor
from workspaces.textsafety import clean_text

from .schemas import StepIn, TraceIn


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
    parent_index: int | None = None

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
    # What was redacted in each part: "trace" (its own fields) and each step
    # index. A trace sent in pieces (hook events, OTLP batches) replaces the
    # parts it re-sends, so the trace's counts are the sum over its parts,
    # never a piece's alone and never a re-sent piece twice.
    parts: dict[str, dict[str, int]] = field(default_factory=dict)


def prepare_trace(position: int, trace: TraceIn, redactor: Redactor) -> PreparedTrace:
    parts: dict[str, dict[str, int]] = {}
    steps = []
    for i, step in enumerate(trace.steps):
        step_counts: Counter[str] = Counter()
        prepared = _prepare_step(i, step, redactor, step_counts)
        steps.append(prepared)
        if step_counts:
            parts[str(prepared.index)] = dict(step_counts)
    counts: Counter[str] = Counter()
    # Identifiers keep their identity (a stable pseudonym per value); free text
    # gets typed placeholders.
    ident = redactor.identifier
    fields = {
        "agent": ident(clean_text(trace.agent), counts),
        "session_id": ident(clean_text(trace.session_id), counts),
        "task": redactor.text(trace.task, counts),
        "task_key": ident(clean_text(trace.task_key), counts),
        "checks": checks_redacted(trace.checks, redactor, counts),
        "status": trace.status or "",
        "reward": trace.reward,
        "started_at": trace.started_at,
        "ended_at": trace.ended_at,
        "model": ident(clean_text(trace.model), counts),
        "skills_in_scope": [ident(clean_text(s), counts) for s in trace.skills_in_scope],
        "metadata": redactor.value(trace.metadata, counts),
        "cost_usd": trace.cost_usd,
    }
    external_id = ident(clean_text(trace.external_id), counts)
    parts["trace"] = dict(counts)
    total = Counter(counts)
    for key, part in parts.items():
        if key != "trace":
            total.update(part)
    return PreparedTrace(position, external_id, fields, steps, total, parts)


def _prepare_step(
    position: int, step: StepIn, redactor: Redactor, counts: Counter[str]
) -> PreparedStep:
    return PreparedStep(
        index=step.index if step.index is not None else position,
        kind=step.kind,
        name=redactor.identifier(clean_text(step.name), counts),
        input=redactor.value(step.input, counts),
        output=redactor.value(step.output, counts),
        error=redactor.text(step.error, counts),
        started_at=step.started_at,
        duration_ms=step.duration_ms,
        tokens=step.tokens,
        parent_index=step.parent_index,
    )


def checks_redacted(checks: list[Any], redactor: Redactor, counts: Counter[str]) -> list[dict]:
    """Checks as stored: names are identifiers (a pseudonym where PII is), details text."""
    return [
        {"name": redactor.identifier(clean_text(c.name), counts), "passed": bool(c.passed),
         "detail": redactor.text(clean_text(c.detail), counts)}
        for c in checks
    ]  # fmt: skip


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


_TRACE_COLUMNS = (
    "external_id text, agent text, session_id text, task text, task_key text, checks jsonb, "
    "status text, reward float8, "
    "started_at timestamptz, ended_at timestamptz, model text, skills_in_scope text[], "
    "metadata jsonb, cost_usd float8, redaction_counts jsonb"
)
_STEP_COLUMNS = (
    "external_id text, index int, kind text, name text, input jsonb, output jsonb, error text, "
    "started_at timestamptz, duration_ms float8, tokens int, parent_index int"
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
        cursor.execute("DROP TABLE tmp_trace, tmp_step")
    return ids


def _copy_rows(cursor: Any, traces: list[PreparedTrace]) -> None:
    with cursor.copy("COPY tmp_trace FROM STDIN") as copy:
        for t in traces:
            f = t.fields
            copy.write_row(
                (
                    t.external_id, f["agent"], f["session_id"], f["task"], f["task_key"],
                    _dumps(f["checks"]), f["status"],
                    f["reward"], f["started_at"], f["ended_at"], f["model"],
                    f["skills_in_scope"], _dumps(f["metadata"]), f["cost_usd"],
                    _dumps(t.parts),
                )
            )  # fmt: skip
    with cursor.copy("COPY tmp_step FROM STDIN") as copy:
        for t in traces:
            for s in t.steps:
                copy.write_row(
                    (
                        t.external_id, s.index, s.kind, s.name, _dumps(s.input),
                        _dumps(s.output), s.error, s.started_at, s.duration_ms, s.tokens, s.parent_index,
                    )
                )  # fmt: skip


def _upsert_traces(cursor: Any, workspace_id: int) -> dict[str, tuple[int, bool]]:
    # Empty strings and NULLs in a re-sent trace keep what was stored: an agent
    # may send a trace in pieces (first the task, later the steps and status).
    cursor.execute(
        """
        INSERT INTO traces_trace (
            workspace_id, external_id, agent, session_id, task, task_key, checks, status, reward,
            started_at,
            ended_at, model, skills_in_scope, metadata, cost_usd, redaction_parts,
            redaction_counts, step_count, error_count, total_tokens, received_at, updated_at)
        SELECT %s, external_id, agent, session_id, task, task_key, checks, status, reward,
            COALESCE(started_at, ended_at, now()),
            ended_at, model, skills_in_scope, metadata, cost_usd, redaction_counts, '{}'::jsonb,
            0, 0, 0, now(), now()
        FROM tmp_trace
        ON CONFLICT (workspace_id, external_id) DO UPDATE SET
            agent = COALESCE(NULLIF(EXCLUDED.agent, ''), traces_trace.agent),
            session_id = COALESCE(NULLIF(EXCLUDED.session_id, ''), traces_trace.session_id),
            task = COALESCE(NULLIF(EXCLUDED.task, ''), traces_trace.task),
            task_key = COALESCE(NULLIF(EXCLUDED.task_key, ''), traces_trace.task_key),
            checks = CASE WHEN jsonb_array_length(EXCLUDED.checks) > 0
                THEN EXCLUDED.checks ELSE traces_trace.checks END,
            status = COALESCE(NULLIF(EXCLUDED.status, ''), traces_trace.status),
            reward = COALESCE(EXCLUDED.reward, traces_trace.reward),
            started_at = COALESCE(EXCLUDED.started_at, traces_trace.started_at),
            ended_at = COALESCE(EXCLUDED.ended_at, traces_trace.ended_at),
            model = COALESCE(NULLIF(EXCLUDED.model, ''), traces_trace.model),
            skills_in_scope = CASE WHEN cardinality(EXCLUDED.skills_in_scope) > 0
                THEN EXCLUDED.skills_in_scope ELSE traces_trace.skills_in_scope END,
            metadata = traces_trace.metadata || EXCLUDED.metadata,
            cost_usd = COALESCE(EXCLUDED.cost_usd, traces_trace.cost_usd),
            -- Step parts are replaced; the trace's own part keeps the larger
            -- count per kind (a later piece may not repeat the task).
            redaction_parts = traces_trace.redaction_parts || EXCLUDED.redaction_parts
                || jsonb_build_object('trace', (
                    SELECT COALESCE(jsonb_object_agg(k, m), '{}'::jsonb) FROM (
                        SELECT k, max(v::int) AS m FROM (
                            SELECT * FROM jsonb_each_text(
                                COALESCE(traces_trace.redaction_parts -> 'trace', '{}'::jsonb))
                            UNION ALL
                            SELECT * FROM jsonb_each_text(
                                COALESCE(EXCLUDED.redaction_parts -> 'trace', '{}'::jsonb))
                        ) AS u(k, v) GROUP BY k) AS x)),
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
                                 started_at, duration_ms, tokens, parent_index)
        SELECT t.id, s.index, s.kind, s.name, s.input, s.output, s.error,
               s.started_at, s.duration_ms, s.tokens, s.parent_index
        FROM tmp_step s
        JOIN traces_trace t ON t.workspace_id = %s AND t.external_id = s.external_id
        ON CONFLICT (trace_id, index) DO UPDATE SET
            kind = EXCLUDED.kind, name = EXCLUDED.name, input = EXCLUDED.input,
            output = EXCLUDED.output, error = EXCLUDED.error, started_at = EXCLUDED.started_at,
            duration_ms = EXCLUDED.duration_ms, tokens = EXCLUDED.tokens,
            parent_index = COALESCE(EXCLUDED.parent_index, traces_step.parent_index)
        """,
        [workspace_id],
    )


def refresh_aggregates(trace_ids: list[int]) -> None:
    """Recount steps, errors, tokens and redactions of these traces."""
    with connection.cursor() as cursor:
        _refresh_aggregates(cursor, trace_ids)


def _refresh_aggregates(cursor: Any, trace_ids: list[int]) -> None:
    cursor.execute(
        """
        UPDATE traces_trace t SET
            status = CASE WHEN t.status = '' THEN 'unknown' ELSE t.status END,
            step_count = COALESCE(a.n, 0),
            error_count = COALESCE(a.errors, 0),
            total_tokens = COALESCE(a.tokens, 0),
            redaction_counts = (
                SELECT COALESCE(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
                    SELECT e.k, sum(e.v::int) AS n
                    FROM jsonb_each(t.redaction_parts) AS p(part, c),
                         jsonb_each_text(CASE WHEN jsonb_typeof(p.c) = 'object'
                                              THEN p.c ELSE '{}'::jsonb END) AS e(k, v)
                    WHERE e.v::int > 0
                    GROUP BY e.k) AS x)
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
            SELECT DISTINCT ON (external_id) external_id, status, reward, checks
            FROM traces_outcome
            WHERE workspace_id = %s AND external_id = ANY(%s)
            ORDER BY external_id, received_at DESC, id DESC
        )
        UPDATE traces_trace t SET
            status = COALESCE(NULLIF(latest.status, ''), t.status),
            reward = COALESCE(latest.reward, t.reward),
            checks = CASE WHEN jsonb_array_length(latest.checks) > 0
                THEN latest.checks ELSE t.checks END,
            updated_at = now()
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
