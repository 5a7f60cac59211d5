"""How the spans here were made: a Microsoft Agent Framework 1.26.0 `Agent`
(`agent-framework-core`, the successor of Semantic Kernel's and AutoGen's agents)
with one tool, its `OpenAIChatCompletionClient` (`agent-framework-openai`) pointed
at a local HTTP server answering the chat completions API from a script (this
machine reaches no model): first a call of the tool, then an answer. The
framework's own GenAI spans with sensitive data on (`enable_instrumentation`, as a
user turns on to see prompts and tool arguments) and the OpenTelemetry SDK 1.45.2.
Two requests, the tool raising on one (the framework hands the error back to the
model). Encoded by the SDK's OTLP encoder and written with protobuf's JSON
mapping, one run a line: spans.jsonl in the working directory.

Then the same two requests through a workflow (`agent-framework-orchestrations`'
`SequentialBuilder`: the agent, then a reviewer agent), whose runtime adds spans of
its own (the workflow's build on a trace of its own, its run, each executor's
processing, edge groups, message sends). Written one span a line, in the order they
ended, as a simple span processor exports them: workflow_spans.jsonl."""

import asyncio
import sys
from pathlib import Path

from agent_framework import Agent, tool
from agent_framework.observability import enable_instrumentation
from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework.orchestrations import SequentialBuilder
from google.protobuf.json_format import MessageToJson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-maf"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
enable_instrumentation(enable_sensitive_data=True)

REPLIES: list[dict] = []


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


async def main() -> None:
    base_url = serve(REPLIES)
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        REPLIES[:] = tool_call_then_answer(order)
        agent = Agent(
            client=OpenAIChatCompletionClient(
                model="scripted-gpt", base_url=base_url, api_key="unused"
            ),
            name="orders",
            instructions="Answer questions about orders.",
            tools=[lookup_order],
        )
        await agent.run(f"Where is order {order}?")
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")
    exporter.clear()
    for order in ("A1", "B2"):
        REPLIES[:] = tool_call_then_answer(order) + [
            {"role": "assistant", "content": "Reviewed: the answer is right."}
        ]
        client = OpenAIChatCompletionClient(model="scripted-gpt", base_url=base_url,
                                            api_key="unused")  # fmt: skip
        agent = Agent(client=client, name="orders", instructions="Answer questions about orders.",
                      tools=[lookup_order])  # fmt: skip
        reviewer = Agent(client=client, name="reviewer", instructions="Review the answer.")
        workflow = SequentialBuilder(participants=[agent, reviewer]).build()
        await workflow.run(f"Where is order {order}?")
    spans = exporter.get_finished_spans()
    with open("workflow_spans.jsonl", "w") as out:
        out.write("".join(MessageToJson(encode_spans([s]), indent=None) + "\n" for s in spans))
    print(len(spans), "workflow spans")


asyncio.run(main())
