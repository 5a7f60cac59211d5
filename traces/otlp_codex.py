"""Codex CLI's OpenTelemetry events (OTLP logs at `/v1/logs`), a run per conversation.

Codex sends its events as OTLP log records when its config has an `[otel]` table
with an exporter (`exporter = { otlp-http = { endpoint = "<base>/v1/logs", ... } }`),
each with `event.name` (`codex.*`), `conversation.id`, `event.timestamp` and
`model`. Each conversation is a run, `codex-events-<conversation>`, and each event
that says what happened is a step:

- `codex.user_prompt`: the prompt (its text with `log_user_prompt = true`); the
  first is the run's task;
- `codex.sse_event` that completes a response (`response.completed`, with its
  token counts): a model call, with the model and its tokens (input and output);
- `codex.api_request` that failed (an HTTP status of 400 or more, or an error
  message): a model call that failed, with the error;
- `codex.tool_result`: the tool's call, with its arguments, output and duration;
  failed when Codex says so (`success` false) or when its output states a
  non-zero exit code ("Process exited with code 1", as in rollouts: Codex counts
  a command that ran and exited 1 a success);
- `codex.tool_decision` that does not approve a call: a failed call (no
  `tool_result` follows it).

The events carry no sequence number: each step is keyed by a digest of what
identifies its event (its name, time, call id) and placed by its time, as spans
are (`otlp_store.otlp_ingest`), so an exporter's retry, or a conversation's
events arriving export by export, update the same steps. The events do not say
how a session ended, so the run is `unknown` until an outcome is sent. A
conversation that Codex's hooks or an imported rollout capture already (a run
`codex-<conversation>`, the fuller record) is left to them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from hivemind_client.formats import codex_result

from .otlp import MAX_TEXT, any_value
from .otlp_logs import non_negative_int as _int

AGENT = "codex"
RUN_PREFIX = "codex-events-"
UNKNOWN_WHY = (
    "Codex's events do not say how a session ended; an outcome sent for this run will decide"
)


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _arguments(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value[:MAX_TEXT]
    return _text(value) or None


def _step(name: str, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The step an event makes, or None for one that says nothing of the run."""
    model = str(attrs.get("model") or "")[:200]
    if name == "codex.user_prompt":
        return {"kind": "user_prompt", "input": _text(attrs.get("prompt")) or None}
    if name == "codex.sse_event":
        if attrs.get("event.kind") != "response.completed" or "input_token_count" not in attrs:
            return None  # the stream's other events, and the copy without counts
        counts = [_int(attrs.get(k)) for k in ("input_token_count", "output_token_count")]
        return {"kind": "llm_call", "name": model, "tokens": sum(n or 0 for n in counts) or None}
    if name == "codex.api_request":
        status = _int(attrs.get("http.response.status_code"))
        error = _text(attrs.get("error.message"))
        if not error and (status is None or status < 400):
            return None  # answered: the response's completion is the call
        said = error or "the model API answered an error"
        return {"kind": "llm_call", "name": model, "duration_ms": _int(attrs.get("duration_ms")),
                "error": f"{said} (HTTP {status})" if status else said}  # fmt: skip
    if name == "codex.tool_result":
        output, exit_code = codex_result(attrs.get("output"))
        failed = str(attrs.get("success", "true")).lower() == "false" or exit_code not in (None, 0)
        return {"kind": "tool_call", "name": str(attrs.get("tool_name") or "tool")[:200],
                "input": _arguments(attrs.get("arguments")), "output": output[:MAX_TEXT] or None,
                "duration_ms": _int(attrs.get("duration_ms")),
                "error": (output or "the tool call did not succeed")[:MAX_TEXT] if failed else ""}  # fmt: skip
    if name == "codex.tool_decision":
        decision = str(attrs.get("decision") or "").lower()
        if decision.startswith("approved"):
            return None  # its tool_result is the call
        source = attrs.get("source")
        return {"kind": "tool_call", "name": str(attrs.get("tool_name") or "tool")[:200],
                "error": f"The call was not permitted ({decision or 'not approved'}"
                + (f", by {source})." if source else ").")}  # fmt: skip
    return None


def _when(attrs: dict[str, Any], nanos: int) -> tuple[int, str | None]:
    """The event's time in nanoseconds (the record's, else its `event.timestamp`) and
    as text."""
    if not nanos and isinstance(attrs.get("event.timestamp"), str):
        try:
            stamp = datetime.fromisoformat(attrs["event.timestamp"].replace("Z", "+00:00"))
            nanos = int(stamp.timestamp() * 1e9)
        except ValueError:
            nanos = 0
    return nanos, datetime.fromtimestamp(nanos / 1e9, tz=UTC).isoformat() if nanos else None


def to_traces(request: ExportLogsServiceRequest) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each conversation's steps, as `otlp_store.otlp_ingest` takes them, and the
    number of records behind each run."""
    traces: dict[str, dict[str, Any]] = {}
    records: dict[str, int] = {}
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attrs = {kv.key: any_value(kv.value) for kv in record.attributes}
                name = str(attrs.get("event.name") or "")
                conversation = attrs.get("conversation.id")
                if (
                    not name.startswith("codex.")
                    or not isinstance(conversation, str)
                    or not conversation
                ):
                    continue
                external_id = f"{RUN_PREFIX}{conversation}"[:200]
                trace = traces.setdefault(external_id, {
                    "external_id": external_id, "agent": AGENT, "session_id": conversation[:200],
                    "steps": [], "skills_in_scope": [], "_events_only": True,
                    "metadata": {"source": "otlp",
                                 "inferred_status": {"status": "unknown", "reason": UNKNOWN_WHY}},
                })  # fmt: skip
                records[external_id] = records.get(external_id, 0) + 1
                if attrs.get("model") and not trace.get("model"):
                    trace["model"] = str(attrs["model"])[:200]
                step = _step(name, attrs)
                nanos, when = _when(attrs, record.time_unix_nano or record.observed_time_unix_nano)
                if when and (not trace.get("started_at") or when < trace["started_at"]):
                    trace["started_at"] = when
                if when and (not trace.get("ended_at") or when > trace["ended_at"]):
                    trace["ended_at"] = when
                if step is None:
                    continue
                key = hashlib.sha256(
                    json.dumps([name, nanos, attrs.get("call_id"), attrs.get("attempt"),
                                attrs.get("event.timestamp")]).encode()
                ).hexdigest()[:16]  # fmt: skip
                # A result is sent when its call ended: the call began its duration before.
                began = nanos - int((step.get("duration_ms") or 0) * 1e6) if nanos else 0
                step.update(
                    {"index": 0, "_span": key, "_parent": "", "started_at": _when({}, began)[1]}
                )
                step.setdefault("error", "")
                trace["steps"].append(step)
                if (
                    step["kind"] == "user_prompt"
                    and step.get("input")
                    and (trace.get("_task_at") is None or nanos < trace["_task_at"])
                ):
                    trace["task"], trace["_task_at"] = step["input"], nanos
    return list(traces.values()), records
