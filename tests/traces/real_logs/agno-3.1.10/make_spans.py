"""How the spans here were made: an Agno 3.1.10 `Agent` with one tool function, its
`OpenAIChat` model pointed at a local HTTP server answering the chat completions
API from a script (this machine reaches no model): first a call of the tool, then
an answer. Traced by OpenInference's Agno instrumentation
(openinference-instrumentation-agno 1.0.15) and the OpenTelemetry SDK 1.45.2. Two
requests, the tool raising on one (Agno hands the error back to the model).
Encoded by the SDK's OTLP encoder and written with protobuf's JSON mapping, one
run a line. Writes spans.jsonl in the working directory."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from agno.agent import Agent
from agno.models.openai import OpenAIChat
from google.protobuf.json_format import MessageToJson
from openinference.instrumentation.agno import AgnoInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-agno"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
AgnoInstrumentor().instrument(tracer_provider=provider)

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


def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


server = HTTPServer(("127.0.0.1", 0), Scripted)
threading.Thread(target=server.serve_forever, daemon=True).start()
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
    model = OpenAIChat(id="scripted-gpt", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                       api_key="unused")  # fmt: skip
    agent = Agent(name="orders", model=model, tools=[lookup_order],
                  instructions="Answer questions about orders.")  # fmt: skip
    agent.run(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
