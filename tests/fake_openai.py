"""A stand-in for an OpenAI-compatible chat-completions server (vLLM, Ollama,
llama.cpp's server, LM Studio) on 127.0.0.1, for the real `openai` SDK to talk to.

Each test queues responses: (status, json body, headers), ("sleep", seconds) to
make the SDK time out, or ("delay", seconds, response) to answer late. Requests
are recorded with their headers; `max_in_flight` is the most answered at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _completion(message: dict[str, Any], finish: str, prompt: int, completion: int) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1764720000,
        "model": "llama3.1:8b",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }  # fmt: skip


def tool_call(
    name: str, arguments: dict | str, *, prompt: int = 900, completion: int = 120
) -> dict:
    """An answer calling `name`; `arguments` as a string is sent as it is (malformed JSON)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": raw}}]}  # fmt: skip
    return _completion(message, "tool_calls", prompt, completion)


def text_only(content: str, *, prompt: int = 900, completion: int = 40) -> dict:
    """What a server without tool calling answers: words, no tool call."""
    return _completion({"role": "assistant", "content": content}, "stop", prompt, completion)


class FakeOpenAI:
    def __init__(self) -> None:
        self.queue: list[tuple] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append({"path": self.path, "body": json.loads(body or b"{}"),
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})  # fmt: skip
                with lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
                        item: tuple = (404, {"error": {"message": "not found"}}, {})
                    else:
                        item = fake.queue.pop(0) if fake.queue else (
                            500, {"error": {"message": "nothing queued"}}, {})  # fmt: skip
                if item[0] == "delay":
                    time.sleep(item[1])
                    item = item[2]
                if item[0] == "sleep":
                    time.sleep(item[1])
                    item = (200, text_only("late"), {})
                status, payload, headers = item
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)
                with lock:
                    fake.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
