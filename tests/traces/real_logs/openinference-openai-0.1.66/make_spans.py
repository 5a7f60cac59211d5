"""How the spans here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, instrumented by OpenInference's OpenAI instrumentation
(openinference-instrumentation-openai 0.1.66) and the OpenTelemetry SDK 1.45.2, as
an application traced for Arize Phoenix at its model client alone: the request has a
span of the application's, the tool runs none, so its calls are only in the model
calls' messages (flattened `llm.output_messages.*` attributes) and their results in
the next call's input. The model is a local HTTP server answering the chat
completions API from a script (`scripted_chat_server.py`; this machine reaches no
model): a tool call, then an answer. Two requests, the tool failing on one (the
loop hands the error back). Encoded by the SDK's OTLP encoder and written with
protobuf's JSON mapping, one run a line. Writes spans.jsonl in the working
directory."""

import json
import sys
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from openai import OpenAI
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import ORDER_TOOLS, lookup_order, serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-phoenix"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = trace.get_tracer("order-phoenix")

REPLIES: list[dict] = []
client = OpenAI(base_url=serve(REPLIES), api_key="unused")

lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    messages: list[dict] = [{"role": "user", "content": f"Where is order {order}?"}]
    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.chat.completions.create(model="scripted-gpt", messages=messages,
                                                   tools=ORDER_TOOLS)  # fmt: skip
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                break
            for call in message.tool_calls:  # run untraced
                try:
                    result = lookup_order(**json.loads(call.function.arguments))
                except ValueError as exc:
                    result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
