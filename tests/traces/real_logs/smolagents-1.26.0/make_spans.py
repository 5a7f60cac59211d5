"""How the spans here were made: smolagents 1.26.0 with OpenInference's
instrumentation (openinference-instrumentation-smolagents 0.1.43) and the
OpenTelemetry SDK 1.45.2. A scripted model (this machine reaches none) answers
with tool calls; the tool fails on one order. The spans are encoded by the SDK's
own OTLP encoder and written with protobuf's JSON mapping, one export a line (as
the Collector's file exporter writes them, except that protobuf writes ids in
base64 where the Collector writes hex). Writes spans.jsonl in the working
directory."""

from google.protobuf.json_format import MessageToJson
from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from smolagents import ToolCallingAgent, tool
from smolagents.models import (
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    MessageRole,
    Model,
)
from smolagents.monitoring import TokenUsage

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
SmolagentsInstrumentor().instrument(tracer_provider=provider)


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: the order's id
    """
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(Model):
    def __init__(self, order_id: str):
        super().__init__(model_id="scripted-model")
        self.order_id, self.turn = order_id, 0

    def generate(
        self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kwargs
    ):
        self.turn += 1
        if self.turn == 1:
            name, args = "lookup_order", {"order_id": self.order_id}
        else:
            name, args = "final_answer", {"answer": f"Checked order {self.order_id}."}
        call = ChatMessageToolCall(
            id=f"call_{self.turn}",
            type="function",
            function=ChatMessageToolCallFunction(name=name, arguments=args),
        )
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content="",
            tool_calls=[call],
            token_usage=TokenUsage(input_tokens=100, output_tokens=20),
        )


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    agent = ToolCallingAgent(tools=[lookup_order], model=Scripted(order), max_steps=3)
    agent.run(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
