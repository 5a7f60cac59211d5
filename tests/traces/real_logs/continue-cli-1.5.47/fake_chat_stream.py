"""A local server streaming OpenAI chat completions (server-sent events) from a
script, in place of a model (this machine reaches none), for the Continue
CLI's `openai` provider. Each request gets the script's next turn (its tool calls, or its
text). Script `failed` answers every request with the API's error for a prompt over
the model's context window. Standard library only.

    python fake_chat_stream.py PORT SCRIPT   # SCRIPT: finished or failed"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _call(n: int, name: str, arguments: dict) -> dict:
    return {"tool_calls": [{"id": f"call_{n}", "name": name, "arguments": arguments}]}


SCRIPTS = {
    # A command that exits 1, a read of a missing file, a command that works; the answer.
    "finished": [
        _call(1, "Bash", {"command": "cat notes/todo.txt"}),
        _call(2, "Read", {"filepath": "notes/plan.txt"}),
        _call(3, "Bash", {"command": "ls"}),
        {"content": "There is no notes/todo.txt or notes/plan.txt here; nothing is left to do."},
    ],
}


class Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list | None = []

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
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
        turn = self.script.pop(0) if self.script else {"content": "Done."}
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
        for i, call in enumerate(turn.get("tool_calls", [])):
            send({"delta": {"role": "assistant", "tool_calls": [{
                "index": i, "id": call["id"], "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}]},
                "finish_reason": None})  # fmt: skip
        send({"delta": {}, "finish_reason": "tool_calls" if turn.get("tool_calls") else "stop"},
             usage={"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920})  # fmt: skip
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    Scripted.script = None if sys.argv[2] == "failed" else list(SCRIPTS[sys.argv[2]])
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Scripted).serve_forever()
