"""How the spans here were made: a Semantic Kernel 1.45.0 `ChatCompletionAgent` with
one kernel function (a plugin's tool), its OpenAI connector pointed at a local HTTP
server answering the chat completions API from a script (this machine reaches no
model): first a call of the tool, then an answer. Semantic Kernel's own GenAI
spans (`SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS=true`, set below
as a user would in the environment) and the OpenTelemetry SDK 1.45.2. Two requests,
the tool raising on one (the kernel hands the error back to the model). Encoded by
the SDK's OTLP encoder and written with protobuf's JSON mapping, one run a line.
Writes spans.jsonl in the working directory."""

import asyncio
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Annotated

os.environ["SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS"] = "true"

from google.protobuf.json_format import MessageToJson  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from semantic_kernel.agents import ChatCompletionAgent  # noqa: E402
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion  # noqa: E402
from semantic_kernel.functions import kernel_function  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "order-sk"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

REPLIES: list[dict] = []


class Scripted(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        message = REPLIES.pop(0)
        body = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_780_000_000,
            "model": "scripted-gpt",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Orders:
    @kernel_function(name="lookup_order", description="Look up an order by its id.")
    def lookup_order(self, order_id: Annotated[str, "The order's id"]) -> str:
        if order_id == "B2":
            raise ValueError("order not found: B2")
        return f"order {order_id}: 2 items, shipped"


async def main() -> None:
    server = HTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="unused")
    lines = []
    for order in ("A1", "B2"):
        exporter.clear()
        REPLIES[:] = [
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "Orders-lookup_order",
                             "arguments": json.dumps({"order_id": order})}}]},
            {"role": "assistant", "content": "I could not find order B2." if order == "B2"
             else f"Order {order} has shipped."},
        ]  # fmt: skip
        agent = ChatCompletionAgent(
            service=OpenAIChatCompletion(ai_model_id="scripted-gpt", async_client=client),
            name="orders",
            instructions="Answer questions about orders.",
            plugins=[Orders()],
        )
        await agent.get_response(messages=f"Where is order {order}?")
        lines.append(MessageToJson(encode_spans(exporter.get_finished_spans()), indent=None))
    with open("spans.jsonl", "w") as out:
        out.write("\n".join(lines) + "\n")
    print(len(lines), "exports")


asyncio.run(main())
