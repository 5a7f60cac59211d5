"""How the spans here were made: Haystack 3.4.1's Agent (haystack-ai) with its
OpenTelemetry tracer (opentelemetry-haystack 2.0.0; HAYSTACK_CONTENT_TRACING_ENABLED
set, so inputs and outputs are traced) and the OpenTelemetry SDK 1.45.2. The
agent's OpenAIChatGenerator calls the local scripted chat-completions server
(scripted_chat_server.py beside this folder; this machine reaches no model), which
answers with a call of the tool and then a reply; the tool raises on order B2, and
Haystack hands its error back to the model. Writes spans.jsonl in the working
directory: each run's spans encoded by the SDK's OTLP encoder, one run a line."""

import os
import sys
from pathlib import Path

os.environ["HAYSTACK_CONTENT_TRACING_ENABLED"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from haystack import tracing  # noqa: E402
from haystack.components.agents import Agent  # noqa: E402
from haystack.components.generators.chat import OpenAIChatGenerator  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack.tools import Tool  # noqa: E402
from haystack.utils import Secret  # noqa: E402
from haystack_integrations.tracing.opentelemetry import OpenTelemetryTracer  # noqa: E402
from scripted_chat_server import lookup_order, serve, tool_call_then_answer, write_runs  # noqa: E402

replies: list[dict] = []
base_url = serve(replies)


def instrument(provider):
    tracing.enable_tracing(OpenTelemetryTracer(provider.get_tracer("support-agent")))


def run(tracer, order):
    replies[:] = tool_call_then_answer(order)
    tool = Tool(
        name="lookup_order",
        description="Look up an order by its id.",
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        function=lookup_order,
    )
    generator = OpenAIChatGenerator(
        api_key=Secret.from_token("none"), model="scripted-gpt", api_base_url=base_url
    )
    agent = Agent(
        chat_generator=generator, tools=[tool], system_prompt="You answer questions about orders."
    )
    agent.run(messages=[ChatMessage.from_user(f"Where is order {order}?")])


write_runs("support-agent", instrument, run)
