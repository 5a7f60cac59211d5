"""How the spans here were made: an Agno 3.1.10 `Agent` with one tool function, its
`OpenAIChat` model pointed at a local HTTP server answering the chat completions
API from a script (this machine reaches no model): first a call of the tool, then
an answer. Traced by OpenInference's Agno instrumentation
(openinference-instrumentation-agno 1.0.15) and the OpenTelemetry SDK 1.45.2. Two
requests, the tool raising on one (Agno hands the error back to the model).
Encoded by the SDK's OTLP encoder and written with protobuf's JSON mapping, one
run a line. Writes spans.jsonl in the working directory."""

import sys
from pathlib import Path

from agno.agent import Agent
from agno.models.openai import OpenAIChat
from google.protobuf.json_format import MessageToJson
from openinference.instrumentation.agno import AgnoInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-agno"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
AgnoInstrumentor().instrument(tracer_provider=provider)

REPLIES: list[dict] = []


def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


base_url = serve(REPLIES)
lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    model = OpenAIChat(id="scripted-gpt", base_url=base_url,
                       api_key="unused")  # fmt: skip
    agent = Agent(name="orders", model=model, tools=[lookup_order],
                  instructions="Answer questions about orders.")  # fmt: skip
    agent.run(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
