"""OTLP/HTTP trace receiver: decoding, and mapping spans to Hivemind traces.

Spans are grouped into traces by trace id (the trace's external_id is the hex
trace id). Each span becomes a step; `otlp_store.py` numbers them 0, 1, 2… in
start-time order and keeps each span id's step, so an exporter's retry, or spans
of one trace arriving in several exports, update the same steps. A span's parent
becomes its step's `parent_index`. GenAI semantic conventions (`gen_ai.*`),
OpenInference and OpenLLMetry (`traceloop.*`) attributes decide the step's kind,
name, input, output and tokens (`hivemind_client.formats.span_role`, shared with
the file importer);
span status ERROR, exception events and smolagents' `agent.step_recovery` events
become step errors, except on a span whose child failed (the failure is the
child's: one incident, not two); an agent loop's numbered turn ("Step 3") is an
"agent step" (`hivemind_client.formats.span_step_name`, shared with the file
importer);
`gen_ai.skill.name` marks skills in scope; the resource's `service.name` is the
agent. The task is the root span's input, else the first user message of the
earliest span that has one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from hivemind_client.formats import (
    GENAI_EVALUATION_EVENT,
    ROOT_OK_NO_OUTCOME,
    add_check,
    attributes_user_prompt,
    bare_span,
    crew_task,
    declared_tools,
    evaluation_check,
    events_user_prompt,
    haystack_error,
    input_task,
    langfuse_span,
    langfuse_value,
    mastra_value,
    mlflow_span,
    mlflow_value,
    only_agent_creation,
    root_ok_ignored,
    root_outcome,
    service_name,
    span_event_error,
    span_role,
    span_run_fields,
    status_error,
    status_from_checks,
)
from workspaces.textsafety import json_too_deep

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_TEXT = 100_000


class UndecodableOTLP(ValueError):
    pass


M = TypeVar("M", bound=Message)


def decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    return decode_export(body, content_type, ExportTraceServiceRequest(), _hex_ids_to_base64)


def decode_export(
    body: bytes, content_type: str, request: M, hex_ids_to_base64: Callable[[Any], None]
) -> M:
    """An OTLP export request (`request`, empty) read from a protobuf or JSON body;
    `hex_ids_to_base64` rewrites the JSON form's hex ids as protobuf's JSON mapping
    reads them. Raises UndecodableOTLP with what is wrong."""
    if content_type.startswith(PROTOBUF):
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise UndecodableOTLP(
                f"body is not an OTLP protobuf {type(request).__name__}: {exc}"
            ) from None
        return request
    try:
        data = json.loads(body)
        hex_ids_to_base64(data)
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError, TypeError, AttributeError) as exc:
        raise UndecodableOTLP(f"body is not OTLP JSON: {exc}") from None
    except RecursionError:
        raise UndecodableOTLP("body is nested too deeply to be an OTLP export") from None
    return request


def _hex_ids_to_base64(data: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    for resource_spans in data.get("resourceSpans", []) if isinstance(data, dict) else []:
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = base64.b64encode(bytes.fromhex(link[key])).decode()


def encode_response(rejected_spans: int, message: str, content_type: str) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected_spans:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected_spans, error_message=message[:2000])
        )
    return serialize(response, content_type)


def serialize(message: Message, content_type: str) -> bytes:
    """A response message as the request was sent: protobuf, else OTLP JSON."""
    if content_type.startswith(PROTOBUF):
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message)).encode()


def encode_status(code: int, message: str, content_type: str) -> bytes:
    """A google.rpc.Status body, as OTLP/HTTP asks for on errors."""
    if content_type.startswith(PROTOBUF):
        text = message.encode()[:4000]
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return json.dumps({"code": code, "message": message}).encode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind) if kind else None


def _attrs(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def _time(nanos: int) -> str | None:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC).isoformat() if nanos else None


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value[:MAX_TEXT]
        # Too deep to walk safely: keep it as the text it arrived as.
        return value[:MAX_TEXT] if json_too_deep(parsed) else parsed
    return value[:MAX_TEXT] if isinstance(value, str) else value


def span_step(span: Span, attrs: dict[str, Any]) -> dict[str, Any]:
    """One span as a native step."""
    events = [(event.name, _attrs(event.attributes)) for event in span.events]
    kind, name, step_input, output, tokens = span_role(attrs, span.name, events)
    error = span_error(span)
    return {
        "index": _span_index(span),
        "_span": span.span_id.hex() or f"i{_span_index(span)}",
        "_parent": span.parent_span_id.hex(),
        "kind": kind,
        "name": str(name)[:200],
        "input": _maybe_json(step_input),
        "output": _maybe_json(output),
        "error": error[:MAX_TEXT],
        # Carries nothing: kept only where it holds steps or names a tool (otlp_store).
        "_bare": bare_span(attrs, step_input, output, error),
        "started_at": _time(span.start_time_unix_nano),
        "duration_ms": max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        if span.end_time_unix_nano
        else None,
        "tokens": tokens or None,
    }


def _span_index(span: Span) -> int:
    """Stable across retries and batches: derived from the span id (or, for a span
    without one, from its name and start time)."""
    key = (
        span.span_id.hex()
        or hashlib.sha256(f"{span.name}{span.start_time_unix_nano}".encode()).hexdigest()
    )
    return int(key[:7], 16)


def span_error(span: Span) -> str:
    messages = []
    for event in span.events:
        text = span_event_error(event.name, _attrs(event.attributes))
        if text is not None:
            messages.append(text)
    if span.status.code == Status.STATUS_CODE_ERROR and not messages:
        messages.append(status_error(span.status.message, _attrs(span.attributes)))
    if not messages and (said := haystack_error(_attrs(span.attributes))):
        messages.append(said)
    return "\n".join(dict.fromkeys(messages))  # an exception recorded twice is one error


def to_traces(request: ExportTraceServiceRequest) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Native trace payloads, and the number of spans behind each external id."""
    traces: dict[str, dict[str, Any]] = {}
    span_counts: dict[str, int] = {}
    kinds: dict[str, list[dict[str, Any]]] = {}
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id = span.trace_id.hex()
                attrs = _attrs(span.attributes)
                trace = traces.setdefault(trace_id, _new_trace(trace_id, resource))
                span_counts[trace_id] = span_counts.get(trace_id, 0) + 1
                kinds.setdefault(trace_id, []).append(attrs)
                _merge(trace, span, attrs)
    # A trace that only creates agents is no run (the file importer's rule).
    for trace in traces.values():
        # A root span left UNSET: the harness's named checks, if it sent any, decide.
        unset = trace.pop("_root_unset", False) and "status" not in trace
        if unset and (status := status_from_checks(trace.get("checks"))):
            trace["status"] = status
        if trace.pop("_root_ok_ignored", False) and "status" not in trace:
            # Said beside its status on its page (`views._status_reason`).
            trace["metadata"]["inferred_status"] = {
                "status": "unknown",
                "reason": ROOT_OK_NO_OUTCOME,
            }
    runs = [t for trace_id, t in traces.items() if not only_agent_creation(kinds[trace_id])]
    return runs, span_counts


