"""A local server streaming OpenAI chat completions (server-sent events) from a
script, in place of a model (this machine reaches none), for the generator scripts
beside it whose agents stream (OpenCode, the Cline CLI, Qwen Code, the Continue
CLI, Aider). Each request gets the script's next turn (its tool calls, or its text),
900 prompt and 20 completion tokens each; a request that asks for no stream gets it
as one completion. Standard library only: each agent's folder
has a `fake_chat_stream.py` naming its scripts, run as

    python fake_chat_stream.py PORT SCRIPT

A SCRIPT named `failed` that the folder does not define answers every request with
the API's error for a prompt over the model's context window."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def call(n: int, name: str, arguments: dict) -> dict:
    """A turn calling one tool, `call_<n>`."""
    return {"tool_calls": [{"id": f"call_{n}", "name": name, "arguments": arguments}]}


class Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list | None = []
    # What a request offering no tools gets (OpenCode asks for a session title so).
    untooled: str | None = None
    # A request's own answer, outside the script, where this returns one (Aider asks
    # for a commit message so).
    aside: Callable[[dict], str | None] | None = None

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.script is None:
            error = json.dumps({"error": {
                "message": "This model's maximum context length is 8192 tokens",
                "type": "invalid_request_error", "code": "context_length_exceeded"}}).encode()  # fmt: skip
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        aside = type(self).aside(request) if type(self).aside else None
        if aside is not None:
            turn: dict = {"content": aside}
        elif self.untooled is not None and not request.get("tools"):
            turn = {"content": self.untooled}
        else:
            turn = self.script.pop(0) if self.script else {"content": "Done."}
        if not request.get("stream"):
            self._answer_whole(turn)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                "created": 1_780_000_000, "model": "scripted-gpt"}  # fmt: skip

        def send(choice: dict, **extra: object) -> None:
            chunk = {**base, "choices": [{"index": 0, **choice}], **extra}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        if turn.get("content"):
            send(
                {"delta": {"role": "assistant", "content": turn["content"]}, "finish_reason": None}
            )
        for i, tool in enumerate(turn.get("tool_calls", [])):
            send({"delta": {"role": "assistant", "tool_calls": [{
                "index": i, "id": tool["id"], "type": "function",
                "function": {"name": tool["name"], "arguments": json.dumps(tool["arguments"])}}]},
                "finish_reason": None})  # fmt: skip
        send({"delta": {}, "finish_reason": "tool_calls" if turn.get("tool_calls") else "stop"},
             usage={"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920})  # fmt: skip
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _answer_whole(self, turn: dict) -> None:
        """A request that asked for no stream gets the completion as one JSON body."""
        message: dict = {"role": "assistant", "content": turn.get("content")}
        if turn.get("tool_calls"):
            message["tool_calls"] = [
                {"id": tool["id"], "type": "function",
                 "function": {"name": tool["name"], "arguments": json.dumps(tool["arguments"])}}
                for tool in turn["tool_calls"]
            ]  # fmt: skip
        body = json.dumps({
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 1_780_000_000,
            "model": "scripted-gpt",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if turn.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main(
    scripts: dict[str, list],
    untooled: str | None = None,
    aside: Callable[[dict], str | None] | None = None,
) -> None:
    """Serve `scripts[SCRIPT]` on PORT (the command line's two arguments)."""
    name = sys.argv[2]
    Scripted.script = None if name == "failed" and name not in scripts else list(scripts[name])
    Scripted.untooled = untooled
    Scripted.aside = aside
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Scripted).serve_forever()
