"""How pipeline_spans.jsonl was made: as make_spans.py, with the Agent run inside a
Haystack Pipeline (a ChatPromptBuilder that writes the user's message from the
question, then the Agent), so each component's run is traced as well as the
pipeline's. Writes pipeline_spans.jsonl in the working directory."""

import os
import shutil
import sys
from pathlib import Path

os.environ["HAYSTACK_CONTENT_TRACING_ENABLED"] = "true"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from haystack import Pipeline, tracing  # noqa: E402
from haystack.components.agents import Agent  # noqa: E402
from haystack.components.builders import ChatPromptBuilder  # noqa: E402
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
    pipeline = Pipeline()
    pipeline.add_component(
        "prompt",
        ChatPromptBuilder(
            template=[ChatMessage.from_user("Where is order {{ order }}?")],
            required_variables=["order"],
        ),
    )
    pipeline.add_component(
        "agent",
        Agent(
            chat_generator=generator,
            tools=[tool],
            system_prompt="You answer questions about orders.",
        ),
    )
    pipeline.connect("prompt.prompt", "agent.messages")
    pipeline.run({"prompt": {"order": order}})


write_runs("support-agent", instrument, run)
shutil.move("spans.jsonl", "pipeline_spans.jsonl")
