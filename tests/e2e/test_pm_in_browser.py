"""A PM in a real browser (Playwright, Debian's Chromium): filters Metrics to one
agent and a date range, reads the trend in words, and downloads the CSV of the
charts' series, which holds that agent and range only."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from metrics.filters import span_words
from metrics.services import rollups_refresh_for_traces
from tests.factories import ingest, make_user, make_workspace

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.mark.django_db(transaction=True)
def test_a_pm_filters_metrics_and_downloads_the_csv(live_server):
    from playwright.sync_api import expect, sync_playwright

    pm = make_user("pm-user", password="pm-password-1")
    workspace = make_workspace(name="PM", owner=pm)
    now = timezone.now()
    items = [{"external_id": f"{agent}-{d}-{i}", "agent": agent, "started_at": (now - timedelta(days=d, minutes=i)).isoformat(),
              "status": "succeeded" if i % 4 else "failed", "steps": [{"kind": "tool_call", "name": "t"}]}
             for agent in ("support-agent", "checkout-agent") for d in (1, 3, 10, 40) for i in range(8)]  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ingest(workspace, items).trace_ids)
    since, until = (now - timedelta(days=14)).date(), now.date()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "pm-user")
        page.fill("input[name=password]", "pm-password-1")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/w/{workspace.slug}/metrics/")
        page.get_by_role("link", name="By day").click()
        page.select_option("select[name=agent]", "support-agent")
        page.fill("input[name=from]", since.isoformat())
        page.fill("input[name=to]", until.isoformat())
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(
            f"{live_server.url}/w/{workspace.slug}/metrics/?by=day&agent=support-agent&from={since}&to={until}"
        )
        expect(page.locator(".filter-label")).to_contain_text("support-agent")
        # The chosen range against the range of the same length before it, in words.
        expect(page.locator("#trends")).to_contain_text("support-agent: 75% in ")
        expect(page.locator("#trends")).to_contain_text("(the 15 days before)")
        expect(page.locator("#trends")).not_to_contain_text("checkout-agent")
        expect(page.locator("#success-chart .main-svg").first).to_be_visible()  # plotly drew it
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the charts' data (CSV)").click()
        text = Path(download.value.path()).read_text()
        # One click: this month so far, against the same days of the month before.
        page.get_by_role("link", name="This month").click()
        today = timezone.now().date()
        first = today.replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        expect(page.locator("#trends")).to_contain_text(f"in {span_words(first, today)}")
        expect(page.locator("#trends")).to_contain_text(
            f"{span_words(before, before.replace(day=min(today.day, (first - timedelta(days=1)).day)))}"
        )
        expect(page.locator("#trends")).to_contain_text("the same days of the month before")
        browser.close()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["agent"] for r in rows} == {"support-agent"}
    assert sum(int(r["traces"]) for r in rows) == 24  # days 1, 3 and 10; not day 40
    assert all(since.isoformat() <= r["day_starting_utc"] <= until.isoformat() for r in rows)
