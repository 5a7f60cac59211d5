"""How the spans here were made: a hand-written tool-calling loop over the OpenAI
Python SDK 3.63.0 (`scripted_chat_server.order_loop`, its tool runs untraced),
instrumented by OpenInference's OpenAI instrumentation (openinference-instrumentation-
openai 0.1.66, Arize Phoenix's) and the OpenTelemetry SDK 1.45.2, as an application
traced at its model client alone: the request has a span of the application's, the
tool runs none, so its calls are only in the model calls' messages (flattened
`llm.output_messages.*` attributes) and their results in the next call's input. The
model is a local HTTP server answering the chat completions API from a script
(`scripted_chat_server.serve`; this machine reaches no model): a tool call, then an
answer. Two requests, the tool failing on one (the loop hands the error back).
Written by `scripted_chat_server.write_runs` to spans.jsonl in the working
directory."""

import sys
from pathlib import Path

from openai import OpenAI
from openinference.instrumentation.openai import OpenAIInstrumentor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_chat_server import order_loop, serve, tool_call_then_answer, write_runs  # noqa: E402

REPLIES: list[dict] = []
client = OpenAI(base_url=serve(REPLIES), api_key="unused")


def run(tracer, order: str) -> None:  # type: ignore[no-untyped-def]
    REPLIES[:] = tool_call_then_answer(order)
    order_loop(client, tracer, [{"role": "user", "content": f"Where is order {order}?"}],
               trace_tools=False)  # fmt: skip


write_runs(
    "order-phoenix", lambda provider: OpenAIInstrumentor().instrument(tracer_provider=provider), run
)
