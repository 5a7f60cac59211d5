"""What the pages say after each action is true, in a real browser (6/8 item 4,
Playwright driving Debian's Chromium): a mode and its skill agree through draft,
trial, rollout, a new version, serving an older one again and retiring; an edit
of a published skill shows the new version with its diff and its approve button;
the comparison of a failed run with a successful run of its task points at the
call where they part, with the values that differ."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount
from skills.models import Skill, SkillVersion
from tests.e2e.test_people_in_browser import ARGS, CHROMIUM, log_in
from tests.factories import ingest, make_user, make_workspace, trace_payload
from traces.models import Trace

SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"
BODY = "## When this applies\nx\n\n## Do\ny\n\n## Don't\nz\n\n## How to check\nw"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.mark.django_db(transaction=True)
def test_a_mode_and_its_skill_agree_after_every_action(live_server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    make_user("states-lead", password="states-password-1")
    lead = make_user("states-owner", password="states-password-2")
    workspace = make_workspace(name="States", owner=lead)
    mode = FailureMode.objects.create(workspace=workspace, label="refund over the limit",
                                      incident_count=7)  # fmt: skip
    ModeDailyCount.objects.create(workspace=workspace, failure_mode=mode, agent="refund-agent",
                                  day=timezone.now().date(), incidents=7, traces=7)  # fmt: skip
    skill = Skill.objects.create(workspace=workspace, name="check-the-refund-limit",
                                 source_mode=mode)  # fmt: skip
    SkillVersion.objects.create(skill=skill, number=1, description="Check the refund limit.",
                                body=BODY, authorship="offline", source_mode=mode)  # fmt: skip
    w = f"{live_server.url}/w/{workspace.slug}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        log_in(page, live_server.url, "states-owner", "states-password-2")

        def mode_says(status: str, badge: str) -> None:
            page.goto(f"{w}/failure-modes/{mode.pk}/")
            panel = page.locator("#mode-skills")
            expect(panel).to_contain_text(skill.name)
            expect(panel).to_contain_text(badge)
            expect(panel).not_to_contain_text("No skill addresses this mode yet")
            expect(page.locator("#mode-status")).to_contain_text(status)

        # Drafted: the mode names its proposed skill and is still open.
        mode_says("Open", "Proposed")

        # Approved as a trial: "On trial", never "Addressed" while half the
        # sessions are held out.
        page.goto(f"{w}/skills/{skill.pk}/")
        page.get_by_role("button", name="Approve and publish v1").click()
        expect(page.locator("#served")).to_contain_text("On trial")
        mode_says("On trial", "Published on trial")

        # Rolled out to everyone from the trial page: addressed.
        page.goto(f"{w}/skills/{skill.pk}/trial/")
        page.get_by_role("button", name="Roll out to everyone").click()
        page.goto(f"{w}/skills/{skill.pk}/")
        expect(page.locator("#served")).to_contain_text("Agents receive v1")
        mode_says("Addressed", "Published")

        # Edited: v2 is shown with its diff and its approve button; v1 still served.
        page.goto(f"{w}/skills/{skill.pk}/")
        page.get_by_text("Edit (saves a new version)").click()
        page.locator("textarea[name=body]").fill(BODY + "\n- Refunds above 500 need a lead.")
        page.get_by_role("button", name="Save as v2").click()
        expect(page.locator(".messages")).to_contain_text(
            "Saved as v2. Review the diff below, then approve it."
        )
        expect(page.get_by_text("Changes from v1 to v2")).to_be_visible()
        expect(page.locator("#served")).to_contain_text("Agents receive v1")
        page.screenshot(path=SHOTS / "states-1-edited.png", full_page=True)
        page.get_by_label("To every agent now").check()
        page.get_by_role("button", name="Approve and publish v2").click()
        expect(page.locator("#served")).to_contain_text("Agents receive v2")

        # An older version served again: one word for it, and it is what agents get.
        expect(page.get_by_role("button", name="Roll back")).to_have_count(0)
        page.get_by_role("button", name="Serve this version again").click()
        expect(page.locator("#served")).to_contain_text("Agents receive v1")
        mode_says("Addressed", "Published")

        # Retired: nothing serves it, and the mode is open again.
        page.goto(f"{w}/skills/{skill.pk}/")
        page.get_by_role("button", name="Retire (stop serving it)").click()
        expect(page.locator("#served")).to_contain_text("Not served: retired on")
        mode_says("Open", "Retired")
        page.screenshot(path=SHOTS / "states-2-retired.png", full_page=True)
        browser.close()


def _run(external_id: str, status: str, cabin: str) -> dict:
    calls = [("get_user_details", {"user_id": "mia_li"}),
             ("get_reservation_details", {"id": "XK2Q9"}),
             ("update_reservation_flights",
              {"reservation_id": "XK2Q9", "cabin": cabin, "flight": "HAT045"})]  # fmt: skip
    steps = [{"kind": "user_prompt", "input": "Change my flight to Friday"}]
    steps += [
        {"kind": "tool_call", "name": n, "input": a, "output": {"ok": True}} for n, a in calls
    ]
    return trace_payload(external_id, task="Change my flight to Friday", task_key="airline:7",
                         status=status, steps=steps)  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_comparison_points_at_the_call_where_the_runs_part(live_server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    owner = make_user("compare-lead", password="compare-password-1")
    workspace = make_workspace(name="Compare", owner=owner)
    ingest(workspace, [_run("failed-1", "failed", "basic_economy"),
                       _run("good-1", "succeeded", "economy")])  # fmt: skip
    failed = Trace.objects.get(workspace=workspace, external_id="failed-1")
    w = f"{live_server.url}/w/{workspace.slug}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        log_in(page, live_server.url, "compare-lead", "compare-password-1")
        page.goto(f"{w}/traces/{failed.pk}/")
        page.get_by_role("link", name="Compare with a successful run").click()
        expect(page.locator("h1")).to_contain_text("Compare")
        expect(page.locator("body")).to_contain_text("of the same task")
        first = page.locator("#first-divergence")
        expect(first).to_have_count(1)
        expect(first).to_contain_text("update_reservation_flights")
        # Only the value that differs is marked, on both sides.
        differs = first.locator(".compare-differs")
        expect(differs).to_have_count(2)
        expect(differs.nth(0)).to_contain_text("cabin basic_economy")
        expect(differs.nth(1)).to_contain_text("cabin economy")
        # The two identical reads before it are folded.
        expect(page.locator("body")).to_contain_text("2 identical calls")
        page.screenshot(path=SHOTS / "compare-1.png", full_page=True)
        browser.close()
