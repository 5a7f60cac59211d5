"""How pydantic_ai_spans.jsonl was made: a Pydantic AI 2.78.0 (`pydantic-ai-slim`)
agent with one tool, its `OpenAIChatModel` against a local HTTP server answering the
chat completions API from a script (this machine reaches no model): a call of the
tool, then an answer. Traced by Pydantic Logfire 5.4.0 (`logfire.instrument_pydantic_ai`),
which sends nothing anywhere (`send_to_logfire=False`); its spans go to an in-memory
exporter of the OpenTelemetry SDK 1.45.2 beside it. Two requests, the tool raising on
one, which ends that run (Pydantic AI re-raises a tool's exception). Encoded by the
SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line. Writes
pydantic_ai_spans.jsonl in the working directory."""

import sys
from pathlib import Path

import logfire
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
logfire.configure(service_name="orders-pydantic-ai-logfire", send_to_logfire=False,
                  console=False, additional_span_processors=[SimpleSpanProcessor(exporter)])  # fmt: skip
logfire.instrument_pydantic_ai()
REPLIES: list[dict] = []
model = OpenAIChatModel("scripted-gpt",
                        provider=OpenAIProvider(base_url=serve(REPLIES), api_key="unused"))  # fmt: skip
agent = Agent(model, instructions="Answer questions about orders.")


@agent.tool_plain
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    try:
        print(agent.run_sync(f"Where is order {order}?").output)
    except ValueError as exc:  # the tool's error ends that run; its spans say so
        print("raised", exc)
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("pydantic_ai_spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
