"""How the spans here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, instrumented by Pydantic Logfire 5.4.0 (`logfire.instrument_openai`),
the application's own spans made with `logfire.span` around the request and each tool
run (the one that raises records its exception as Logfire records one leaving a
span). Logfire sends nothing anywhere (`send_to_logfire=False`); its spans go to an
in-memory exporter of the OpenTelemetry SDK 1.45.2 beside it. The model is a local
HTTP server answering the chat completions API from a script (this machine reaches no
model): first a call of the tool, then an answer. Two requests, the tool raising on
one; the loop hands the error back to the model. Encoded by the SDK's OTLP encoder
and written with protobuf's JSON mapping, one run a line. Writes spans.jsonl in the
working directory."""

import json
import sys
from pathlib import Path

import logfire
from google.protobuf.json_format import MessageToJson
from openai import OpenAI
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import ORDER_TOOLS, lookup_order, serve, tool_call_then_answer  # noqa: E402

exporter = InMemorySpanExporter()
logfire.configure(service_name="order-logfire", send_to_logfire=False, console=False,
                  additional_span_processors=[SimpleSpanProcessor(exporter)])  # fmt: skip
REPLIES: list[dict] = []
client = OpenAI(base_url=serve(REPLIES), api_key="unused")
logfire.instrument_openai(client)


def handle(question: str) -> None:
    messages: list = [{"role": "user", "content": question}]
    with logfire.span("handle_request {question}", question=question):
        while True:
            reply = client.chat.completions.create(model="scripted-gpt", messages=messages,
                                                   tools=ORDER_TOOLS)  # fmt: skip
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return
            for call in message.tool_calls:
                arguments = json.loads(call.function.arguments)
                try:
                    with logfire.span("{tool}", tool=call.function.name, arguments=arguments):
                        result = lookup_order(**arguments)
                except ValueError as exc:
                    result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


lines = []
for order in ("A1", "B2"):
    exporter.clear()
    REPLIES[:] = tool_call_then_answer(order)
    handle(f"Where is order {order}?")
    lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
with open("spans.jsonl", "w") as out:
    out.write("\n".join(lines) + "\n")
print(len(lines), "exports")
