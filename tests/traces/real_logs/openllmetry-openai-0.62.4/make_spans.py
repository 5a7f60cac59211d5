"""How the spans here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, instrumented by OpenLLMetry's OpenAI instrumentation
(opentelemetry-instrumentation-openai 0.62.4) and the OpenTelemetry SDK 1.45.2,
the application's own spans around the request and each tool run (plain
OpenTelemetry, an exception recorded on the one that raises). The model is a
local HTTP server answering the chat completions API from a script (this machine
reaches no model): first a call of the tool, then an answer. Two requests, the
tool raising on one; the loop hands the error back to the model. Encoded by the
SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.json_format import MessageToJson
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-loop"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()
tracer = trace.get_tracer("order-loop")

REPLIES: list[dict] = []


class Scripted(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        message = REPLIES.pop(0)
        body = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_780_000_000,
            "model": "scripted-gpt",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135},
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
client = OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="unused")
TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}]  # fmt: skip


def lookup_order(order_id: str) -> str:
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "lookup_order", "arguments": json.dumps({"order_id": order})}}]},
        {"role": "assistant", "content": "I could not find order B2." if order == "B2"
         else f"Order {order} has shipped."},
    ]  # fmt: skip
    messages: list = [{"role": "user", "content": f"Where is order {order}?"}]
    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.chat.completions.create(model="scripted-gpt", messages=messages,
                                                   tools=TOOLS)  # fmt: skip
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                break
            for call in message.tool_calls:
                with tracer.start_as_current_span(call.function.name) as span:
                    try:
                        result = lookup_order(**json.loads(call.function.arguments))
                    except ValueError as exc:
                        span.record_exception(exc)
                        span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                        result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
