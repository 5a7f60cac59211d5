"""A local server answering OpenAI's chat completions API from a script, for the
generator scripts beside it whose tools call a model through the OpenAI SDK (this
machine reaches no model). Standard library only: each script runs in its own
tool's virtualenv."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def _serve(answer: Any) -> int:
    """Start a server answering each POST with the JSON `answer()` returns; its port."""

    class Scripted(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(answer()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_port


def serve(replies: list[dict]) -> str:
    """Start a server that answers each request with the next message of `replies`
    (an assistant message: content, or tool calls), 120 prompt and 15 completion
    tokens each; returns its base URL (`http://127.0.0.1:PORT/v1`). The list may be
    refilled between runs."""

    def answer() -> dict:
        message = replies.pop(0)
        return {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_780_000_000,
            "model": "scripted-gpt",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135},
        }  # fmt: skip

    return f"http://127.0.0.1:{_serve(answer)}/v1"


def tool_call_then_answer(order: str, tool: str = "lookup_order") -> list[dict]:
    """The two turns every scripted run here takes: a call of the tool for the
    order, then an answer (that the order was not found, for B2)."""
    return [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": tool, "arguments": json.dumps({"order_id": order})}}]},
        {"role": "assistant", "content": "I could not find order B2." if order == "B2"
         else f"Order {order} has shipped."},
    ]  # fmt: skip


# The tool the hand-written loops below offer their model.
ORDER_TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}]  # fmt: skip


def lookup_order(order_id: str) -> str:
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


def order_loop(client: Any, tracer: Any, messages: list, trace_tools: bool = True) -> None:
    """A hand-written tool-calling loop over the OpenAI SDK's `client`: the request in
    a span of the application's own (`tracer`), each tool run in another, whose
    exception is recorded and its status set to ERROR when it raises (untraced when
    not `trace_tools`); the error is handed back to the model. (OpenTelemetry is the
    calling script's.)"""
    import contextlib

    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.chat.completions.create(model="scripted-gpt", messages=messages,
                                                   tools=ORDER_TOOLS)  # fmt: skip
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return
            for call in message.tool_calls:
                run = (tracer.start_as_current_span(call.function.name) if trace_tools
                       else contextlib.nullcontext())  # fmt: skip
                with run as span:
                    try:
                        result = lookup_order(**json.loads(call.function.arguments))
                    except ValueError as exc:
                        if span is not None:
                            span.record_exception(exc)
                            span.set_status(Status(StatusCode.ERROR, str(exc)))
                        result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


def serve_messages(replies: list[list[dict]]) -> str:
    """A server answering Anthropic's Messages API with the next content blocks of
    `replies` (120 input and 15 output tokens each); returns its base URL."""

    def answer() -> dict:
        content = replies.pop(0)
        calls = any(b["type"] == "tool_use" for b in content)
        return {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "scripted-claude",
            "content": content, "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 120, "output_tokens": 15},
        }  # fmt: skip

    return f"http://127.0.0.1:{_serve(answer)}"


def write_runs(service: str, instrument: Any, run: Any) -> None:
    """The OpenTelemetry SDK set up for `service`, `instrument(provider)` called, then
    `run(tracer, order)` for orders A1 and B2; each run's spans encoded by the SDK's
    OTLP encoder and written with protobuf's JSON mapping, one run a line, to
    spans.jsonl in the working directory. (The SDK is the calling script's.)"""
    from google.protobuf.json_format import MessageToJson
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument(provider)
    tracer = trace.get_tracer(service)
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        run(tracer, order)
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")


def anthropic_order_loop(client: Any, tracer: Any, order: str, replies: list) -> None:
    """A hand-written tool-calling loop over the Anthropic SDK's `client` (served by
    `serve_messages(replies)`): the request in a span of the application's own
    (`tracer`), the tool run untraced, its error sent back as a `tool_result` with
    `is_error`."""
    tools = [{"name": "lookup_order", "description": "Look an order up by its id.",
              "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}},
                               "required": ["order_id"]}}]  # fmt: skip
    replies[:] = [
        [{"type": "text", "text": "Let me look that up."},
         {"type": "tool_use", "id": f"toolu_{order}", "name": "lookup_order",
          "input": {"order_id": order}}],
        [{"type": "text", "text": f"Order {order} is shipped." if order != "B2"
          else f"I could not find order {order}."}],
    ]  # fmt: skip
    messages: list[dict] = [{"role": "user", "content": f"Where is order {order}?"}]
    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.messages.create(model="scripted-claude", max_tokens=256,
                                           system="You answer questions about orders.",
                                           tools=tools, messages=messages)  # fmt: skip
            messages.append(
                {"role": "assistant", "content": [b.model_dump() for b in reply.content]}
            )
            uses = [b for b in reply.content if b.type == "tool_use"]
            if not uses:
                return
            results = []
            for use in uses:
                try:
                    results.append({"type": "tool_result", "tool_use_id": use.id,
                                    "content": lookup_order(**use.input)})  # fmt: skip
                except ValueError as exc:
                    results.append({"type": "tool_result", "tool_use_id": use.id,
                                    "content": f"Error: {exc}", "is_error": True})  # fmt: skip
            messages.append({"role": "user", "content": results})


def write_anthropic_runs(instrumentor: Any) -> None:
    """`anthropic_order_loop` for orders A1 and B2 against `serve_messages`, the SDK
    instrumented by `instrumentor` (an OpenTelemetry instrumentor class), written by
    `write_runs`. (The Anthropic SDK is the calling script's.)"""
    import anthropic

    replies: list[list[dict]] = []
    client = anthropic.Anthropic(base_url=serve_messages(replies), api_key="unused")
    write_runs(
        "order-desk",
        lambda provider: instrumentor().instrument(tracer_provider=provider),
        lambda tracer, order: anthropic_order_loop(client, tracer, order, replies),
    )
