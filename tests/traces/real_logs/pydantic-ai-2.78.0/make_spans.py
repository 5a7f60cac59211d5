"""How the spans here were made: Pydantic AI 2.78.0 (`pydantic-ai-slim`) running
an agent with one tool, its model a `FunctionModel` scripted to call the tool
(this machine reaches no model), instrumented with its own OpenTelemetry GenAI
spans (`InstrumentationSettings`, semantic conventions version 5) into the
OpenTelemetry SDK 1.45.2. The tool raises `ModelRetry` on one order, then the
agent gives up on it. Encoded by the SDK's OTLP encoder and written with
protobuf's JSON mapping, one run a line. Writes spans.jsonl in the working
directory."""

import contextlib

from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.instrumented import InstrumentationSettings

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "orders-pydantic"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))


def scripted(order_id: str):
    def respond(messages, info: AgentInfo) -> ModelResponse:
        calls = sum(1 for m in messages for p in m.parts if p.part_kind == "tool-call")
        if calls < 2:
            return ModelResponse(parts=[ToolCallPart("lookup_order", {"order_id": order_id})])
        return ModelResponse(parts=[TextPart(f"I checked order {order_id}.")])

    return respond


Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
lines = []
for order in ("A1", "B2"):
    exporter.clear()
    agent = Agent(
        FunctionModel(scripted(order), model_name="scripted-gpt"), name="orders", retries=1
    )

    @agent.tool_plain
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id."""
        if order_id == "B2":
            raise ModelRetry("order not found: B2")
        return f"order {order_id}: 2 items, shipped"

    with contextlib.suppress(Exception):  # B2 runs out of retries: its spans say so
        agent.run_sync(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
