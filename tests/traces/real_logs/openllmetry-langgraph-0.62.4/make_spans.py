"""How the spans here were made: a LangGraph 1.2.24 prebuilt ReAct agent
(`create_react_agent`) whose model is langchain-openai 1.8.1's `ChatOpenAI` pointed at
a local HTTP server answering the chat completions API from a script (this machine
reaches no model): a call of the tool, then an answer. Traced by OpenLLMetry's
LangChain instrumentation (opentelemetry-instrumentation-langchain 0.62.4) and the
OpenTelemetry SDK 1.45.2, with content traced (its default). The tool raises on one
order, which ends that run (LangGraph's ToolNode re-raises it). Encoded by the SDK's
OTLP encoder and written with protobuf's JSON mapping, one run a line. Writes
spans.jsonl in the working directory."""

import contextlib
import sys
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "refund-graph"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
LangchainInstrumentor().instrument(tracer_provider=provider)

REPLIES: list[dict] = []


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


base_url = serve(REPLIES)
lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    model = ChatOpenAI(model="scripted-gpt", base_url=base_url, api_key="unused")
    agent = create_react_agent(model, [lookup_order])
    with contextlib.suppress(ValueError):  # the tool's error ends that run; its spans say so
        agent.invoke({"messages": [("user", f"Where is order {order}?")]})
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
