"""POST /v1/logs: Claude Code's own OpenTelemetry events, as runs.

Claude Code's standard telemetry (`CLAUDE_CODE_ENABLE_TELEMETRY=1`,
`OTEL_LOGS_EXPORTER=otlp`) sends its events as OTLP log records, each with the
event's name (`claude_code.<name>` in the body, `event.name` among its
attributes), the session (`session.id`) and the event's number in the session
(`event.sequence`). Each session is a run of its own, `claude-code-events-<session>`
(not the run its hooks or its beta spans make: those are numbered otherwise), and
each event that says what happened is a step numbered by its sequence, so an
exporter's retry, or a session's events arriving export by export, update the
same steps:

- `user_prompt`: the prompt (its text when `OTEL_LOG_USER_PROMPTS=1`); the
  session's first prompt is the run's task;
- `api_request`: a model call, with its model and tokens (input, cache written
  and read, output); `api_error`: a model call that failed, with the error;
- `tool_result`: the tool's call, with its input (`tool_input` when
  `OTEL_LOG_TOOL_DETAILS=1`, else the parameters it reports), its duration, and
  its error when it did not succeed;
- `tool_decision` that rejects a call (a permission rule's or a person's): a
  failed call of that tool, since no `tool_result` follows it;
- `assistant_response`: the reply (its text when it is logged).

The other events (settings, plugins, accepted permission decisions, which the
`tool_result` follows) are left out, as are records that are not Claude Code's:
step numbers skip theirs. A run lasts from its first event to its last seen so
far. Its cost is the sum of its requests' `cost_usd`, each kept by its event number
in the run's metadata (`event_costs_usd`), so a retry does not count it twice.
The events do not say how a session ended, so its run is `unknown` until an
outcome is sent (`POST /api/v1/traces/{external_id}/outcome`). A session that the
hooks capture already is left to them (their run is the fuller record).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from workspaces.models import Workspace

from .claude_code import hooked_sessions
from .otlp import any_value, decode_export, serialize
from .services import BatchResult, trace_ingest_batch

AGENT = "claude-code"
# Shown beside the run's status on its page until an outcome decides.
UNKNOWN_WHY = (
    "Claude Code's events do not say how a session ended; an outcome sent for this run will decide"
)
RUN_PREFIX = "claude-code-events-"
PREFIX = "claude_code."


def decode(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    return decode_export(body, content_type, ExportLogsServiceRequest(), _hex_ids_to_base64)


def _hex_ids_to_base64(data: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    for resource_logs in data.get("resourceLogs", []) if isinstance(data, dict) else []:
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if record.get(key):
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()


def encode_response(rejected: int, message: str, content_type: str) -> bytes:
    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message[:2000])
        )
    return serialize(response, content_type)


def non_negative_int(value: Any) -> int | None:
    """An attribute read as a count: a number of zero or more, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number != float("inf") else None


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _when(attrs: dict[str, Any], nanos: int) -> str | None:
    stamp = attrs.get("event.timestamp")
    if isinstance(stamp, str) and stamp:
        return stamp
    if nanos:
        return datetime.fromtimestamp(nanos / 1e9, UTC).isoformat()
    return None


# What Claude Code writes in place of a prompt or a reply it does not log (without
# OTEL_LOG_USER_PROMPTS): no text, not a prompt that says "<REDACTED>".
NOT_LOGGED = "<REDACTED>"


def _logged_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != NOT_LOGGED else None


