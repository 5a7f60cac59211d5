"""How the spans here were made: a LangGraph 1.2.24 prebuilt ReAct agent
(`create_react_agent`) with langchain-core 1.8.3's fake chat model scripted to
call a tool (this machine reaches no model), traced by OpenInference's LangChain
instrumentation (openinference-instrumentation-langchain 0.1.80) and the
OpenTelemetry SDK 1.45.2. The tool raises on one order,
which ends that run (LangGraph's ToolNode re-raises it). Encoded by the SDK's OTLP
encoder and written with protobuf's JSON mapping, one run a line. Writes
spans.jsonl in the working directory."""

import contextlib

from google.protobuf.json_format import MessageToJson
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "refund-graph"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
LangChainInstrumentor().instrument(tracer_provider=provider)


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


class Scripted(FakeMessagesListChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


def reply(content: str, calls: list[dict]) -> AIMessage:
    return AIMessage(
        content=content,
        tool_calls=calls,
        usage_metadata={"input_tokens": 120, "output_tokens": 15, "total_tokens": 135},
        response_metadata={"model_name": "scripted-gpt"},
    )


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    model = Scripted(
        responses=[
            reply("", [{"name": "lookup_order", "args": {"order_id": order}, "id": "call_1"}]),
            reply(f"I checked order {order}.", []),
        ]
    )
    agent = create_react_agent(model, [lookup_order])
    with contextlib.suppress(ValueError):  # the tool's error ends that run; its spans say so
        agent.invoke({"messages": [("user", f"Where is order {order}?")]})
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
