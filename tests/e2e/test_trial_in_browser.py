"""A trial in a real browser (Playwright driving Debian's /usr/bin/chromium):
a lead approves a proposed skill as a trial; agents fetch skills with session
ids and post traces from both arms through the API; the lead reads the verdict
on the trial page and rolls the skill back. Tasks run inline here (the test
settings); the worker runtime has its own browser test."""

from __future__ import annotations

import json
import os
import random
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount
from skills.models import Skill, SkillVersion, TrialAssignment
from tests.factories import make_key, make_user, make_workspace
from workspaces.models import Scope

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"
BODY = "## When this applies\nx\n\n## Do\ny\n\n## Don't\nz\n\n## How to check\nw"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _call(url: str, key: str, body: dict | None = None, session: str = "") -> dict:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if session:
        headers["X-Hivemind-Session"] = session
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                     method="POST" if body else "GET", headers=headers)  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.django_db(transaction=True)
def test_a_trial_from_approval_to_verdict_in_chromium(live_server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    lead = make_user("trial-lead", password="trial-password-1")
    workspace = make_workspace(name="Trial", owner=lead)
    key = make_key(workspace, scopes=[Scope.INGEST, Scope.SKILLS_READ])
    mode = FailureMode.objects.create(
        workspace=workspace, label="checkout declined", incident_count=8
    )
    ModeDailyCount.objects.create(workspace=workspace, failure_mode=mode, agent="checkout-agent",
                                  day=timezone.now().date(), incidents=8, traces=8)  # fmt: skip
    skill = Skill.objects.create(workspace=workspace, name="confirm-before-charging",
                                 source_mode=mode)  # fmt: skip
    SkillVersion.objects.create(skill=skill, number=1, description="Confirm the amount first.",
                                body=BODY, authorship="offline", source_mode=mode)  # fmt: skip
    base, w = live_server.url, f"{live_server.url}/w/{workspace.slug}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "trial-lead")
        page.fill("input[name=password]", "trial-password-1")
        page.click("button[type=submit]")

        # Approve as a trial (the default choice), holding out half the sessions.
        page.goto(f"{w}/skills/{skill.pk}/")
        expect(page.get_by_label("As a trial")).to_be_checked()
        page.get_by_role("button", name="Approve and publish v1").click()
        expect(page.locator("#served")).to_contain_text("On trial")
        page.screenshot(path=SHOTS / "trial-1-approved.png", full_page=True)

        # Agents: each task is a session; the held-out ones do not get the skill.
        arms = {}
        for i in range(60):
            names = [
                s["name"] for s in _call(f"{base}/api/v1/skills", key, session=f"task-{i}")["items"]
            ]
            arms[f"task-{i}"] = skill.name in names
        assert 10 < sum(arms.values()) < 50
        rng = random.Random(2)
        now = datetime.now(UTC).isoformat()
        traces = [{
            "external_id": session, "agent": "checkout-agent", "session_id": session,
            "task": "Charge the order", "started_at": now,
            "status": "succeeded" if rng.random() < (0.95 if treated else 0.35) else "failed",
            "steps": [{"kind": "tool_call", "name": "payments.charge", "output": "ok"}],
        } for session, treated in arms.items()]  # fmt: skip
        _call(f"{base}/api/v1/traces", key, {"traces": traces})

        # The lead reads the verdict.
        page.goto(f"{w}/skills/{skill.pk}/trial/")
        expect(page.locator("#verdict")).to_contain_text("Helps")
        expect(page.locator("#verdict")).to_contain_text("checkout-agent")
        page.screenshot(path=SHOTS / "trial-2-verdict.png", full_page=True)

        # And decides: roll back (audited); the page then says nobody receives it.
        page.get_by_role("button", name="Withdraw").click()
        expect(page.locator("#verdict")).to_contain_text("Not served to any agent")
        browser.close()
    # (The ORM is not called inside Playwright's event loop.)
    assert TrialAssignment.objects.filter(trial__skill=skill).count() == 60
    assert Skill.objects.get(pk=skill.pk).status == "retired"
