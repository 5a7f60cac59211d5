"""A local OTLP/HTTP receiver that keeps what it is sent: each export's body is
written to <folder>/export-<n>-<path>.json (the exporter sends JSON when
OTEL_EXPORTER_OTLP_PROTOCOL=http/json), and answered 200."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FOLDER = Path(sys.argv[2])
received = [0]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received[0] += 1
        name = self.path.strip("/").replace("/", "_")
        (FOLDER / f"export-{received[0]}-{name}.json").write_bytes(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
