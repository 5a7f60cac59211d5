"""How the exports here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, instrumented by the OpenTelemetry project's own OpenAI
instrumentation (opentelemetry-instrumentation-openai-v2 2.4b0) and the
OpenTelemetry SDK 1.45.2, with message content on
(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, the default
conventions): the model calls are spans without their messages, and the
messages are GenAI events sent as OTLP log records, each with its span's ids.
The application's own spans wrap the request and each tool run (plain
OpenTelemetry, an exception recorded on the one that raises). The model is a
local HTTP server answering the chat completions API from a script (this machine
reaches no model): first a call of the tool, then an answer. Two requests, the
tool raising on one; the loop hands the error back to the model. Encoded by the
SDK's OTLP encoders and written with protobuf's JSON mapping, one export a line:
spans.jsonl and logs.jsonl in the working directory."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")

from google.protobuf.json_format import MessageToJson  # noqa: E402
from openai import OpenAI  # noqa: E402
from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,  # noqa: E402
    SimpleLogRecordProcessor,  # noqa: E402
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import order_loop, serve, tool_call_then_answer  # noqa: E402

resource = Resource.create({"service.name": "order-loop"})
spans = InMemorySpanExporter()
provider = TracerProvider(resource=resource)
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
logs = InMemoryLogRecordExporter()
log_provider = LoggerProvider(resource=resource)
log_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
_logs.set_logger_provider(log_provider)
OpenAIInstrumentor().instrument()
tracer = trace.get_tracer("order-loop")

REPLIES: list[dict] = []
client = OpenAI(base_url=serve(REPLIES), api_key="unused")


span_lines, log_lines = [], []
for order in ("A1", "B2"):
    spans.clear()
    logs.clear()
    REPLIES[:] = tool_call_then_answer(order)
    order_loop(client, tracer, [
        {"role": "system", "content": "You answer questions about orders."},
        {"role": "user", "content": f"Where is order {order}?"}])  # fmt: skip
    span_lines.append(MessageToJson(encode_spans(spans.get_finished_spans()), indent=None))
    log_lines.append(MessageToJson(encode_logs(logs.get_finished_logs()), indent=None))
Path("spans.jsonl").write_text("\n".join(span_lines) + "\n")
Path("logs.jsonl").write_text("\n".join(log_lines) + "\n")
print(len(span_lines), "runs")
