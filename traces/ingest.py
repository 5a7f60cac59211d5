"""The bulk trace writer behind `trace_ingest_batch`.

A batch is validated and redacted in Python first, trace by trace, so a bad
trace is rejected before anything is written. The valid ones are then written
with set-based SQL in a handful of round trips whatever the batch's size: one
lookup finds the traces stored already; one UPDATE merges those and one INSERT
adds the others with their counts, each reading its traces as one JSON
parameter (a trace's record reaches one of them); the new traces' steps COPY straight
into the step table, and then the new traces' words (trace search) are built in one
statement, a row each, where the insert triggers would write each row twice; the
re-sent traces' steps are upserted by index (what makes retries harmless), their
traces' counts changed by the difference; then pending outcomes apply. Finding
incidents in the stored steps is the failures app's job, queued after the
commit.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection

from workspaces.redaction import Redactor
from workspaces.textsafety import clean_text, json_text

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
    # What was sent, as `services.content_digest` sums it up: the same trace sent
    # again is recognised and left alone.
    digest: str = ""


def prepare_trace(
    position: int, trace: TraceIn, redactor: Redactor, *, digest: str = ""
) -> PreparedTrace:
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
        "metadata": _metadata_redacted(trace.metadata, redactor, counts),
        "cost_usd": trace.cost_usd,
    }
    external_id = ident(clean_text(trace.external_id), counts)
    parts["trace"] = dict(counts)
    total = Counter(counts)
    for key, part in parts.items():
        if key != "trace":
            total.update(part)
    return PreparedTrace(position, external_id, fields, steps, total, parts, digest)


# Maps the server keeps in a trace's metadata: step numbers by keys it made itself
# (otlp_store's `otlp_spans`: span ids in hex; hook sessions' keys have a table of
# their own, `StepKey`). Redacting them finds nothing personal and can only corrupt
# them: a hex key with 13 digits in a row that pass Luhn reads as a card number
# (about 1 key in 2,000), and the step it numbered is then lost. They grow with a
# trace, and redacting all of them on every export made each slower than the one
# before. Kept as they are only when every key has that shape and every value is a
# step number, so nothing else passes unredacted under these names.
_STEP_MAPS = {
    "otlp_spans": re.compile(r"[0-9a-f]{1,64}|i[0-9]{1,20}"),
}


def _metadata_redacted(metadata: Any, redactor: Redactor, counts: Counter[str]) -> Any:
    if not isinstance(metadata, dict) or not any(name in metadata for name in _STEP_MAPS):
        return redactor.value(metadata, counts)
    kept = {
        name: metadata[name]
        for name, key in _STEP_MAPS.items()
        if isinstance(metadata.get(name), dict)
        and all(key.fullmatch(k) and type(v) is int for k, v in metadata[name].items())
    }
    rest = redactor.value({k: v for k, v in metadata.items() if k not in kept}, counts)
    return {**rest, **kept}


def without_step_maps(items: list[Any]) -> list[Any]:
    """The batch without the server's step maps, for the redactor's pre-check: their
    keys are not redacted when they have the maps' shape, and any other string is
    checked on its own."""
    out = []
    for item in items:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if isinstance(metadata, dict) and any(name in metadata for name in _STEP_MAPS):
            metadata = {k: v for k, v in metadata.items() if k not in _STEP_MAPS}
            item = {**item, "metadata": metadata}
        out.append(item)
    return out


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
    return None if value is None else json_text(value)


# The batch's traces, and the steps of those sent again, reach the statements that
# merge them as one JSON parameter read by jsonb_to_recordset: a statement or two
# whatever the batch's size, and no temporary table, whose creation and drop cost
# more than the rest of a one-step batch (a hook event) and churn the catalog.
_TRACE_RECORDS = (
    "jsonb_to_recordset(%s::jsonb) AS n(external_id text, agent text, session_id text, "
    "task text, task_key text, checks jsonb, status text, reward float8, "
    "started_at timestamptz, ended_at timestamptz, model text, skills_in_scope text[], "
    "metadata jsonb, cost_usd float8, redaction_parts jsonb, redaction_counts jsonb, "
    "step_count int, error_count int, span_count int, span_error_count int,"
    " total_tokens bigint, content_digest text)"
)
_STEP_RECORDS = (
    "jsonb_to_recordset(%s::jsonb) AS s(external_id text, index int, kind text, name text, "
    "input jsonb, output jsonb, error text, started_at timestamptz, duration_ms float8, "
    "tokens int, parent_index int)"
)
_STEP_FIELDS = (
    "index, kind, name, input, output, error, started_at, duration_ms, tokens, parent_index"
)


def write_traces(workspace_id: int, traces: list[PreparedTrace]) -> dict[str, tuple[int, bool]]:
    """Write prepared traces; return external_id -> (trace id, created?).

    A trace sent again is merged into the stored one and its steps are upserted
    by index; its counts change by what the upsert added and replaced. A trace
    new to the workspace is inserted with the counts of its batch, and its steps
    are copied straight into the step table: nothing of it can be there yet (the
    common case, and most of a batch's rows). Must run inside a transaction.
    """
    with connection.cursor() as cursor:
        # Which traces are stored already (a hook event's, a retry's), so that each
        # trace's record reaches one statement: the merge or the insert. A trace's
        # record can be large (a run's policy or system prompt in its metadata), and
        # reading the batch's records in both statements was a tenth of PostgreSQL's
        # time on a batch of tau2 runs.
        cursor.execute(
            "SELECT external_id FROM traces_trace WHERE workspace_id = %s AND external_id = ANY(%s)",
            [workspace_id, [t.external_id for t in traces]],
        )
        stored = {row[0] for row in cursor.fetchall()}
        ids: dict[str, tuple[int, bool]] = {}
        if stored:
            ids = _merge_stored_traces(
                cursor, workspace_id, _trace_records([t for t in traces if t.external_id in stored])
            )
        words_deferred = len(ids) < len(traces)
        if words_deferred:
            records = _trace_records([t for t in traces if t.external_id not in ids])
            # The new runs' words are built once, after their steps (below), not by
            # the insert triggers on each statement (migration 0021).
            _words_by_writer(cursor, True)
            ids.update(_insert_new_traces(cursor, workspace_id, records))
        missing = [t for t in traces if t.external_id not in ids]
        if missing:  # inserted by another request since the lookup
            ids.update(_merge_stored_traces(cursor, workspace_id, _trace_records(missing)))
        if len(ids) < len(traces):
            raise DatabaseError("a trace was deleted while this batch was being written")
        new = [t for t in traces if ids[t.external_id][1]]
        sent_again = [t for t in traces if not ids[t.external_id][1]]
        if new:
            _copy_new_steps(cursor, new, ids)
        if words_deferred:
            _words_of_new_runs(cursor, [ids[t.external_id][0] for t in new])
        if sent_again:
            _upsert_steps(cursor, workspace_id, sent_again, ids)
        apply_pending_outcomes(cursor, workspace_id, list(ids))
    return ids


def _words_by_writer(cursor: Any, on: bool) -> None:
    """Whether this transaction's next inserts of runs and steps leave the runs'
    words to this writer (`hivemind.words_by_writer`, read by the insert triggers
    of migration 0021). Only around the inserts of new runs and their steps, whose
    words `write_traces` then builds in one statement; every other statement is
    kept by the triggers. Transaction-scoped: a rollback undoes it."""
    cursor.execute(
        "SELECT set_config('hivemind.words_by_writer', %s, true)", ["on" if on else "off"]
    )


def _words_of_new_runs(cursor: Any, trace_ids: list[int]) -> None:
    """The triggers back on, and the words of these new runs (their task and ids,
    and every step's) built in one statement, one row each."""
    _words_by_writer(cursor, False)
    cursor.execute("SELECT traces_words_refresh(%s)", [trace_ids])


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _run_tokens(steps: list[PreparedStep]) -> int:
    """A run's tokens: its steps', a framework step's left out, since the usage it
    reports (an agent run's, smolagents' and Strands' alike) is the sum of the
    model calls inside it, counted on them already."""
    return sum(s.tokens for s in steps if s.tokens is not None and s.kind != "span")


def _trace_records(traces: list[PreparedTrace]) -> str:
    return json_text([
        {
            "external_id": t.external_id, "agent": t.fields["agent"],
            "session_id": t.fields["session_id"], "task": t.fields["task"],
            "task_key": t.fields["task_key"], "checks": t.fields["checks"],
            "status": t.fields["status"], "reward": t.fields["reward"],
            "started_at": _time(t.fields["started_at"]), "ended_at": _time(t.fields["ended_at"]),
            "model": t.fields["model"], "skills_in_scope": t.fields["skills_in_scope"],
            "metadata": t.fields["metadata"], "cost_usd": t.fields["cost_usd"],
            "redaction_parts": t.parts,
            "redaction_counts": {k: n for k, n in t.redactions.items() if n > 0},
            "step_count": len(t.steps), "error_count": sum(1 for s in t.steps if s.is_error),
            "span_count": sum(1 for s in t.steps if s.kind == "span"),
            "span_error_count": sum(1 for s in t.steps if s.kind == "span" and s.is_error),
            "total_tokens": _run_tokens(t.steps),
            "content_digest": t.digest,
        }
        for t in traces
    ])  # fmt: skip


def _step_records(traces: list[PreparedTrace]) -> str:
    return json_text([
        {
            "external_id": t.external_id, "index": s.index, "kind": s.kind, "name": s.name,
            "input": s.input, "output": s.output, "error": s.error,
            "started_at": _time(s.started_at), "duration_ms": s.duration_ms,
            "tokens": s.tokens, "parent_index": s.parent_index,
        }
        for t in traces for s in t.steps
    ])  # fmt: skip


def _step_row(s: PreparedStep) -> tuple[Any, ...]:
    return (
        s.index, s.kind, s.name, _dumps(s.input), _dumps(s.output), s.error,
        s.started_at, s.duration_ms, s.tokens, s.parent_index,
    )  # fmt: skip


def _copy_new_steps(
    cursor: Any, traces: list[PreparedTrace], ids: dict[str, tuple[int, bool]]
) -> None:
    with cursor.copy(f"COPY traces_step (trace_id, {_STEP_FIELDS}) FROM STDIN") as copy:
        for t in traces:
            trace_id = ids[t.external_id][0]
            for s in t.steps:
                copy.write_row((trace_id, *_step_row(s)))


def _insert_new_traces(cursor: Any, workspace_id: int, records: str) -> dict[str, tuple[int, bool]]:
    """Insert the traces not stored yet, with their batch's counts."""
    cursor.execute(
        f"""
        INSERT INTO traces_trace (
            workspace_id, external_id, agent, session_id, task, task_key, checks, status, reward,
            started_at, ended_at, model, skills_in_scope, metadata, cost_usd, redaction_parts,
            redaction_counts, step_count, error_count, span_count, span_error_count,
            total_tokens, content_digest, received_at, updated_at)
        SELECT %s, external_id, agent, session_id, task, task_key, checks,
            CASE WHEN status = '' THEN 'unknown' ELSE status END, reward,
            COALESCE(started_at, ended_at, now()),
            ended_at, model, skills_in_scope, metadata, cost_usd, redaction_parts,
            redaction_counts, step_count, error_count, span_count, span_error_count,
            total_tokens, content_digest, now(), now()
        FROM {_TRACE_RECORDS}
        ON CONFLICT (workspace_id, external_id) DO NOTHING
        RETURNING id, external_id
        """,
        [workspace_id, records],
    )
    return {external_id: (trace_id, True) for trace_id, external_id in cursor.fetchall()}


def _merge_stored_traces(
    cursor: Any, workspace_id: int, records: str
) -> dict[str, tuple[int, bool]]:
    """Merge these traces (`records`) into the stored ones of the same external ids."""
    # Empty strings and NULLs in a re-sent trace keep what was stored: an agent
    # may send a trace in pieces (first the task, later the steps and status).
    cursor.execute(
        f"""
        UPDATE traces_trace t SET
            agent = COALESCE(NULLIF(n.agent, ''), t.agent),
            session_id = COALESCE(NULLIF(n.session_id, ''), t.session_id),
            task = COALESCE(NULLIF(n.task, ''), t.task),
            task_key = COALESCE(NULLIF(n.task_key, ''), t.task_key),
            checks = CASE WHEN jsonb_array_length(n.checks) > 0 THEN n.checks ELSE t.checks END,
            status = COALESCE(NULLIF(n.status, ''), t.status),
            reward = COALESCE(n.reward, t.reward),
            started_at = COALESCE(n.started_at, t.started_at),
            ended_at = COALESCE(n.ended_at, t.ended_at),
            model = COALESCE(NULLIF(n.model, ''), t.model),
            skills_in_scope = CASE WHEN cardinality(n.skills_in_scope) > 0
                THEN n.skills_in_scope ELSE t.skills_in_scope END,
            metadata = t.metadata || n.metadata,
            cost_usd = COALESCE(n.cost_usd, t.cost_usd),
            -- Step parts are replaced; the trace's own part keeps the larger
            -- count per kind (a later piece may not repeat the task).
            redaction_parts = t.redaction_parts || n.redaction_parts
                || jsonb_build_object('trace', (
                    SELECT COALESCE(jsonb_object_agg(k, m), '{{}}'::jsonb) FROM (
                        SELECT k, max(v::int) AS m FROM (
                            SELECT * FROM jsonb_each_text(
                                COALESCE(t.redaction_parts -> 'trace', '{{}}'::jsonb))
                            UNION ALL
                            SELECT * FROM jsonb_each_text(
                                COALESCE(n.redaction_parts -> 'trace', '{{}}'::jsonb))
                        ) AS u(k, v) GROUP BY k) AS x)),
            content_digest = n.content_digest,
            updated_at = now()
        FROM {_TRACE_RECORDS}
        WHERE t.workspace_id = %s AND t.external_id = n.external_id
        RETURNING t.id, t.external_id
        """,
        [records, workspace_id],
    )
    return {external_id: (trace_id, False) for trace_id, external_id in cursor.fetchall()}


def _changed(stored: str, sent: str) -> str:
    """SQL: the step sent differs from the stored one of its index (a parent index
    sent as null keeps the stored one, so it is no change)."""
    columns = ("kind", "name", "input", "output", "error", "started_at", "duration_ms", "tokens")
    return (
        f"(({', '.join(f'{stored}.{c}' for c in columns)}) IS DISTINCT FROM "
        f"({', '.join(f'{sent}.{c}' for c in columns)}) OR ({sent}.parent_index IS NOT NULL "
        f"AND {sent}.parent_index IS DISTINCT FROM {stored}.parent_index))"
    )


def _upsert_steps(
    cursor: Any, workspace_id: int, traces: list[PreparedTrace], ids: dict[str, tuple[int, bool]]
) -> None:
    """Upsert the steps of traces sent again, by index, and change each trace's
    counts by the difference: the steps added, and for each step replaced what it
    counts now less what it counted before (read in the same statement, so from the
    same snapshot as the upsert). Linear in what was sent, not in what is stored:
    a hook session's thousandth event costs what its tenth did. A step sent as it
    is stored is not written again (no new row version, search vector or words):
    a client that re-sends its whole run as it grows (a transcript imported at
    each turn's end) writes what changed. The redaction counts are taken again
    from the trace's parts (a part per step that had some)."""
    cursor.execute(
        f"""
        WITH sent AS (
            SELECT t.id AS trace_id, s.*
            FROM {_STEP_RECORDS}
            JOIN traces_trace t ON t.workspace_id = %s AND t.external_id = s.external_id
        ), replaced AS (
            SELECT o.trace_id, count(*) AS n,
                   count(*) FILTER (WHERE o.error <> '' OR o.kind = 'error') AS errors,
                   count(*) FILTER (WHERE o.kind = 'span') AS spans,
                   count(*) FILTER (WHERE o.kind = 'span' AND o.error <> '') AS span_errors,
                   COALESCE(sum(o.tokens) FILTER (WHERE o.kind <> 'span'), 0) AS tokens
            FROM traces_step o JOIN sent ON o.trace_id = sent.trace_id AND o.index = sent.index
            WHERE {_changed("o", "sent")}
            GROUP BY o.trace_id
        ), written AS (
            INSERT INTO traces_step (trace_id, {_STEP_FIELDS})
            SELECT trace_id, {_STEP_FIELDS} FROM sent
            -- A row proposed is built whole (its search vector computed) before its
            -- conflict is found: a step stored as it was sent is not proposed at all.
            -- (Judged on the statement's snapshot, as `replaced` is, so the counts
            -- change by exactly the rows proposed.)
            WHERE NOT EXISTS (
                SELECT 1 FROM traces_step o
                WHERE o.trace_id = sent.trace_id AND o.index = sent.index
                  AND NOT {_changed("o", "sent")})
            ON CONFLICT (trace_id, index) DO UPDATE SET
                kind = EXCLUDED.kind, name = EXCLUDED.name, input = EXCLUDED.input,
                output = EXCLUDED.output, error = EXCLUDED.error,
                started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
                tokens = EXCLUDED.tokens,
                parent_index = COALESCE(EXCLUDED.parent_index, traces_step.parent_index)
            RETURNING trace_id, error <> '' OR kind = 'error' AS is_error,
                      kind = 'span' AS is_span,
                      CASE WHEN kind = 'span' THEN NULL ELSE tokens END AS tokens
        ), now_counted AS (
            SELECT trace_id, count(*) AS n, count(*) FILTER (WHERE is_error) AS errors,
                   count(*) FILTER (WHERE is_span) AS spans,
                   count(*) FILTER (WHERE is_span AND is_error) AS span_errors,
                   COALESCE(sum(tokens), 0) AS tokens
            FROM written GROUP BY trace_id
        )
        UPDATE traces_trace t SET
            status = CASE WHEN t.status = '' THEN 'unknown' ELSE t.status END,
            step_count = t.step_count + COALESCE(c.n, 0) - COALESCE(r.n, 0),
            error_count = t.error_count + COALESCE(c.errors, 0) - COALESCE(r.errors, 0),
            span_count = t.span_count + COALESCE(c.spans, 0) - COALESCE(r.spans, 0),
            span_error_count = t.span_error_count + COALESCE(c.span_errors, 0)
                               - COALESCE(r.span_errors, 0),
            total_tokens = t.total_tokens + COALESCE(c.tokens, 0) - COALESCE(r.tokens, 0),
            redaction_counts = {_REDACTION_COUNTS}
        FROM unnest(%s::bigint[]) AS ids(id)
        LEFT JOIN now_counted c ON c.trace_id = ids.id
        LEFT JOIN replaced r ON r.trace_id = ids.id
        WHERE t.id = ids.id
        """,
        [_step_records(traces), workspace_id, [ids[t.external_id][0] for t in traces]],
    )


# A trace's redaction counts, summed over its parts (`t`: the trace).
_REDACTION_COUNTS = """(
    SELECT COALESCE(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
        SELECT e.k, sum(e.v::int) AS n
        FROM jsonb_each(t.redaction_parts) AS p(part, c),
             jsonb_each_text(CASE WHEN jsonb_typeof(p.c) = 'object'
                                  THEN p.c ELSE '{}'::jsonb END) AS e(k, v)
        WHERE e.v::int > 0
        GROUP BY e.k) AS x)"""


def refresh_aggregates(trace_ids: list[int]) -> None:
    """Recount steps, errors, tokens and redactions of these traces."""
    with connection.cursor() as cursor:
        _refresh_aggregates(cursor, trace_ids)


def _refresh_aggregates(cursor: Any, trace_ids: list[int]) -> None:
    cursor.execute(
        f"""
        UPDATE traces_trace t SET
            status = CASE WHEN t.status = '' THEN 'unknown' ELSE t.status END,
            step_count = COALESCE(a.n, 0),
            error_count = COALESCE(a.errors, 0),
            span_count = COALESCE(a.spans, 0),
            span_error_count = COALESCE(a.span_errors, 0),
            total_tokens = COALESCE(a.tokens, 0),
            redaction_counts = {_REDACTION_COUNTS}
        FROM (SELECT id FROM unnest(%s::bigint[]) AS id) ids
        LEFT JOIN (
            SELECT trace_id, count(*) AS n,
                   count(*) FILTER (WHERE error <> '' OR kind = 'error') AS errors,
                   count(*) FILTER (WHERE kind = 'span') AS spans,
                   count(*) FILTER (WHERE kind = 'span' AND error <> '') AS span_errors,
                   sum(tokens) FILTER (WHERE kind <> 'span') AS tokens
            FROM traces_step WHERE trace_id = ANY(%s::bigint[]) GROUP BY trace_id
        ) a ON a.trace_id = ids.id
        WHERE t.id = ids.id
        """,
        [trace_ids, trace_ids],
    )


def apply_pending_outcomes(cursor: Any, workspace_id: int, external_ids: list[str]) -> None:
    """Let the latest outcome of each trace decide its status and reward, and mark
    the outcomes applied (one statement: most batches have none to apply)."""
    cursor.execute(
        """
        WITH latest AS (
            SELECT DISTINCT ON (external_id) external_id, status, reward, checks
            FROM traces_outcome
            WHERE workspace_id = %s AND external_id = ANY(%s)
            ORDER BY external_id, received_at DESC, id DESC
        ), decided AS (
            UPDATE traces_trace t SET
                status = COALESCE(NULLIF(latest.status, ''), t.status),
                reward = COALESCE(latest.reward, t.reward),
                checks = CASE WHEN jsonb_array_length(latest.checks) > 0
                    THEN latest.checks ELSE t.checks END,
                updated_at = now()
            FROM latest
            WHERE t.workspace_id = %s AND t.external_id = latest.external_id
            RETURNING t.id, t.external_id
        )
        UPDATE traces_outcome o SET trace_id = d.id, applied_at = now()
        FROM decided d
        WHERE o.workspace_id = %s AND o.external_id = d.external_id AND o.trace_id IS NULL
        """,
        [workspace_id, external_ids, workspace_id, workspace_id],
    )
