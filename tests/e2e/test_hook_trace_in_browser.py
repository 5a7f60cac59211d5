"""A Claude Code session captured by its hooks, read in a real browser
(Playwright driving Debian's /usr/bin/chromium): a recorded session with two
failed tool calls and a subagent is replayed through the hooks endpoint in
its real order; the trace page shows the final status, the two failures as
incidents with their own error text, steps numbered from 0 with the subagent's
call nested, and what was redacted."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.factories import make_key, make_user, make_workspace
from tests.traces.test_claude_code import _session_with_failures
from traces.models import Trace
from workspaces.models import Scope

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def recorded_session() -> list[dict]:
    base = {"transcript_path": "/home/dev/.claude/projects/shop/s-e2e.jsonl",
            "cwd": "/home/dev/shop", "permission_mode": "default"}  # fmt: skip
    events = _session_with_failures("s-e2e")
    events[1]["prompt"] = "Open a PR for the checkout fix and tell ann@example.com"
    sub = [
        {"hook_event_name": "SubagentStart", "agent_id": "ag-1", "agent_type": "Explore"},
        {"hook_event_name": "PreToolUse", "tool_name": "Grep", "tool_use_id": "toolu_sub",
         "tool_input": {"pattern": "def checkout"}, "agent_id": "ag-1", "agent_type": "Explore"},
        {"hook_event_name": "PostToolUse", "tool_name": "Grep", "tool_use_id": "toolu_sub",
         "tool_input": {"pattern": "def checkout"}, "agent_id": "ag-1", "agent_type": "Explore",
         "tool_response": {"matches": 1}},
        {"hook_event_name": "SubagentStop", "agent_id": "ag-1", "agent_type": "Explore",
         "stop_hook_active": False, "last_assistant_message": "checkout() is in shop/pay.py"},
    ]  # fmt: skip
    events = events[:2] + [{**e, "session_id": "s-e2e"} for e in sub] + events[2:]
    return [{**base, **e} for e in events]


@pytest.mark.django_db(transaction=True)
def test_a_replayed_claude_code_session_reads_right_in_chromium(live_server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    user = make_user("hook-lead", password="hook-password-1")
    workspace = make_workspace(name="Hooks", owner=user)
    key = make_key(workspace, scopes=[Scope.INGEST])
    for payload in recorded_session():
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/hooks/claude-code", data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    trace = Trace.objects.get(workspace=workspace)
    steps = trace.step_count

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "hook-lead")
        page.fill("input[name=password]", "hook-password-1")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/w/{workspace.slug}/traces/{trace.pk}/")
        expect(page.locator("h1")).to_contain_text("Open a PR for the checkout fix")
        expect(page.locator(".kv")).to_contain_text("Succeeded")
        expect(page.locator(".kv")).to_contain_text("EMAIL × ")
        incidents = page.locator("#trace-incidents li")
        expect(incidents).to_have_count(2)
        expect(incidents.nth(0)).to_contain_text("cannot access 'build/'")
        expect(incidents.nth(1)).to_contain_text("HTTP 401: Bad credentials")
        expect(page.locator("#trace-incidents")).to_contain_text("recovered from")
        expect(page.locator("#step-0")).to_contain_text("User prompt")
        expect(page.locator(f"#step-{steps - 1}")).to_contain_text("session end")
        expect(page.locator("#step-2")).to_contain_text("Explore/Grep")
        expect(page.locator("#step-1 #step-2")).to_have_count(1)  # nested under the subagent
        page.screenshot(path=SHOTS / "hook-trace.png", full_page=True)
        browser.close()