def _new_trace(trace_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": trace_id, "agent": service_name(resource),
        "steps": [], "skills_in_scope": [], "metadata": {"source": "otlp"},
        "_declared": set(),
    }  # fmt: skip


def _merge(trace: dict[str, Any], span: Span, attrs: dict[str, Any]) -> None:
    step = span_step(span, attrs)
    # A span sent twice (an exporter's retry, a batch re-flushed) is one step: the
    # later copy replaces the earlier, it does not reject the trace.
    same = next((i for i, s in enumerate(trace["steps"]) if s["_span"] == step["_span"]), None)
    if same is None:
        trace["steps"].append(step)
    else:
        trace["steps"][same] = step
    span_run_fields(trace, attrs)
    trace["_declared"].update(declared_tools(attrs))
    for event in span.events:
        if event.name == GENAI_EVALUATION_EVENT:
            check = evaluation_check(_attrs(event.attributes))
            if check is not None:
                add_check(trace, check)
    start, end = _time(span.start_time_unix_nano), _time(span.end_time_unix_nano)
    if start and (not trace.get("started_at") or start < trace["started_at"]):
        trace["started_at"] = start
    if end and (not trace.get("ended_at") or end > trace["ended_at"]):
        trace["ended_at"] = end
    prompt = user_prompt(span, attrs)
    if not span.parent_span_id:  # the root span speaks for the whole trace
        trace["_has_root"] = True  # and, ending last, is in the trace's last export
        code = {Status.STATUS_CODE_ERROR: "error", Status.STATUS_CODE_OK: "ok"}
        status = code.get(span.status.code, "unset")
        outcome = root_outcome(status, attrs)
        if outcome:
            trace["status"] = outcome
        else:  # unset, or an instrumentation's OK (`formats.root_outcome`)
            trace["_root_unset"] = True
            trace["_root_ok_ignored"] = root_ok_ignored(status, attrs)
        raw = (attrs.get("input.value") or attrs.get("ai.prompt") or mastra_value(attrs, "input")
               or (mlflow_value(attrs, "input") if mlflow_span(attrs) not in ("LLM", "CHAT_MODEL")
                   else None)
               or (langfuse_value(attrs, "input") if langfuse_span(attrs) != "generation"
                   else None))  # fmt: skip
        task = (input_task(raw) if raw else "") or crew_task(attrs) or prompt
        if task:
            trace["task"] = str(task)[:MAX_TEXT]
            trace["_task_from_root"] = True
    elif prompt and not trace.get("_task_from_root"):
        earliest = trace.get("_task_at")
        if earliest is None or span.start_time_unix_nano < earliest:
            trace["task"] = prompt[:MAX_TEXT]
            trace["_task_at"] = span.start_time_unix_nano


def user_prompt(span: Span, attrs: dict[str, Any]) -> str:
    """The first user message a span carries, in its attributes or its GenAI events,
    by the file importer's rule (`formats.attributes_user_prompt`,
    `formats.events_user_prompt`)."""
    events = [(event.name, _attrs(event.attributes)) for event in span.events]
    return attributes_user_prompt(attrs) or events_user_prompt(events)
