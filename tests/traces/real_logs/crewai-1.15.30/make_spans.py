"""How the spans here were made: a CrewAI 1.15.30 crew of one agent with one tool
and one task, run on two requests, with a scripted `BaseLLM` writing the ReAct
text a model would (this machine reaches no model), traced by OpenInference's
CrewAI instrumentation (openinference-instrumentation-crewai 1.1.21) and the
OpenTelemetry SDK 1.45.2, CrewAI's own telemetry off. The tool raises on one
order; CrewAI hands the error back to the agent, which gives up. Encoded by the
SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import os

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"

from typing import Any  # noqa: E402

from crewai import Agent, BaseLLM, Crew, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402
from google.protobuf.json_format import MessageToJson  # noqa: E402
from openinference.instrumentation.crewai import CrewAIInstrumentor  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-crew"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
CrewAIInstrumentor().instrument(tracer_provider=provider)


@tool("lookup_order")
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(BaseLLM):
    replies: list[str] = []

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        **kwargs: Any,
    ) -> str:
        return self.replies.pop(0)

    def supports_function_calling(self) -> bool:
        return False


lines = []
for order, answer in (
    ("A1", "Order A1 has 2 items and has shipped."),
    ("B2", "I could not find order B2."),
):
    exporter.clear()
    llm = Scripted(
        model="scripted-react",
        replies=[
            "Thought: I need to look the order up.\nAction: lookup_order\n"
            f'Action Input: {{"order_id": "{order}"}}',
            f"Thought: I now know the final answer\nFinal Answer: {answer}",
        ],
    )
    agent = Agent(
        role="Order desk",
        goal="Answer questions about orders",
        backstory="You look orders up.",
        tools=[lookup_order],
        llm=llm,
        max_iter=3,
        verbose=False,
    )
    task = Task(
        description=f"Where is order {order}?", expected_output="Where the order is.", agent=agent
    )
    Crew(agents=[agent], tasks=[task], verbose=False).kickoff()
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
