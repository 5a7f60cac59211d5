"""GenAI events sent as OTLP logs: a model call's messages, joined to its span.

Instrumentations that follow OpenTelemetry's GenAI conventions may keep a model
call's messages off its span and send them as events: log records that carry the
span's trace and span ids. Two forms are read:

- `gen_ai.client.inference.operation.details` (the current conventions; the
  OpenTelemetry OpenAI instrumentation 2.4b0 with
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=EVENT_ONLY` or
  `SPAN_AND_EVENT`): one record a call, whose attributes are the span's
  (`gen_ai.input.messages`, `gen_ai.output.messages`, the model, the tokens), read
  as a span's are (`formats.span_role`);
- `gen_ai.system.message`, `gen_ai.user.message`, `gen_ai.assistant.message`,
  `gen_ai.tool.message` and `gen_ai.choice` (the conventions before messages
  moved into attributes; the same instrumentation up to 2.3b0 with
  `..._CONTENT=true`): one record a message, its body the message. The messages
  are the call's input in the order they were recorded, the choices its output.

A call's events become the content of the step of its span, in the run of its
trace (`otlp_store.otlp_ingest`, the run `/v1/traces` makes of the same trace).
The span and its events arrive apart, in either order, and neither erases the
other: the span gives the step its time, parent, kind and error, the events its
messages. Until the span arrives the step is a model call at the time of its
first event. The run's task is the first user message, unless the run has one.
Records without a trace and a span id cannot be placed and are left out, as are
records that are not GenAI events. A `gen_ai.evaluation.result` record (an
evaluator's verdict on a call's output) is a named check of its trace's run
(`formats.evaluation_check`), as the same event on the call's span is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from hivemind_client.formats import (
    GENAI_EVALUATION_EVENT,
    GENAI_LOG_EVENTS,
    add_check,
    attributes_user_prompt,
    evaluation_check,
    genai_call_attributes,
    service_name,
    span_role,
)
from workspaces.textsafety import json_too_deep

from .otlp import MAX_TEXT, any_value


def event_name(record: LogRecord, attrs: dict[str, Any]) -> str:
    """The event a record is: its `event_name` (OTLP 1.5), else its `event.name`
    attribute (as SDKs wrote it before)."""
    return record.event_name or str(attrs.get("event.name") or "")


def _content(value: Any) -> Any:
    """A message or a list of them as stored: structured, unless it is nested deeper
    than a trace may be (then its JSON text, cut as OTLP's text is)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return value[:MAX_TEXT]
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, dict | list) and json_too_deep(value):
        return json.dumps(value, ensure_ascii=False)[:MAX_TEXT]
    return value


def _time(nanos: int) -> str | None:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC).isoformat() if nanos else None


def _call_step(events: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
    """A call's step from its events, read as the span that carried the same would
    be (`formats.genai_call_attributes`, `formats.span_role`)."""
    attrs = genai_call_attributes(events)
    system = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or ""
    kind, name, step_input, output, tokens = span_role(attrs, str(system))
    return {"kind": kind, "name": name, "input": _content(step_input),
            "output": _content(output), "tokens": tokens or None}  # fmt: skip


def to_traces(request: ExportLogsServiceRequest) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each trace's calls as content-only steps (`_content_only`) of its OTLP run,
    and the number of records behind each trace."""
    calls: dict[tuple[str, str], list[tuple[int, str, dict[str, Any], Any]]] = {}
    agents: dict[str, str] = {}
    evaluations: dict[str, list[dict[str, Any]]] = {}
    for resource_logs in request.resource_logs:
        resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attrs = {kv.key: any_value(kv.value) for kv in record.attributes}
                name = event_name(record, attrs)
                if name == GENAI_EVALUATION_EVENT and record.trace_id:
                    check = evaluation_check(attrs)
                    if check is not None:
                        trace_id = record.trace_id.hex()
                        agents.setdefault(trace_id, service_name(resource))
                        evaluations.setdefault(trace_id, []).append(check)
                    continue
                if name not in GENAI_LOG_EVENTS or not record.trace_id or not record.span_id:
                    continue
                trace_id = record.trace_id.hex()
                agents.setdefault(trace_id, service_name(resource))
                body = any_value(record.body) if record.HasField("body") else None
                when = record.time_unix_nano or record.observed_time_unix_nano
                calls.setdefault((trace_id, record.span_id.hex()), []).append(
                    (when, name, attrs, body)
                )
    traces: dict[str, dict[str, Any]] = {}
    records: dict[str, int] = {}
    for (trace_id, span_id), events in calls.items():
        events.sort(key=lambda e: e[0])  # stable: records of one instant keep their order
        step = _call_step([(n, a, b) for _, n, a, b in events])
        first = next((w for w, *_ in events if w), 0)
        step.update({"index": 0, "_span": span_id, "_parent": "", "_content_only": True,
                     "error": "", "started_at": _time(first), "duration_ms": None})  # fmt: skip
        trace = traces.setdefault(trace_id, _events_run(trace_id, agents[trace_id]))
        trace["steps"].append(step)
        records[trace_id] = records.get(trace_id, 0) + len(events)
        if first and (not trace.get("started_at") or _time(first) < trace["started_at"]):
            trace["started_at"] = _time(first)
        prompt = _prompt(step["input"])
        if prompt and (trace.get("_task_at") is None or first < trace["_task_at"]):
            trace["task"], trace["_task_at"] = prompt[:MAX_TEXT], first
    # An evaluation of a call's output: a named check of its run (its spans may
    # arrive before or after).
    for trace_id, checks in evaluations.items():
        trace = traces.setdefault(trace_id, _events_run(trace_id, agents[trace_id]))
        for check in checks:
            add_check(trace, check)
        records[trace_id] = records.get(trace_id, 0) + len(checks)
    return list(traces.values()), records


def _events_run(trace_id: str, agent: str) -> dict[str, Any]:
    return {
        "external_id": trace_id, "agent": agent, "steps": [], "skills_in_scope": [],
        "metadata": {"source": "otlp"}, "_events_only": True,
    }  # fmt: skip


def _prompt(messages: Any) -> str:
    """The first user message of a call's input, in either form (`parts`, or
    `content`)."""
    return attributes_user_prompt({"gen_ai.input.messages": messages})
