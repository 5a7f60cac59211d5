"""A stand-in for the Anthropic Messages API on 127.0.0.1, for the real SDK to talk to.

Each test queues responses: (status, json body, headers) or ("sleep", seconds) to
make the SDK time out. Requests are recorded for assertions.

Message Batches: POST /v1/messages/batches answers "in_progress"; the first GET
of the batch answers it again, later ones "ended" with a results URL, whose
JSONL holds `batch_answer(custom_id)` for every request (set by the test).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_answer(
    answer: dict[str, Any],
    *,
    input_tokens: int = 1200,
    output_tokens: int = 400,
    tool: str = "submit_skill",
) -> dict:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": answer}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _batch(batch_id: str, ended: bool, url: str) -> dict:
    return {
        "id": batch_id, "type": "message_batch",
        "processing_status": "ended" if ended else "in_progress",
        "request_counts": {"processing": 0 if ended else 1, "succeeded": 1 if ended else 0,
                           "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-11-22T10:00:00Z", "expires_at": "2026-11-23T10:00:00Z",
        "ended_at": "2026-11-22T10:05:00Z" if ended else None, "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{url}/v1/messages/batches/{batch_id}/results" if ended else None,
    }  # fmt: skip


class FakeAnthropic:
    def __init__(self) -> None:
        self.queue: list[tuple] = []
        self.requests: list[dict[str, Any]] = []
        self.batches: dict[str, list[dict[str, Any]]] = {}  # id -> the requests it holds
        self.polls: dict[str, int] = {}
        self.batch_answer: Any = None  # custom_id -> message payload (or an error result)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"]:
                    batch_id = parts[3]
                    if batch_id not in fake.batches:
                        self._send(404, b'{"type": "error"}', "application/json")
                    elif len(parts) == 5 and parts[4] == "results":
                        lines = [
                            json.dumps({"custom_id": r["custom_id"],
                                        "result": fake.batch_answer(r["custom_id"])})
                            for r in fake.batches[batch_id]
                        ]  # fmt: skip
                        self._send(200, "\n".join(lines).encode(), "application/binary")
                    else:
                        fake.polls[batch_id] = fake.polls.get(batch_id, 0) + 1
                        ended = fake.polls[batch_id] > 1
                        body = json.dumps(_batch(batch_id, ended, fake.url)).encode()
                        self._send(200, body, "application/json")
                    return
                self._send(404, b'{"type": "error"}', "application/json")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append({"path": self.path, "body": json.loads(body or b"{}")})
                if self.path.split("?")[0].rstrip("/") == "/v1/messages/batches":
                    batch_id = f"msgbatch_{len(fake.batches) + 1}"
                    fake.batches[batch_id] = fake.requests[-1]["body"]["requests"]
                    self._send(200, json.dumps(_batch(batch_id, False, fake.url)).encode(),
                               "application/json")  # fmt: skip
                    return
                item = fake.queue.pop(0) if fake.queue else (500, {"type": "error"}, {})
                if item[0] == "sleep":
                    time.sleep(item[1])
                    item = (200, tool_answer({"verdict": "skip", "reason": "late"}), {})
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
