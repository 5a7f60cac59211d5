"""A local OpenAI Responses API answering from a script, streamed as server-sent
events (what Codex asks for): each request gets the script's next turn, a
function call or a message."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT = json.loads(sys.argv[2])
LOG_PATH = sys.argv[3]


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with open(LOG_PATH, "a") as log:
            log.write(json.dumps({"path": self.path, "tools": [t.get("name") or t.get("type") for t in body.get("tools") or []],
                                  "model": body.get("model")}) + "\n")  # fmt: skip
        if not self.path.rstrip("/").endswith("/responses"):
            # Codex's other calls (its analytics, with telemetry on): no model turn.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        turn = SCRIPT.pop(0) if SCRIPT else {"text": "Done."}
        if "tool" in turn:
            item = {"type": "function_call", "id": "fc_1", "call_id": turn["id"],
                    "name": turn["tool"], "arguments": json.dumps(turn["args"]),
                    "status": "completed"}  # fmt: skip
        else:
            item = {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": turn["text"], "annotations": []}],
            }
        response = {"id": "resp_1", "object": "response", "model": body.get("model"),
                    "status": "completed", "output": [item],
                    "usage": {"input_tokens": 120, "output_tokens": 15, "total_tokens": 135,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}}  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(
            sse(
                "response.created",
                {"response": {**response, "status": "in_progress", "output": []}},
            )
        )
        self.wfile.write(sse("response.output_item.added", {"output_index": 0, "item": item}))
        self.wfile.write(sse("response.output_item.done", {"output_index": 0, "item": item}))
        self.wfile.write(sse("response.completed", {"response": response}))
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
