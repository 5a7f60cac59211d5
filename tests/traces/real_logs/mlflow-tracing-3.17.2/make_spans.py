"""How the spans here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, traced by MLflow (mlflow-tracing 3.17.2, with sqlparse and PyYAML, which its autologging imports and it does not require): `mlflow.openai.autolog()`
for the model calls, the loop and the tool in `@mlflow.trace` spans of the
application's own (AGENT and TOOL), exported as MLflow exports to an OpenTelemetry
Collector (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, OTLP/HTTP protobuf; the OpenTelemetry
SDK 1.45.2). The model is the local scripted chat-completions server
(scripted_chat_server.py beside this folder; this machine reaches no model); the tool
raises on order B2, and the loop hands its error back to the model. The collector
here is a local HTTP server that keeps each request MLflow's exporter posted; each is
written with protobuf's JSON mapping, one export a line, to spans.jsonl in the
working directory."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import ORDER_TOOLS, serve, tool_call_then_answer  # noqa: E402

exports: list[bytes] = []


class Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        exports.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


collector = HTTPServer(("127.0.0.1", 0), Collector)
threading.Thread(target=collector.serve_forever, daemon=True).start()
os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = (
    f"http://127.0.0.1:{collector.server_port}/v1/traces"
)
os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
os.environ["OTEL_SERVICE_NAME"] = "support-agent"

import mlflow  # noqa: E402
from google.protobuf.json_format import MessageToJson  # noqa: E402
from mlflow.entities import SpanType  # noqa: E402
from mlflow.tracing.provider import provider as mlflow_provider  # noqa: E402
from openai import OpenAI  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

mlflow.openai.autolog()
replies: list[dict] = []
client = OpenAI(base_url=serve(replies), api_key="none")


@mlflow.trace(span_type=SpanType.TOOL)
def lookup_order(order_id: str) -> str:
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


@mlflow.trace(span_type=SpanType.AGENT)
def handle_request(question: str) -> str:
    messages = [{"role": "user", "content": question}]
    while True:
        reply = client.chat.completions.create(
            model="scripted-gpt", messages=messages, tools=ORDER_TOOLS
        )
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            try:
                result = lookup_order(**json.loads(call.function.arguments))
            except ValueError as exc:
                result = f"error: {exc}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


lines = []
for order in ("A1", "B2"):
    replies[:] = tool_call_then_answer(order)
    exports.clear()
    handle_request(f"Where is order {order}?")
    mlflow_provider.get().force_flush()  # its OTLP export batches spans
    for body in exports:
        lines.append(MessageToJson(ExportTraceServiceRequest.FromString(body), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
