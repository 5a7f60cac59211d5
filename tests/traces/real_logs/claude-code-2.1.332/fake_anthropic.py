"""A local Messages API answering from a script, streamed as server-sent events
(what Claude Code asks for): requests that offer tools get the script's next turn;
any other request (a title, a summary) a short text."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT = json.loads(sys.argv[2])  # a list of turns: {"tool": name, "input": {...}} or {"text": ...}
LOG_PATH = sys.argv[3]


def events(turn: dict, model: str) -> list[tuple[str, dict]]:
    usage = {
        "input_tokens": 120,
        "output_tokens": 15,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    out = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        )
    ]
    if "tool" in turn:
        out += [
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {
                        "type": "tool_use",
                        "id": turn["id"],
                        "name": turn["tool"],
                        "input": {},
                    },
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(turn["input"]),
                    },
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
        stop = "tool_use"
    else:
        out += [
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": turn["text"]},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
        stop = "end_turn"
    out += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return out


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with open(LOG_PATH, "a") as log:
            log.write(json.dumps({"path": self.path, "tools": bool(body.get("tools")),
                                  "model": body.get("model")}) + "\n")  # fmt: skip
        if "count_tokens" in self.path:
            self._json({"input_tokens": 100})
            return
        turn = SCRIPT.pop(0) if body.get("tools") and SCRIPT else {"text": "Order lookup"}
        if not body.get("stream"):
            content = (
                [
                    {
                        "type": "tool_use",
                        "id": turn["id"],
                        "name": turn["tool"],
                        "input": turn["input"],
                    }
                ]
                if "tool" in turn
                else [{"type": "text", "text": turn["text"]}]
            )
            self._json(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model"),
                    "content": content,
                    "stop_reason": "tool_use" if "tool" in turn else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 120, "output_tokens": 15},
                }
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for name, data in events(turn, body.get("model", "scripted")):
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802
        self._json({})

    def _json(self, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.serve_forever()
