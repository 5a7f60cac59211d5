"""How the spans here were made: a Google ADK 2.13.0 `LlmAgent` with one function
tool, run on two requests by an `InMemoryRunner`, with a scripted `BaseLlm`
answering as a model would (this machine reaches no model), traced by ADK's own
OpenTelemetry spans and the OpenTelemetry SDK 1.44.0. The tool raises on one
order, which ends that run. Message content is captured on the spans (the GenAI
conventions' opt-in, set below as a user would in the environment). Encoded by
the SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator

os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_request import LlmRequest  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402
from google.protobuf.json_format import MessageToJson  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-adk"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(BaseLlm):
    replies: list[types.Content] = []

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        yield LlmResponse(
            content=self.replies.pop(0),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=120, candidates_token_count=15, total_token_count=135
            ),
        )


async def main() -> None:
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        call = types.Part.from_function_call(name="lookup_order", args={"order_id": order})
        model = Scripted(model="scripted-gemini", replies=[
            types.Content(role="model", parts=[call]),
            types.Content(role="model", parts=[types.Part(text=f"Order {order} has shipped.")]),
        ])  # fmt: skip
        agent = LlmAgent(name="orders", model=model, instruction="Answer questions about orders.",
                         tools=[lookup_order])  # fmt: skip
        runner = InMemoryRunner(agent=agent, app_name="order-desk")
        session = await runner.session_service.create_session(app_name="order-desk", user_id="u1")
        message = types.Content(role="user", parts=[types.Part(text=f"Where is order {order}?")])
        with contextlib.suppress(ValueError):  # the tool's error ends that run
            async for _ in runner.run_async(user_id="u1", session_id=session.id,
                                            new_message=message):  # fmt: skip
                pass
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")


asyncio.run(main())
