"""How the spans here were made: a DSPy 3.4.1 `ReAct` module with one tool, its
`dspy.LM` (LiteLLM's `openai/` provider) pointed at a local HTTP server answering the
chat completions API from a script (this machine reaches no model) in the text
format of DSPy's `ChatAdapter`: a thought and a call of the tool, a thought and
`finish`, then the extraction's reasoning and answer. Traced by OpenInference's DSPy
instrumentation (openinference-instrumentation-dspy 0.1.48) and the OpenTelemetry SDK
1.45.2. Two requests, the tool raising on one (DSPy hands the error back to the model
as the observation). Encoded by the SDK's OTLP encoder and written with protobuf's
JSON mapping, one run a line. Writes spans.jsonl in the working directory."""

import json
import sys
from pathlib import Path

import dspy
from google.protobuf.json_format import MessageToJson
from openinference.instrumentation.dspy import DSPyInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import serve  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-dspy"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
DSPyInstrumentor().instrument(tracer_provider=provider)

REPLIES: list[dict] = []


def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


def fields(**values: str) -> dict:
    """An assistant message in ChatAdapter's format: each output field under its
    header, then the completion marker."""
    text = "".join(f"[[ ## {name} ## ]]\n{value}\n\n" for name, value in values.items())
    return {"role": "assistant", "content": text + "[[ ## completed ## ]]"}


def script(order: str) -> list[dict]:
    found = order != "B2"
    return [
        fields(next_thought=f"I should look up order {order}.", next_tool_name="lookup_order",
               next_tool_args=json.dumps({"order_id": order})),
        fields(next_thought="I have what the tool returned." if found
               else "The tool could not find the order.", next_tool_name="finish",
               next_tool_args="{}"),
        fields(reasoning="The lookup answered." if found else "The lookup failed.",
               answer=f"Order {order} has 2 items and has shipped." if found
               else f"I could not find order {order}."),
    ]  # fmt: skip


base_url = serve(REPLIES)
dspy.configure(lm=dspy.LM("openai/scripted-gpt", api_base=base_url, api_key="unused",
                          cache=False))  # fmt: skip
lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = script(order)
    agent = dspy.ReAct("question -> answer", tools=[lookup_order], max_iters=5)
    print(agent(question=f"Where is order {order}?").answer)
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
