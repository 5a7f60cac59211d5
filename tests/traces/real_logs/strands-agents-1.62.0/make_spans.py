"""How the spans here were made: Strands Agents 1.62.0 (`strands-agents`)
running an agent with one tool, its model a scripted `Model` streaming Bedrock
Converse events as Strands' model providers do (this machine reaches no model),
traced by Strands' built-in OpenTelemetry GenAI spans into the OpenTelemetry SDK
1.45.1. The tool raises on one order. Encoded by the SDK's OTLP encoder and
written with protobuf's JSON mapping, one run a line. Writes spans.jsonl in the
working directory."""

import json

from google.protobuf.json_format import MessageToJson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from strands import Agent, tool
from strands.models import Model

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "orders-strands"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id.

    Args:
        order_id: the order's id
    """
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


USAGE = {
    "metadata": {
        "usage": {"inputTokens": 100, "outputTokens": 20, "totalTokens": 120},
        "metrics": {"latencyMs": 5},
    }
}


class Scripted(Model):
    def __init__(self, order_id: str) -> None:
        self.order_id, self.turn = order_id, 0

    def update_config(self, **config):
        pass

    def get_config(self):
        return {"model_id": "scripted-model"}

    async def structured_output(self, *args, **kwargs):
        raise NotImplementedError
        yield

    async def stream(self, messages, tool_specs=None, system_prompt=None, **kwargs):
        self.turn += 1
        yield {"messageStart": {"role": "assistant"}}
        if self.turn == 1:
            yield {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup_order"}}
                }
            }
            yield {
                "contentBlockDelta": {
                    "delta": {"toolUse": {"input": json.dumps({"order_id": self.order_id})}}
                }
            }
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        else:
            yield {"contentBlockDelta": {"delta": {"text": f"I checked order {self.order_id}."}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        yield USAGE


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    agent = Agent(model=Scripted(order), tools=[lookup_order], name="orders", callback_handler=None)
    agent(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
