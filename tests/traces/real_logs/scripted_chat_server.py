"""A local server answering OpenAI's chat completions API from a script, for the
generator scripts beside it whose tools call a model through the OpenAI SDK (this
machine reaches no model). Standard library only: each script runs in its own
tool's virtualenv."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def serve(replies: list[dict]) -> str:
    """Start a server that answers each request with the next message of `replies`
    (an assistant message: content, or tool calls), 120 prompt and 15 completion
    tokens each; returns its base URL (`http://127.0.0.1:PORT/v1`). The list may be
    refilled between runs."""

    class Scripted(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            message = replies.pop(0)
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

    server = HTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1"


def tool_call_then_answer(order: str, tool: str = "lookup_order") -> list[dict]:
    """The two turns every scripted run here takes: a call of the tool for the
    order, then an answer (that the order was not found, for B2)."""
    return [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": tool, "arguments": json.dumps({"order_id": order})}}]},
        {"role": "assistant", "content": "I could not find order B2." if order == "B2"
         else f"Order {order} has shipped."},
    ]  # fmt: skip


# The tool the hand-written loops below offer their model.
ORDER_TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}]  # fmt: skip


def lookup_order(order_id: str) -> str:
    if order_id == "B2":
        raise ValueError("order not found: B2")
    return f"order {order_id}: 2 items, shipped"


def order_loop(client: Any, tracer: Any, messages: list) -> None:
    """A hand-written tool-calling loop over the OpenAI SDK's `client`: the request in
    a span of the application's own (`tracer`), each tool run in another, whose
    exception is recorded and its status set to ERROR when it raises; the error is
    handed back to the model. (OpenTelemetry is the calling script's.)"""
    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span("handle_request"):
        while True:
            reply = client.chat.completions.create(model="scripted-gpt", messages=messages,
                                                   tools=ORDER_TOOLS)  # fmt: skip
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return
            for call in message.tool_calls:
                with tracer.start_as_current_span(call.function.name) as span:
                    try:
                        result = lookup_order(**json.loads(call.function.arguments))
                    except ValueError as exc:
                        span.record_exception(exc)
                        span.set_status(Status(StatusCode.ERROR, str(exc)))
                        result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
