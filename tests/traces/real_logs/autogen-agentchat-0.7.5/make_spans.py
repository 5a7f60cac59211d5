"""How the spans here were made: AutoGen AgentChat 0.7.5 (`autogen-agentchat`,
`autogen-ext`) running an `AssistantAgent` with one tool, its model client
AutoGen's own `ReplayChatCompletionClient` (this machine reaches no model),
traced by AutoGen's built-in OpenTelemetry GenAI spans into the OpenTelemetry SDK
1.45.2. The tool raises on one order. Encoded by the SDK's OTLP encoder and
written with protobuf's JSON mapping, one run a line. Writes spans.jsonl in the
working directory."""

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelFamily, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from google.protobuf.json_format import MessageToJson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "orders-autogen"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


async def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


def replies(order_id: str) -> list:
    usage = RequestUsage(prompt_tokens=100, completion_tokens=20)
    call = FunctionCall(id="call_1", name="lookup_order", arguments=f'{{"order_id": "{order_id}"}}')
    return [
        CreateResult(finish_reason="function_calls", content=[call], usage=usage, cached=False),
        CreateResult(
            finish_reason="stop", content=f"I checked order {order_id}.", usage=usage, cached=False
        ),
    ]


async def main() -> list[str]:
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        client = ReplayChatCompletionClient(
            replies(order),
            model_info={
                "vision": False,
                "function_calling": True,
                "json_output": False,
                "family": ModelFamily.UNKNOWN,
                "structured_output": False,
            },
        )
        agent = AssistantAgent(
            "orders", model_client=client, tools=[lookup_order], reflect_on_tool_use=True
        )
        await agent.run(task=f"Where is order {order}?")
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    return lines


lines = asyncio.run(main())
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
