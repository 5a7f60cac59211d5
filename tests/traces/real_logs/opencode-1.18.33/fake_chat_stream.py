"""A local server streaming OpenAI chat completions (server-sent events) from a
script, in place of a model (this machine reaches none): OpenCode's
`@ai-sdk/openai-compatible` provider streams. Each request with tools gets the
script's next turn (its tool calls, or its text); a request without tools (OpenCode's
title of the session) gets a title. Standard library only.

    python fake_chat_stream.py PORT SCRIPT   # SCRIPT: finished, failed or subagent"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _call(n: int, name: str, arguments: dict) -> dict:
    return {"tool_calls": [{"id": f"call_{n}", "name": name, "arguments": arguments}]}


SCRIPTS = {
    # A command that exits 1, another that works, then the answer.
    "finished": [
        _call(1, "bash", {"command": "cat notes/todo.txt", "description": "Read the todo list"}),
        _call(2, "bash", {"command": "ls", "description": "List files"}),
        {"content": "There is no notes/todo.txt here; nothing is listed."},
    ],
    # A read of a file that is not there (the tool fails), then the answer.
    "failed": [
        _call(1, "read", {"filePath": "notes/plan.txt"}),
        {"content": "I could not read notes/plan.txt: it does not exist."},
    ],
    # A subagent (OpenCode's `task` tool, its own session) that lists a missing folder
    # and answers; then the main agent's answer.
    "subagent": [
        _call(
            1,
            "task",
            {
                "description": "Find the plan",
                "subagent_type": "general",
                "prompt": "Find notes/plan.txt and say what it holds.",
            },
        ),
        _call(2, "bash", {"command": "ls notes", "description": "List the notes"}),
        {"content": "There is no notes folder."},
        {"content": "The subagent found no notes folder, so there is no plan."},
    ],
}


class Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list = []

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        turn = (self.script.pop(0) if self.script else {"content": "Done."}) if request.get(
            "tools") else {"content": "Reading the notes"}  # fmt: skip
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
    Scripted.script = list(SCRIPTS[sys.argv[2]])
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Scripted).serve_forever()
