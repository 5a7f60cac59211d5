"""A 200-step run read with the keyboard in a real browser (Playwright driving
Debian's /usr/bin/chromium; 6/8 item 1): steps nested under the subagent that
ran them, the diagnosed step highlighted and scrolled to, J/K between steps,
N to the next error, a subtree folded and unfolded, search within the run, a
compact mode, a simulated user's call set apart, long outputs folded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from tests.factories import make_user, make_workspace, trace_payload

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def long_run() -> dict:
    """200 steps: a subagent (step 10) running steps 11-14, errors at 60 and 150,
    a simulated user's call at 5, a long output at 20."""
    steps: list[dict] = [{"kind": "user_prompt", "input": "Move my booking to Friday"}]
    for i in range(1, 200):
        step: dict = {"kind": "tool_call", "name": f"tool_{i % 7}", "input": {"n": i},
                      "output": {"ok": True}}  # fmt: skip
        if i == 5:
            step["name"] = "user.check_status_bar"
        if i == 10:
            step = {"kind": "assistant_message", "name": "subagent:Explore", "input": {}}
        if 11 <= i <= 14:
            step["parent_index"] = 10
        if i == 20:
            step["output"] = "\n".join(f"row {n}: flight AB{n:03d}" for n in range(80))
        if i == 60:
            step["error"] = "seat map unavailable: HTTP 503"
        if i == 120:
            step["name"] = "update_reservation_flights"
            step["input"] = {"reservation_id": "XK2Q9", "cabin": "basic_economy"}
        if i == 150:
            step["error"] = "payment declined: card expired"
        steps.append(step)
    return trace_payload("long-run", task="Move my booking to Friday", steps=steps)


def _db(fn):  # type: ignore[no-untyped-def]
    """Run an ORM query off Playwright's event loop (Django refuses it inside)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@pytest.mark.django_db(transaction=True)
def test_a_200_step_run_is_read_with_the_keyboard(live_server):
    from playwright.sync_api import expect, sync_playwright

    from failures.models import Incident
    from traces.models import Trace
    from traces.services import trace_ingest_batch

    SHOTS.mkdir(parents=True, exist_ok=True)
    user = make_user("tree-lead", password="tree-password-1")
    workspace = make_workspace(name="Trees", owner=user)
    trace_ingest_batch(workspace=workspace, items=[long_run()])
    trace = Trace.objects.get(workspace=workspace)
    # What the diagnosis found is replaced by one known incident (the page is under test).
    Incident.objects.filter(trace=trace).delete()
    Incident.objects.create(
        workspace=workspace, trace=trace, step_index=120, kind="divergence",
        description="Changed the cabin to basic economy, which the customer did not ask for.",
        signature="d", occurred_at=timezone.now(), confidence=0.8,
    )  # fmt: skip

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "tree-lead")
        page.fill("input[name=password]", "tree-password-1")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{live_server.url}/w/{workspace.slug}/traces/{trace.pk}/")
        # The diagnosed step is marked and scrolled to once the diagnosis arrives.
        expect(page.locator("#step-120")).to_have_class(
            "step step-agent step-diagnosed step-current"
        )
        expect(page.locator("#step-120")).to_contain_text("diagnosed here")
        assert page.evaluate("window.scrollY") > 0
        # The subagent's steps are nested under it and fold with it.
        expect(page.locator("#step-10 #step-12")).to_have_count(1)
        page.locator("#step-10 .tree-toggle").first.click()
        expect(page.locator("#step-12")).to_be_hidden()
        page.locator("#step-10 .tree-toggle").first.click()
        expect(page.locator("#step-12")).to_be_visible()
        # A simulated user's call says so; a long output is folded to a few lines.
        expect(page.locator("#step-5")).to_contain_text("simulated user")
        expect(page.locator("#step-20 .fold-toggle")).to_contain_text("Show all")
        # Keyboard: N goes to the next error after the current step, J / K step by step.
        page.locator("body").press("n")
        expect(page.locator("#step-150")).to_have_class("step step-agent step-error step-current")
        page.locator("body").press("k")
        expect(page.locator("#step-149")).to_have_class("step step-agent step-current")
        page.locator("body").press("j")
        page.locator("body").press("j")
        expect(page.locator("#step-151")).to_have_class("step step-agent step-current")
        page.locator("body").press("Shift+N")
        expect(page.locator("#step-150")).to_have_class("step step-agent step-error step-current")
        # Search within the run: / focuses it, Enter goes to the match.
        page.locator("body").press("/")
        page.keyboard.type("card expired")
        expect(page.locator("#run-search-count")).to_have_text("1 step matches · Enter: next")
        page.keyboard.press("Enter")
        expect(page.locator("#step-150")).to_have_class(
            "step step-agent step-error step-match step-current"
        )
        page.keyboard.press("Escape")
        # Compact: one line per step; 200 steps fit in a few screens.
        page.locator("body").press("c")
        expect(page.locator("[data-run=compact]")).to_have_attribute("aria-pressed", "true")
        height = page.evaluate("document.querySelector('.steps-root').offsetHeight")
        assert height < 900 * 9, height
        page.screenshot(path=SHOTS / "trace-tree-compact.png", full_page=False)
        browser.close()
