"""How the spans here were made: a hand-written tool-calling loop over the Anthropic
Python SDK 2.17.0 (`scripted_chat_server.anthropic_order_loop`), instrumented by
OpenLLMetry's Anthropic instrumentation (opentelemetry-instrumentation-anthropic 0.62.4) and the OpenTelemetry SDK 1.45.2. The application traces its request with a
span of its own and runs its tool untraced: the tool calls are only in the model
calls' messages (Claude's `tool_use` blocks, the results as `tool_result` blocks in
the next call's user turn). The SDK records each call in a span of its own too. The
model is a local HTTP server answering the Messages API from a script
(`scripted_chat_server.serve_messages`; this machine reaches no model): a tool call,
then an answer. Two requests, the tool failing on one (the loop sends the error back
with `is_error`). Written by `scripted_chat_server.write_runs` to spans.jsonl in the
working directory. Run with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true."""

import sys
from pathlib import Path

from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import write_anthropic_runs  # noqa: E402

write_anthropic_runs(AnthropicInstrumentor)
