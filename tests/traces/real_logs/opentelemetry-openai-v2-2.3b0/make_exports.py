"""How the exports here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0, instrumented by the OpenTelemetry project's own OpenAI
instrumentation (opentelemetry-instrumentation-openai-v2 2.3b0, the last before
the current GenAI conventions; wrapt<2) and the OpenTelemetry SDK 1.45.2, with
message content on (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true): the
model calls are spans without their messages, and each message is an event of its
own (gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message,
gen_ai.tool.message, gen_ai.choice) sent as an OTLP log record with its span's
ids. The application's own spans wrap the request and each tool run (plain
OpenTelemetry, an exception recorded on the one that raises). The model is a
local HTTP server answering the chat completions API from a script (this machine
reaches no model): first a call of the tool, then an answer. Two requests, the
tool raising on one; the loop hands the error back to the model. Encoded by the
SDK's OTLP encoders and written with protobuf's JSON mapping, one export a line:
spans.jsonl and logs.jsonl in the working directory. The loop and the export are
2.4b0's `make_exports.py`, run with `..._CONTENT=true`."""

import os
import runpy
from pathlib import Path

os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
runpy.run_path(
    str(
        Path(__file__).resolve().parent.parent / "opentelemetry-openai-v2-2.4b0" / "make_exports.py"
    ),
    run_name="__main__",
)
