"""How the spans here were made: a hand-written tool-calling loop over the Anthropic
Python SDK 2.17.0, instrumented by OpenInference's Anthropic instrumentation
(openinference-instrumentation-anthropic 3.1.0, Arize Phoenix's) and the
OpenTelemetry SDK 1.45.2; the same loop as `../openllmetry-anthropic-0.62.4/`.
The application traces its request with a span of its own and runs its tool
untraced: the tool calls are only in the model calls' messages (Claude's `tool_use`
blocks, the results as `tool_result` blocks in the next call's user turn). The
model is a local HTTP server answering the Messages API from a script (this
machine reaches no model): a tool call, then an answer. Two requests, the tool
failing on one (the loop sends the error back with `is_error`). Encoded by the
SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import anthropic
from google.protobuf.json_format import MessageToJson
from openinference.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

REPLIES: list[dict] = []


class Scripted(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        content = REPLIES.pop(0)
        body = json.dumps({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "scripted-claude",
            "content": content,
            "stop_reason": "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 120, "output_tokens": 15},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = HTTPServer(("127.0.0.1", 0), Scripted)
threading.Thread(target=server.serve_forever, daemon=True).start()

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-desk"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
AnthropicInstrumentor().instrument(tracer_provider=provider)
tracer = trace.get_tracer("order-desk")
client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{server.server_port}", api_key="unused")
TOOLS = [{"name": "lookup_order", "description": "Look an order up by its id.",
          "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}},
                           "required": ["order_id"]}}]  # fmt: skip
ORDERS = {"A1": "order A1: 2 items, shipped"}


def lookup_order(order_id: str) -> str:
    if order_id not in ORDERS:
        raise ValueError(f"order not found: {order_id}")
    return ORDERS[order_id]


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = [
        [{"type": "text", "text": "Let me look that up."},
         {"type": "tool_use", "id": f"toolu_{order}", "name": "lookup_order",
          "input": {"order_id": order}}],
        [{"type": "text", "text": f"Order {order} is shipped." if order in ORDERS
          else f"I could not find order {order}."}],
    ]  # fmt: skip
    messages: list[dict] = [{"role": "user", "content": f"Where is order {order}?"}]
    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.messages.create(model="scripted-claude", max_tokens=256,
                                           system="You answer questions about orders.",
                                           tools=TOOLS, messages=messages)  # fmt: skip
            messages.append(
                {"role": "assistant", "content": [b.model_dump() for b in reply.content]}
            )
            uses = [b for b in reply.content if b.type == "tool_use"]
            if not uses:
                break
            results = []
            for use in uses:
                try:
                    results.append({"type": "tool_result", "tool_use_id": use.id,
                                    "content": lookup_order(**use.input)})  # fmt: skip
                except ValueError as exc:
                    results.append({"type": "tool_result", "tool_use_id": use.id,
                                    "content": f"Error: {exc}", "is_error": True})  # fmt: skip
            messages.append({"role": "user", "content": results})
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
