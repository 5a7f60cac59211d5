"""The loop in a real browser: Playwright (PyPI) driving Debian's /usr/bin/chromium.

On the default runtime (a real Celery worker on the embedded Redis broker): log
in; send traces through the API; find one; see its failure mode; see the skill
the loop proposed on its own (no click drafts it); approve it; see it in the
agents' API; see the metrics chart drawn.
Screenshots of each step go to `.hivemind/e2e-screenshots/`.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.factories import make_key, make_user, make_workspace, running_worker
from tests.test_loop import WORKER_ENV, loop_traces
from workspaces.models import Scope

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(django_settings.BASE_DIR) / ".hivemind" / "e2e-screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _post(url: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _get(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.django_db(transaction=True)
def test_the_loop_in_chromium(live_server):
    with running_worker(**WORKER_ENV):
        _drive_the_loop(live_server)


def _drive_the_loop(live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    admin = make_user("e2e-admin", password="e2e-password-1")
    workspace = make_workspace(name="E2E", owner=admin)
    key = make_key(workspace, scopes=[Scope.INGEST, Scope.SKILLS_READ])
    base = live_server.url
    w = f"{base}/w/{workspace.slug}"

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        # Anything the Content-Security-Policy blocks shows up as a console error.
        blocked: list[str] = []
        page.on("console", lambda message: blocked.append(message.text)
                if "Content Security Policy" in message.text else None)  # fmt: skip

        # Log in.
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "e2e-admin")
        page.fill("input[name=password]", "e2e-password-1")
        page.click("button[type=submit]")
        expect(page.locator("h1").first).to_be_visible()
        page.screenshot(path=SHOTS / "1-overview-empty.png", full_page=True)

        # Send traces through the API (the worker finds, embeds and clusters incidents).
        result = _post(f"{base}/api/v1/traces", key, {"traces": loop_traces()})
        assert all(r["status"] == "created" for r in result["results"]), result

        # Find one.
        page.goto(f"{w}/traces/?q=refund&status=failed")
        page.click("text=refund-3")
        expect(page.get_by_text("429 Too Many Requests").first).to_be_visible()
        page.screenshot(path=SHOTS / "2-trace.png", full_page=True)

        # See its failure mode, and the skill the loop drafted for it by itself
        # (offline distiller: no ANTHROPIC_API_KEY in tests). Reload until it is there.
        mode_link = page.locator("a[href*='/failure-modes/']", has_text="stripe.refund")
        for _ in range(90):
            page.goto(f"{w}/failure-modes/")
            if mode_link.count():
                break
            page.wait_for_timeout(1000)
        mode_link.first.click()
        proposed = page.locator("#draft-job a[href*='/skills/']")
        for _ in range(90):
            if proposed.count():
                break
            page.wait_for_timeout(1000)
            page.reload()
        expect(proposed).to_be_visible()
        expect(page.locator("#draft-job")).to_contain_text("automatically")
        page.screenshot(path=SHOTS / "3-failure-mode.png", full_page=True)
        skill_name = proposed.inner_text().rsplit(" v", 1)[0]
        proposed.click()

        # Approve it, to every agent (a trial is tested in test_trial_in_browser.py).
        page.get_by_label("To every agent now").check()
        page.get_by_role("button", name="Approve and publish").click()
        expect(page.locator("h1 .badge")).to_have_text("Published")
        page.screenshot(path=SHOTS / "4-skill-published.png", full_page=True)

        # The agents' API serves it.
        names = [s["name"] for s in _get(f"{base}/api/v1/skills", key)["items"]]
        assert skill_name in names, (skill_name, names)

        # The metrics chart is drawn by plotly.js.
        page.goto(f"{w}/metrics/?by=day")
        expect(page.locator("#success-chart .main-svg").first).to_be_visible()
        expect(page.locator("#success-chart")).to_contain_text("Success rate")
        page.screenshot(path=SHOTS / "5-metrics.png", full_page=True)

        # Settings: the confirm-before-revoke handler works without inline script.
        page.goto(f"{w}/settings/")
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.get_by_role("button", name="Revoke").first.click()
        expect(page.get_by_role("button", name="Revoke").first).to_be_visible()  # not revoked
        assert blocked == [], blocked
        browser.close()
