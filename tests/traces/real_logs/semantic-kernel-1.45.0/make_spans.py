"""How the spans here were made: a Semantic Kernel 1.45.0 `ChatCompletionAgent` with
one kernel function (a plugin's tool), its OpenAI connector pointed at a local HTTP
server answering the chat completions API from a script (this machine reaches no
model): first a call of the tool, then an answer. Semantic Kernel's own GenAI
spans (`SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS=true`, set below
as a user would in the environment) and the OpenTelemetry SDK 1.45.2. Two requests,
the tool raising on one (the kernel hands the error back to the model). Encoded by
the SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

os.environ["SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS"] = "true"

from google.protobuf.json_format import MessageToJson  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from semantic_kernel.agents import ChatCompletionAgent  # noqa: E402
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion  # noqa: E402
from semantic_kernel.functions import kernel_function  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-sk"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

REPLIES: list[dict] = []


class Orders:
    @kernel_function(name="lookup_order", description="Look up an order by its id.")
    def lookup_order(self, order_id: Annotated[str, "The order's id"]) -> str:
        if order_id == "B2":
            raise ValueError("order not found: B2")
        return f"order {order_id}: 2 items, shipped"


async def main() -> None:
    base_url = serve(REPLIES)
    client = AsyncOpenAI(base_url=base_url, api_key="unused")
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        REPLIES[:] = tool_call_then_answer(order, "Orders-lookup_order")
        agent = ChatCompletionAgent(
            service=OpenAIChatCompletion(ai_model_id="scripted-gpt", async_client=client),
            name="orders",
            instructions="Answer questions about orders.",
            plugins=[Orders()],
        )
        await agent.get_response(messages=f"Where is order {order}?")
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")


asyncio.run(main())
