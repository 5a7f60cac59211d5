"""How agents_spans.jsonl was made: the OpenAI Agents SDK 0.24.0 (`openai-agents`)
running an agent with one function tool, its model `OpenAIChatCompletionsModel`
against a local HTTP server answering the chat completions API from a script (this
machine reaches no model): a call of the tool, then an answer. Traced by Pydantic
Logfire 5.4.0's integration of the SDK (`logfire.instrument_openai_agents`, the SDK's
own trace upload off), Logfire sending nothing anywhere (`send_to_logfire=False`), its
spans going to an in-memory exporter of the OpenTelemetry SDK 1.45.2 beside it. Two
requests, the tool raising on one (the SDK hands the error back to the model).
Encoded by the SDK's OTLP encoder and written with protobuf's JSON mapping, one run a
line. Writes agents_spans.jsonl in the working directory."""

import sys
from pathlib import Path

import logfire
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_trace_processors
from google.protobuf.json_format import MessageToJson
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
logfire.configure(service_name="orders-agent-logfire", send_to_logfire=False, console=False,
                  additional_span_processors=[SimpleSpanProcessor(exporter)])  # fmt: skip
set_trace_processors([])  # no upload to OpenAI's trace store
logfire.instrument_openai_agents()


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


REPLIES: list[dict] = []
client = AsyncOpenAI(base_url=serve(REPLIES), api_key="unused")
lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    agent = Agent(name="orders", instructions="Answer questions about orders.", tools=[lookup_order],
                  model=OpenAIChatCompletionsModel(model="scripted-gpt", openai_client=client))  # fmt: skip
    print(Runner.run_sync(agent, f"Where is order {order}?").final_output)
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("agents_spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
