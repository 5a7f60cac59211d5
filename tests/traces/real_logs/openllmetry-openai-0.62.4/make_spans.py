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

import sys
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import order_loop, serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-loop"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()
tracer = trace.get_tracer("order-loop")

REPLIES: list[dict] = []
client = OpenAI(base_url=serve(REPLIES), api_key="unused")


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    order_loop(client, tracer, [{"role": "user", "content": f"Where is order {order}?"}])
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