def _step(name: str, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The step an event makes, or None for an event that says nothing of the run."""
    if name == "user_prompt":
        return {"kind": "user_prompt", "input": _logged_text(attrs.get("prompt"))}
    if name in ("api_request", "api_error"):
        counts = [
            non_negative_int(attrs.get(key))
            for key in (
                "input_tokens",
                "cache_creation_tokens",
                "cache_read_tokens",
                "output_tokens",
            )
        ]
        tokens = (
            sum(n for n in counts if n is not None) if any(n is not None for n in counts) else None
        )
        step: dict[str, Any] = {
            "kind": "llm_call",
            "name": str(attrs.get("model") or "")[:200],
            "tokens": tokens,
            "duration_ms": _float(attrs.get("duration_ms")),
        }
        if name == "api_error":
            status = attrs.get("status_code")
            error = str(attrs.get("error") or "the model API answered an error")
            step["error"] = f"{error} (HTTP {status})" if status not in (None, "") else error
        return step
    if name == "tool_result":
        detail = attrs.get("tool_input") or attrs.get("tool_parameters")
        step = {
            "kind": "tool_call",
            "name": str(attrs.get("tool_name") or "tool")[:200],
            "input": _json_or_text(detail) if detail not in (None, "") else None,
            "duration_ms": _float(attrs.get("duration_ms")),
        }
        if str(attrs.get("success", "true")).lower() == "false":
            error = str(attrs.get("error") or "the tool call did not succeed")
            kind = attrs.get("error_type")
            step["error"] = f"{kind}: {error}" if kind and kind not in error else error
        return step
    if name == "tool_decision" and str(attrs.get("decision", "")).lower() == "reject":
        # A call refused by a permission rule or a person gets no tool_result: this
        # is the only trace of it (an accepted call's is its tool_result's).
        detail = attrs.get("tool_input") or attrs.get("tool_parameters")
        source = attrs.get("source")
        return {
            "kind": "tool_call",
            "name": str(attrs.get("tool_name") or "tool")[:200],
            "input": _json_or_text(detail) if detail not in (None, "") else None,
            "error": "The call was not permitted"
            + (f" (rejected by {source})." if source else "."),
        }
    if name == "assistant_response":
        return {"kind": "assistant_message", "output": _logged_text(attrs.get("response"))}
    return None


@dataclass
class Sessions:
    """Claude Code's sessions in an export."""

    traces: list[dict[str, Any]]  # one each, its steps by event sequence
    records: dict[str, int]  # external id -> how many records made it
    costs: dict[str, dict[str, float]]  # external id -> event sequence -> its request's cost


def to_traces(request: ExportLogsServiceRequest) -> Sessions:
    traces: dict[str, dict[str, Any]] = {}
    records: dict[str, int] = {}
    costs: dict[str, dict[str, float]] = {}
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attrs = {kv.key: any_value(kv.value) for kv in record.attributes}
                body = any_value(record.body) if record.HasField("body") else None
                event = attrs.get("event.name") or (
                    body[len(PREFIX) :] if isinstance(body, str) and body.startswith(PREFIX) else ""
                )
                session = attrs.get("session.id")
                sequence = non_negative_int(attrs.get("event.sequence"))
                if not (isinstance(body, str) and body.startswith(PREFIX)) or not session:
                    continue  # not one of Claude Code's events
                step = _step(str(event), attrs)
                if step is None or sequence is None:
                    continue
                external_id = f"{RUN_PREFIX}{session}"[:200]
                trace = traces.setdefault(external_id, {
                    "external_id": external_id, "agent": AGENT,
                    "session_id": str(session)[:200], "steps": [],
                    "metadata": {"inferred_status": {"status": "unknown", "reason": UNKNOWN_WHY}},
                })  # fmt: skip
                records[external_id] = records.get(external_id, 0) + 1
                step["index"] = sequence
                step["started_at"] = _when(attrs, record.time_unix_nano)
                trace["steps"].append(step)
                if step["kind"] == "llm_call" and step.get("name"):
                    trace["model"] = step["name"]
                cost = _float(attrs.get("cost_usd")) if event == "api_request" else None
                if cost is not None:
                    costs.setdefault(external_id, {})[str(sequence)] = cost
    for trace in traces.values():
        # An exporter's retry may repeat a record: one step per sequence number.
        by_index = {
            s["index"]: {k: v for k, v in s.items() if v is not None} for s in trace["steps"]
        }
        trace["steps"] = [by_index[i] for i in sorted(by_index)]
    return Sessions(list(traces.values()), records, costs)


def logs_ingest(*, workspace: Workspace, sessions: Sessions) -> BatchResult:
    """Store these sessions' steps (merged by event sequence into the runs stored
    already), then date each run from its first event to its last seen so far, and
    give it its first prompt as its task, where it has none yet. A session its
    hooks capture already (a run `claude-code-<session>`, the fuller record) is not
    stored again from its events, so it is not counted twice. Each run's cost is
    the sum of its requests' costs, kept by event number (`_add_costs`)."""
    hooked = hooked_sessions(workspace, [t["session_id"] for t in sessions.traces])
    traces = [t for t in sessions.traces if t["session_id"] not in hooked]
    if not traces:
        return BatchResult(results=[], trace_ids=[])
    with transaction.atomic():
        batch = trace_ingest_batch(workspace=workspace, items=traces)
        if batch.trace_ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE traces_trace t SET
                        started_at = LEAST(t.started_at, f.first_at),
                        ended_at = GREATEST(t.ended_at, f.last_at),
                        task = CASE WHEN t.task = '' THEN COALESCE(f.prompt, '') ELSE t.task END
                    FROM (
                        SELECT s.trace_id, min(s.started_at) AS first_at,
                               max(s.started_at) AS last_at,
                               (array_agg(s.input #>> '{}' ORDER BY s.index) FILTER (
                                    WHERE s.kind = 'user_prompt'
                                    AND jsonb_typeof(s.input) = 'string'))[1] AS prompt
                        FROM traces_step s WHERE s.trace_id = ANY(%s) GROUP BY s.trace_id
                    ) f
                    WHERE t.id = f.trace_id
                      AND (f.first_at < t.started_at OR t.ended_at IS NULL OR f.last_at > t.ended_at
                           OR (t.task = '' AND f.prompt IS NOT NULL))
                    """,
                    [batch.trace_ids],
                )
            _add_costs(workspace, traces, sessions.costs, batch)
    return batch


def _add_costs(
    workspace: Workspace,
    traces: list[dict[str, Any]],
    costs: dict[str, dict[str, float]],
    batch: BatchResult,
) -> None:
    """Each stored run's requests' costs, by event number, merged into its
    `metadata.event_costs_usd`, and its cost the sum of them all."""
    stored = {
        r.external_id: costs[traces[r.index]["external_id"]]
        for r in batch.results
        if r.status != "rejected" and r.external_id and traces[r.index]["external_id"] in costs
    }
    if not stored:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE traces_trace t SET
                metadata = jsonb_set(t.metadata, '{event_costs_usd}',
                                     COALESCE(t.metadata -> 'event_costs_usd', '{}') || c.costs),
                cost_usd = (SELECT sum(e.v::float8) FROM jsonb_each_text(
                    COALESCE(t.metadata -> 'event_costs_usd', '{}') || c.costs) AS e(k, v))
            FROM jsonb_each(%s::jsonb) AS c(external_id, costs)
            WHERE t.workspace_id = %s AND t.external_id = c.external_id
            """,
            [json.dumps(stored), workspace.pk],
        )
