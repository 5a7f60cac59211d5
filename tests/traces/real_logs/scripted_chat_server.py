"""A local server answering OpenAI's chat completions API from a script, for the
generator scripts beside it whose tools call a model through the OpenAI SDK (this
machine reaches no model). Standard library only: each script runs in its own
tool's virtualenv."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


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
