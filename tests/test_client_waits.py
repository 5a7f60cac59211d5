"""The client's import and replay wait when the server asks them to (429 or 503
with Retry-After) and go on, instead of stopping part-way; a live hook never
waits (it spools); a wait longer than the client's limit is not waited."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hivemind_client import capture, importer, retry


class _Server:
    """Answers `refusals` requests with a status and Retry-After, then 200."""

    def __init__(self, refusals: list[tuple[int, str]]) -> None:
        self.refusals = list(refusals)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(self.path)
                if outer.refusals:
                    status, after = outer.refusals.pop(0)
                    body = json.dumps({"detail": "slow down"}).encode()
                    self.send_response(status)
                    if after:
                        self.send_header("Retry-After", after)
                else:
                    answer = {"dry_run": True, "results": [], "created": 1}
                    body = json.dumps(answer).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits asked for, not slept."""
    asked: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", asked.append)
    return asked


def test_an_import_waits_as_the_server_asks_and_goes_on(waits, capsys):
    server = _Server([(429, "3"), (503, "")])
    try:
        answer = importer._post(server.url, "hm_key", "/api/v1/traces", {"traces": []})
    finally:
        server.close()
    assert answer["created"] == 1 and len(server.requests) == 3
    assert waits == [3.0, retry.DEFAULT_WAIT_SECONDS]
    assert "over its rate limit (429); sending again in 3 s" in capsys.readouterr().err


def test_a_replay_waits_on_a_rate_limit_and_sends_every_event(tmp_path: Path, waits, monkeypatch):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"session_id": "s1", "hook_event_name": "UserPromptSubmit",
                                            "prompt": p}) for p in "abc"))  # fmt: skip
    server = _Server([(200, ""), (429, "2")])  # the second event is refused once
    server.refusals[0] = (200, "")
    try:
        monkeypatch.setenv("HIVEMIND_URL", server.url)
        monkeypatch.setenv("HIVEMIND_API_KEY", "hm_key")
        assert capture.replay(events) == 0
    finally:
        server.close()
    assert len(server.requests) == 4 and waits == [2.0]


def test_a_live_hook_never_waits(waits):
    server = _Server([(429, "30")])
    try:
        item = {"event_id": "e1", "payload": {"hook_event_name": "Stop"}}
        assert capture._post(server.url, "hm_key", item, 1.0) is False  # spooled
    finally:
        server.close()
    assert waits == [] and len(server.requests) == 1


def test_a_wait_past_the_limit_is_not_waited(waits):
    server = _Server([(429, str(int(retry.MAX_WAIT_SECONDS) + 1))])
    try:
        with pytest.raises(importer.SendError, match="429"):
            importer._post(server.url, "hm_key", "/api/v1/traces", {"traces": []})
    finally:
        server.close()
    assert waits == [] and len(server.requests) == 1
