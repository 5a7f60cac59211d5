"""4/8 in a real browser: a lead works the annotation queue with the keyboard alone
(Playwright driving Debian's /usr/bin/chromium), labels 20 runs, skips one, and
sees the "same failure?" candidates of a label. Screenshots at 1440 and 390 px go
to `.hivemind/e2e-screenshots/`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from failures.models import Incident, LabelCandidate, RunLabel
from tests.factories import add_member, ingest, make_user, make_workspace, trace_payload
from workspaces.models import Role

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _db(fn):  # type: ignore[no-untyped-def]
    """Run an ORM query off Playwright's event loop (Django refuses it inside)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _run(i: int) -> dict:
    cancel = i % 3 != 2
    return trace_payload(
        f"airline-run-{i:02d}", agent="airline-agent",
        task=f"Help the customer with reservation R{i:03d}",
        steps=[
            {"kind": "user_prompt", "input": f"Please look at reservation R{i:03d}"},
            {"kind": "tool_call", "name": "get_reservation_details",
             "input": {"reservation_id": f"R{i:03d}"},
             "output": {"cabin": "basic_economy", "note": "x" * 400}},
            {"kind": "assistant_message", "output": "I will take care of it now."},
            {"kind": "tool_call", "name": "cancel_reservation" if cancel else "update_seat",
             "input": {"reservation_id": f"R{i:03d}"}, "output": {"status": "done"}},
        ],
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_lead_labels_twenty_runs_with_the_keyboard(live_server):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    owner = make_user("review-admin", password="review-password-1")
    workspace = make_workspace(name="Review", owner=owner)
    add_member(workspace, Role.LEAD, make_user("review-lead", password="review-password-1"))
    ingest(workspace=workspace, items=[_run(i) for i in range(26)])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "review-lead")
        page.fill("input[name=password]", "review-password-1")
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{live_server.url}/w/{workspace.slug}/failures/review/")
        expect(page.locator("#label-form")).to_be_visible()
        page.screenshot(path=str(SHOTS / "review-run-1440.png"), full_page=True)
        # A run that is not a failure: skipped with one key.
        first = page.url
        page.keyboard.press("x")
        page.wait_for_url(lambda url: url != first)
        for n in range(20):
            here = page.url
            # To the cancellation step (the 4th step, index 3) from wherever the
            # highlight starts: up to the top, then down three.
            for _ in range(5):
                page.keyboard.press("k")
            for _ in range(3):
                page.keyboard.press("j")
            expect(page.locator("#label-step")).to_have_value("3")
            page.keyboard.press("8")  # Violated a written policy
            expect(page.locator("#label-sentence")).to_be_focused()
            name = page.locator("#review-steps li.rstep-current strong").inner_text()
            sentence = (
                "Cancelled a reservation the policy did not allow to cancel"
                if name == "cancel_reservation" else "Changed a seat without asking the customer"
            )  # fmt: skip
            page.keyboard.type(sentence)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url, here=here: url != here)
            if n == 0:
                expect(page.locator("#last-label")).to_be_visible()
        assert _db(lambda: RunLabel.objects.filter(skip_reason="").count()) == 20
        assert _db(lambda: RunLabel.objects.exclude(skip_reason="").count()) == 1
        assert _db(lambda: Incident.objects.filter(source="human", step_index=3).count()) == 20
        # The last label's candidates, reached from the queue's link.
        page.locator("#last-label a").click()
        expect(page.locator("#candidates")).to_be_visible()
        label = _db(lambda: RunLabel.objects.filter(skip_reason="").order_by("-pk").first())
        waiting = _db(lambda: LabelCandidate.objects.filter(label=label, state="offered").count())
        assert waiting >= 1, "propagation offered nothing"
        expect(page.locator("#candidates tbody tr")).to_have_count(waiting)
        page.screenshot(path=str(SHOTS / "label-candidates-1440.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SHOTS / "label-candidates-390.png"), full_page=True)
        page.goto(f"{live_server.url}/w/{workspace.slug}/failures/review/")
        page.screenshot(path=str(SHOTS / "review-run-390.png"), full_page=True)
        browser.close()
