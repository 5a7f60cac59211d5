"""A local Gemini API answering from a script: streamGenerateContent requests that
offer tools get the script's next turn as server-sent events; any other request a
short text (generateContent: the JSON a checker asks for); countTokens a count."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT = json.loads(sys.argv[2])
LOG_PATH = sys.argv[3]
USAGE = {"promptTokenCount": 120, "candidatesTokenCount": 15, "totalTokenCount": 135}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with open(LOG_PATH, "a") as log:
            log.write(json.dumps({"path": self.path, "tools": bool(body.get("tools"))}) + "\n")
        if ":countTokens" in self.path:
            self._json({"totalTokens": 100})
            return
        if ":streamGenerateContent" in self.path and body.get("tools") and SCRIPT:
            turn = SCRIPT.pop(0)
            part = (
                {"functionCall": {"name": turn["tool"], "args": turn["args"]}}
                if "tool" in turn
                else {"text": turn["text"]}
            )
            chunk = {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [part]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": USAGE,
                "modelVersion": "scripted-gemini",
            }
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
            self.wfile.flush()
            return
        text = json.dumps({"reasoning": "The answer is complete.", "next_speaker": "user"})
        chunk = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": USAGE,
        }
        if ":streamGenerateContent" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
            return
        self._json(chunk)

    def _json(self, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
