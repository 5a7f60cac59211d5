"""Storing OTLP exports: span ids → step numbers, time order, one failure once.

A trace's spans can arrive in several exports (a batch span processor sends a
span when it ends, so children come before their parents). For each trace,
under a per-trace lock:

0. in a run whose spans speak a convention, a span that carries nothing and holds
   nothing, a harness's own, is left out, as the file importer leaves it out
   (`_without_bare_leaves`; a run of plain spans keeps them all), and a trace that
   holds nothing an agent did and says nothing of a run is no run
   (`formats.says_nothing`);
1. each span id keeps one step (the map is the trace's `metadata.otlp_spans`):
   a retried span updates its step; a parent named before it arrives gets its
   number reserved, so its children can point at it (`parent_index`);
2. after the write the steps are renumbered 0, 1, 2… by start time;
3. a span that failed because a span under it failed is not a second failure:
   its error is moved to `metadata.propagated_errors` and only the deepest
   failing span keeps one (so the diagnosis makes one incident, not two);
4. a model call's messages may come apart from its span, as GenAI events over
   `/v1/logs` (`otlp_genai`): content-only steps of the same span ids. Whichever
   arrives second keeps what the first brought: the span its content, the events
   the step's kind, name, time and error. Events of one call in two exports (one
   event a message: the batch processor closed an export between the request's
   messages and the answer, or between two messages) add their messages to those
   stored, a retried export's again adding none (`_joined_messages`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from hivemind_client.formats import (
    TOOL_EXECUTION_SPANS,
    nested_model_calls,
    says_nothing,
    span_depths,
)
from workspaces.models import PiiPolicy, Workspace
from workspaces.redaction import Redactor, redactor_for_policy

from .claude_code import hooked_sessions
from .ingest import refresh_aggregates
from .models import Step, Trace
from .services import BatchResult, stored_external_id, trace_ingest_batch

OFFSET = 1_000_000_000
CLAUDE_CODE = "claude-code"  # the agent (service.name) of Claude Code's own spans  # moves indexes out of the way while renumbering


def _lock(workspace_id: int, external_id: str) -> None:
    key = int(hashlib.sha256(f"otlp:{workspace_id}:{external_id}".encode()).hexdigest()[:15], 16)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def otlp_ingest(*, workspace: Workspace, traces: list[dict[str, Any]]) -> BatchResult:
    # Claude Code's own spans of a session its hooks capture are left to the hooks
    # (the fuller record): one run for the session, counted once.
    claude = [t.get("session_id", "") for t in traces if t.get("agent") == CLAUDE_CODE]
    if claude:
        hooked = hooked_sessions(workspace, claude)
        traces = [t for t in traces
                  if not (t.get("agent") == CLAUDE_CODE and t.get("session_id") in hooked)]  # fmt: skip
        if not traces:
            return BatchResult(results=[], trace_ids=[])
    with transaction.atomic():
        for trace in sorted(traces, key=lambda t: t["external_id"]):
            trace["external_id"] = stored_external_id(
                workspace=workspace, external_id=trace["external_id"]
            )
            _lock(workspace.pk, trace["external_id"])
        stored = {
            t.external_id: t
            for t in Trace.objects.filter(
                workspace=workspace, external_id__in=[t["external_id"] for t in traces]
            )
        }
        for trace in traces:
            _without_bare_leaves(trace, stored.get(trace["external_id"]))
        # A trace of harness spans only (a workflow's build, on a trace of its own) is
        # no run: nothing an agent did, and nothing said of one.
        traces = [t for t in traces if t["external_id"] in stored
                  or not says_nothing(t, whole=t.pop("_has_root", False))]  # fmt: skip
        for trace in traces:
            trace.pop("_has_root", None)
        if not traces:
            return BatchResult(results=[], trace_ids=[])
        for trace in traces:
            _number(trace, stored.get(trace["external_id"]))
            _keep_stored(trace, stored.get(trace["external_id"]), workspace)
        batch = trace_ingest_batch(workspace=workspace, items=traces)
        for trace_id in batch.trace_ids:
            _renumber_by_time(trace_id)
        refresh_aggregates(batch.trace_ids)
    return batch


def _without_bare_leaves(trace: dict[str, Any], stored: Trace | None) -> None:
    """In a run whose spans speak a convention, leave out the spans that carry nothing
    (`formats.bare_span`) and hold nothing: a harness's own (a workflow's edge and
    message spans), as the file importer leaves them out
    (`formats._without_bare_spans`). Every span of a run where none speaks one is
    kept (plain OpenTelemetry spans are its only record); such spans stored before
    the run's first span that speaks one arrived (spans are exported as they end,
    so a workflow's routing can come first) are listed in `metadata.otlp_bare` and
    judged, and deleted, once it has. Kept: one a stored or sent span names as its
    parent (spans end children first, so a parent comes in a later export than its
    children); one sent before (a retry); one named as a tool the model was offered
    or asked for, by this export's spans, by earlier exports' (their tool names are
    kept in `metadata.otlp_tools`) or by a stored model call's answer; and any while
    a model call of the run has no answer yet (its messages come as events over
    /v1/logs, which may still name the tool)."""
    declared: set[str] = trace.pop("_declared", set())
    steps = trace["steps"]
    bare = [s for s in steps if s.pop("_bare", False)]
    metadata = stored.metadata if stored is not None else {}
    tools = declared | set(metadata.get("otlp_tools", []))
    if declared - set(metadata.get("otlp_tools", [])):
        trace["metadata"]["otlp_tools"] = sorted(tools)
    speaks = len(bare) < len(steps) or bool(metadata.get("otlp_conventions"))
    if speaks and not metadata.get("otlp_conventions"):
        trace["metadata"]["otlp_conventions"] = True
    earlier = set(metadata.get("otlp_bare", []))
    if not speaks:
        if bare:
            trace["metadata"]["otlp_bare"] = sorted(earlier | {s["_span"] for s in bare})
        return
    known = metadata.get("otlp_spans", {})
    parents = {s.get("_parent") for s in steps}
    leaves = [s for s in bare if s["_span"] not in parents and s["_span"] not in known
              and s["name"] not in tools]  # fmt: skip
    stale = {known[span]: span for span in earlier if span in known and span not in parents}
    if (not leaves and not stale) or any(
        s["kind"] == "llm_call" and s.get("output") is None for s in steps
    ):
        return
    if stored is not None:
        unanswered, asked, gone = _stored_bare(
            stored.pk, sorted({s["name"] for s in leaves}), stale, sorted(tools)
        )
        if unanswered:
            return
        leaves = [s for s in leaves if s["name"] not in asked]
        if gone:
            Step.objects.filter(trace_id=stored.pk, index__in=gone).delete()
            trace["_forget_spans"] = [stale[index] for index in gone]
        trace["metadata"]["otlp_bare"] = []  # each judged: deleted, or kept for good
    left_out = {id(s) for s in leaves}
    trace["steps"] = [s for s in steps if id(s) not in left_out]


def _stored_bare(
    trace_id: int, names: list[str], stale: dict[int, str], tools: list[str]
) -> tuple[bool, set[str], list[int]]:
    """Whether a stored model call of the run has no answer yet; which of `names` one
    names as a JSON string in its answer (the tool calls it asked for); and which of
    the `stale` steps (stored bare spans, by index) still carry nothing, hold no step
    but such steps, and are neither a tool in `tools` nor one a model call asked for.
    A parent whose children all go, goes too: asked again until nothing more does
    (one more pass a level of nesting)."""
    gone: list[int] = []
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                """
                SELECT EXISTS (SELECT 1 FROM traces_step
                               WHERE trace_id = %s AND kind = 'llm_call'
                                 AND (output IS NULL OR output = 'null'::jsonb)),
                       ARRAY(SELECT n FROM unnest(%s::text[]) AS n
                             WHERE EXISTS (SELECT 1 FROM traces_step
                                           WHERE trace_id = %s AND kind = 'llm_call'
                                             AND strpos(output::text, to_jsonb(n)::text) > 0)),
                       ARRAY(SELECT s.index FROM traces_step s
                             WHERE s.trace_id = %s AND s.index = ANY(%s)
                               AND s.kind IN ('tool_call', 'span') AND s.error = ''
                               AND (s.input IS NULL OR s.input = 'null'::jsonb)
                               AND (s.output IS NULL OR s.output = 'null'::jsonb)
                               AND s.name <> ALL(%s::text[])
                               AND NOT EXISTS (SELECT 1 FROM traces_step c
                                               WHERE c.trace_id = s.trace_id
                                                 AND c.parent_index = s.index
                                                 AND c.index <> ALL(%s::int[]))
                               AND NOT EXISTS (SELECT 1 FROM traces_step m
                                               WHERE m.trace_id = s.trace_id
                                                 AND m.kind = 'llm_call'
                                                 AND strpos(m.output::text,
                                                            to_jsonb(s.name)::text) > 0))
                """,
                [trace_id, names, trace_id, trace_id, list(stale), tools, gone],
            )  # fmt: skip
            unanswered, asked, found = cursor.fetchone()
            if set(found) == set(gone) or len(found) > len(stale):
                return bool(unanswered), set(asked), list(found)
            gone = list(found)


def _number(trace: dict[str, Any], stored: Trace | None) -> None:
    spans: dict[str, int] = dict(stored.metadata.get("otlp_spans", {})) if stored else {}
    for span in trace.pop("_forget_spans", []):  # stored bare spans just deleted
        spans.pop(span, None)
    following = max(spans.values(), default=-1) + 1

    def index_of(span: str) -> int:
        nonlocal following
        if span not in spans:
            spans[span] = following
            following += 1
        return spans[span]

    for step in sorted(trace["steps"], key=lambda s: (s.get("started_at") or "", s["_span"])):
        step["index"] = index_of(step.pop("_span"))
    for step in trace["steps"]:
        parent = step.pop("_parent")
        step["parent_index"] = index_of(parent) if parent else None
    trace["metadata"]["otlp_spans"] = spans
    from_root = trace.pop("_task_from_root", False)
    trace.pop("_task_at", None)
    if stored is not None and stored.task and not from_root:
        trace.pop("task", None)  # an earlier export already named it


# What a span's step keeps of its stored step when the span does not carry it: the
# content its GenAI events brought (otlp_genai) ...
_SPAN_KEEPS = ("input", "output", "tokens")
# ... and what those events keep of the step their span made: all but the content.
_EVENTS_KEEP = ("kind", "name", "error", "started_at", "duration_ms")


def _keep_stored(trace: dict[str, Any], stored: Trace | None, workspace: Workspace) -> None:
    """Merge the trace's steps with the stored steps of the same spans where one of
    them is a span and the other its events (item 4 above). One query a trace, for
    its steps that need it."""
    content_only = {id(s) for s in trace["steps"] if s.pop("_content_only", False)}
    if trace.pop("_events_only", False) and stored is not None:
        # Events arrive export by export, a retried one after a later one: the run
        # lasts from the first seen to the last.
        for name, pick in (("started_at", min), ("ended_at", max)):
            sent, kept = trace.get(name), getattr(stored, name)
            if sent and kept:
                trace[name] = pick(datetime.fromisoformat(sent), kept).isoformat()
    if stored is None:
        return
    # Checks arrive span by span, export by export (a `hivemind.check.*` attribute, an
    # evaluation event): those of this export are added to the run's stored ones,
    # replacing one of the same name, where the native API's trace replaces them all.
    if trace.get("checks") and stored.checks:
        sent = {c.get("name") for c in trace["checks"]}
        trace["checks"] = [c for c in stored.checks if c.get("name") not in sent] + trace["checks"]
    wanted = [s for s in trace["steps"]
              if id(s) in content_only or any(s.get(f) is None for f in _SPAN_KEEPS)]  # fmt: skip
    if not wanted:
        return
    rows = {
        row["index"]: row
        for row in Step.objects.filter(trace=stored, index__in=[s["index"] for s in wanted]).values(
            "index", *_EVENTS_KEEP, *_SPAN_KEEPS
        )
    }
    redactor: Redactor | None = None
    for step in wanted:
        row = rows.get(step["index"])
        if row is None:
            continue
        if id(step) in content_only:
            step.update({f: row[f] for f in _EVENTS_KEEP})
            if isinstance(step.get("input"), list) and isinstance(row["input"], list):
                redactor = redactor or _redactor(workspace)
                step["input"] = _joined_messages(row["input"], step["input"], redactor)
        step.update({f: row[f] for f in _SPAN_KEEPS if step.get(f) is None})


def _redactor(workspace: Workspace) -> Redactor:
    policy, _ = PiiPolicy.objects.get_or_create(workspace=workspace)
    return redactor_for_policy(policy)


def _joined_messages(stored: list[Any], sent: list[Any], redactor: Redactor) -> list[Any]:
    """A call's input messages as stored, then those of a later export of its events
    that are not among them. The stored ones are redacted: a sent message is
    compared as it will be stored (the workspace's redaction is deterministic), so a
    retried export adds nothing. Messages of an export that arrives before an
    earlier one (an exporter's retry) come after its."""
    counts: Counter[str] = Counter()
    return stored + [m for m in sent if redactor.value(m, counts) not in stored]


def _renumber_by_time(trace_id: int) -> None:
    trace = Trace.objects.get(pk=trace_id)
    stored = list(
        Step.objects.filter(trace_id=trace_id)
        .order_by(F("started_at").asc(nulls_last=True), "index")
        .values_list("index", "parent_index", "error", "kind", "started_at")
    )
    # Steps that start in the same instant (JavaScript's SDK times to the
    # millisecond) go parent first, as the file importer orders them.
    depth = span_depths({index: parent for index, parent, *_ in stored})
    order = {row[0]: position for position, row in enumerate(stored)}
    stored.sort(key=lambda r: (r[4] is None, r[4] or 0, depth[r[0]], order[r[0]]))
    rows = [row[:4] for row in stored]
    mapping = {old: new for new, (old, *_) in enumerate(rows)}
    spans: dict[str, int] = trace.metadata.get("otlp_spans", {})
    reserved = len(rows)
    for _, index in sorted(spans.items(), key=lambda kv: kv[1]):
        if index not in mapping:  # a parent not received yet
            mapping[index] = reserved
            reserved += 1
    parent_of = {mapping[old]: mapping.get(p) if p is not None else None for old, p, *_ in rows}
    errors = {mapping[old]: error for old, _, error, _ in rows if error}
    # A model call inside a model call is the same call through a wrapper: counted
    # once, on the outer (the file importer's rule, `formats.nested_model_calls`).
    kinds: list[tuple[str, int | None]] = [("", None)] * reserved
    for old, _, _, kind in rows:
        kinds[mapping[old]] = (kind, parent_of[mapping[old]])
    nested = [i for i, inside in enumerate(nested_model_calls(kinds)) if inside]
    # A failing step with a failing step under it: the failure is the deeper one's.
    propagated: dict[str, str] = {}
    for index in errors:
        seen, parent = set(), parent_of.get(index)
        while parent is not None and parent not in seen:
            seen.add(parent)
            if parent in errors:
                propagated[str(parent)] = errors[parent]
            parent = parent_of.get(parent)
    changed = any(old != new for old, new in mapping.items())
    with connection.cursor() as cursor:
        if changed:
            olds = list(mapping)
            cursor.execute(
                "UPDATE traces_step SET index = index + %s WHERE trace_id = %s", [OFFSET, trace_id]
            )
            cursor.execute(
                """
                UPDATE traces_step s SET index = m.new,
                    parent_index = (SELECT p.new FROM unnest(%s::int[], %s::int[]) AS p(old, new)
                                    WHERE p.old = s.parent_index)
                FROM unnest(%s::int[], %s::int[]) AS m(old, new)
                WHERE s.trace_id = %s AND s.index = m.old + %s
                """,
                [olds, [mapping[o] for o in olds], olds, [mapping[o] for o in olds], trace_id,
                 OFFSET],
            )  # fmt: skip
        if nested:
            cursor.execute(
                "UPDATE traces_step SET kind = 'span' WHERE trace_id = %s AND index = ANY(%s)",
                [trace_id, nested],
            )
        # A model call carrying nothing beside an earlier one of the same parent and
        # input that carries the call: the call recorded again (the file importer's
        # rule, `formats.repeated_model_calls`). Spans arrive in the order they end,
        # so each export looks again.
        cursor.execute(
            """
            UPDATE traces_step s SET kind = 'span'
            WHERE s.trace_id = %s AND s.kind = 'llm_call'
              AND (s.output IS NULL OR s.output = 'null'::jsonb)
              AND COALESCE(s.tokens, 0) = 0 AND s.error = ''
              AND EXISTS (SELECT 1 FROM traces_step o
                          WHERE o.trace_id = s.trace_id AND o.kind = 'llm_call'
                            AND o.index < s.index
                            AND o.parent_index IS NOT DISTINCT FROM s.parent_index
                            AND o.input IS NOT DISTINCT FROM s.input
                            AND ((o.output IS NOT NULL AND o.output <> 'null'::jsonb)
                                 OR COALESCE(o.tokens, 0) > 0 OR o.error <> ''))
            """,
            [trace_id],
        )
        # A model call carrying no messages while one of the same parent that carries
        # them runs at the same time: the same call seen by a second instrumentation
        # (the file importer's rule, `formats.shadowed_model_calls`).
        cursor.execute(
            """
            UPDATE traces_step s SET kind = 'span'
            WHERE s.trace_id = %s AND s.kind = 'llm_call'
              AND (s.input IS NULL OR s.input = 'null'::jsonb)
              AND (s.output IS NULL OR s.output = 'null'::jsonb)
              AND s.started_at IS NOT NULL AND s.duration_ms IS NOT NULL
              AND EXISTS (SELECT 1 FROM traces_step o
                          WHERE o.trace_id = s.trace_id AND o.kind = 'llm_call'
                            AND o.index <> s.index
                            AND o.parent_index IS NOT DISTINCT FROM s.parent_index
                            AND ((o.input IS NOT NULL AND o.input <> 'null'::jsonb)
                                 OR (o.output IS NOT NULL AND o.output <> 'null'::jsonb))
                            AND o.started_at < s.started_at + s.duration_ms * interval '1 millisecond'
                            AND s.started_at < o.started_at + o.duration_ms * interval '1 millisecond')
            """,
            [trace_id],
        )
        # A call with no input or output that holds other steps, or with no output
        # that holds a model call, is the application's own structure (the file
        # importer's rule, `formats.empty_call_holds_steps`).
        cursor.execute(
            """
            UPDATE traces_step s SET kind = 'span'
            WHERE s.trace_id = %s AND s.kind = 'tool_call'
              AND (s.output IS NULL OR s.output = 'null'::jsonb)
              AND (((s.input IS NULL OR s.input = 'null'::jsonb)
                    AND EXISTS (SELECT 1 FROM traces_step c
                                WHERE c.trace_id = s.trace_id AND c.parent_index = s.index))
                   OR EXISTS (SELECT 1 FROM traces_step c
                              WHERE c.trace_id = s.trace_id AND c.parent_index = s.index
                                AND c.kind = 'llm_call'))
            """,
            [trace_id],
        )
        if propagated:
            cursor.execute(
                "UPDATE traces_step SET error = '' WHERE trace_id = %s AND index = ANY(%s)",
                [trace_id, [int(i) for i in propagated]],
            )
        # A tool's failed execution (Claude Code records it inside the call): the
        # call failed; the error moves onto it (the file importer's rule).
        cursor.execute(
            """
            WITH moved AS (
                UPDATE traces_step c SET error = x.error
                FROM traces_step x
                WHERE c.trace_id = %s AND x.trace_id = c.trace_id AND x.parent_index = c.index
                  AND c.kind = 'tool_call' AND c.error = ''
                  AND x.kind = 'span' AND x.name = ANY(%s) AND x.error <> ''
                RETURNING x.index
            )
            UPDATE traces_step s SET error = '' FROM moved
            WHERE s.trace_id = %s AND s.index = moved.index
            """,
            [trace_id, list(TOOL_EXECUTION_SPANS), trace_id],
        )
    metadata = dict(trace.metadata)
    metadata["otlp_spans"] = {span: mapping.get(i, i) for span, i in spans.items()}
    if propagated:
        metadata["propagated_errors"] = {
            **metadata.get("propagated_errors", {}), **propagated
        }  # fmt: skip
    parts = {
        (str(mapping.get(int(key), int(key))) if key.isdigit() else key): value
        for key, value in (trace.redaction_parts or {}).items()
    }
    Trace.objects.filter(pk=trace_id).update(metadata=metadata, redaction_parts=parts)
