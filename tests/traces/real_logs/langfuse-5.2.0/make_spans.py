"""How the spans here were made: a hand-written tool-calling loop traced by the
Langfuse Python SDK 5.2.0 (built on OpenTelemetry): `@observe(as_type="agent")` on the
loop, `@observe(as_type="tool")` on the tool, and Langfuse's drop-in OpenAI client
(`langfuse.openai`, the OpenAI Python SDK 3.63.0) for the model calls, with the
OpenTelemetry SDK 1.45.2's TracerProvider handed to Langfuse (`Langfuse(tracer_provider=
...)`), which is how an application sends the same spans to a second backend. Langfuse's
own exporter points at a closed local port (no Langfuse server here). The model is the
local scripted chat-completions server (scripted_chat_server.py beside this folder);
the tool raises on order B2, and the loop hands its error back to the model. Writes
spans.jsonl in the working directory: each run's spans encoded by the SDK's OTLP
encoder, one run a line."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from google.protobuf.json_format import MessageToJson  # noqa: E402
from langfuse import Langfuse, observe  # noqa: E402
from langfuse.openai import OpenAI  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from scripted_chat_server import ORDER_TOOLS, serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
langfuse = Langfuse(
    public_key="pk-lf-local",
    secret_key="sk-lf-local",
    host="http://127.0.0.1:9",
    tracer_provider=provider,
)
replies: list[dict] = []
client = OpenAI(base_url=serve(replies), api_key="none")


@observe(as_type="tool")
def lookup_order(order_id: str) -> str:
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


@observe(as_type="agent")
def handle_request(question: str) -> str:
    messages = [{"role": "user", "content": question}]
    while True:
        reply = client.chat.completions.create(
            model="scripted-gpt", messages=messages, tools=ORDER_TOOLS
        )
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            try:
                result = lookup_order(**json.loads(call.function.arguments))
            except ValueError as exc:
                result = f"error: {exc}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


lines = []
for order in ("A1", "B2"):
    replies[:] = tool_call_then_answer(order)
    exporter.clear()
    handle_request(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
