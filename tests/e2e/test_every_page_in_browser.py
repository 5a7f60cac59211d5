"""Every page in the URL conf, in a real browser (Playwright, Debian's
Chromium): none is wider than a 390 px phone, and axe-core finds no serious or
critical accessibility violation on any of them in the light theme, nor on the main
pages in the dark one (the system setting, emulated). Pages are filled with one
of everything (the isolation matrix's workspace) and a run with long texts, and
visited as its admin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.test_isolation_matrix import _fill, _page_params, _routes, victim  # noqa: F401

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
AXE = Path(django_settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
OUTSIDE = ["/password/change/", "/workspaces/new/", "/api/docs", "/no-such-page/"]
# Swagger UI's own markup (nested controls, its colours): checked for width, not by axe.
VENDOR = {"/api/docs"}
SIGNED_OUT = ["/login/", "/password/reset/"]
# Files, not pages.
DOWNLOADS = {"impact_csv", "series_csv", "compound_csv", "skill_trial_benchmark", "mode_daily_csv",
             "snapshot_download"}  # fmt: skip
# Parts of a page that htmx fetches into it (no <title> or <html lang> of their own):
# checked for width, and by axe inside the pages that hold them.
FRAGMENTS = {"trace_retention", "cluster_run", "trace_incidents", "mode_skill_panel",
             "mode_skill_cells", "job_status"}  # fmt: skip
# Checked by axe in the dark theme too (every signed-in page is in the light one).
MAIN = {"overview", "trace_list", "trace_detail", "mode_list", "mode_detail", "skill_list",
        "skill_detail", "metrics", "settings", "audit_log", "snapshot_list", "trace_compare",
        "policy_list", "policy_detail", "review_queue", "review_run", "long_texts"}  # fmt: skip


def _long_texts_trace(workspace) -> int:  # type: ignore[no-untyped-def]
    """A run whose texts are long: one folded behind "Show all", one short enough to
    show whole but taller than a phone's box once wrapped (a scroll region a
    keyboard could not reach, before)."""
    from tests.factories import ingest, trace_payload
    from traces.models import Trace

    tall = "\n".join(["customer record field " + "x" * 40] * 6)
    folded = "\n".join(f"line {i}: the tool printed this" for i in range(40))
    ingest(workspace=workspace, items=[trace_payload("long-texts", steps=[
        {"kind": "user_prompt", "input": "Refund order 8812"},
        {"kind": "tool_call", "name": "crm.lookup", "input": {"id": 1}, "output": tall},
        {"kind": "tool_call", "name": "crm.dump", "input": {"id": 1}, "output": folded},
    ])])  # fmt: skip
    return Trace.objects.get(workspace=workspace, external_id="long-texts").pk


def _axe(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {n['target']}"
        for v in result["violations"] if v["impact"] in ("serious", "critical")
        for n in v["nodes"][:3]
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_no_page_is_wider_than_a_phone_and_the_main_pages_pass_axe(live_server, victim):  # noqa: F811
    from playwright.sync_api import sync_playwright

    tenant = victim["tenant"]
    slug = tenant.workspace.slug
    pages = [(name, _fill(route, _page_params(name, victim), slug)) for route, name in _routes()
             if name not in DOWNLOADS]  # fmt: skip
    pages += [(path, path) for path in OUTSIDE]
    long_pk = _long_texts_trace(tenant.workspace)
    pages += [("long_texts", f"/w/{slug}/traces/{long_pk}/"),
              ("review_run", f"/w/{slug}/failures/review/{long_pk}/")]  # fmt: skip
    too_wide, errors, visited, violations = [], [], 0, {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for signed_in, scheme in ((False, "light"), (True, "light"), (True, "dark")):
            # bypass_csp: only so the test can inject axe-core; the app's CSP stays on.
            context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True,
                                          color_scheme=scheme)  # fmt: skip
            page = context.new_page()
            page.set_default_timeout(30_000)
            if signed_in:
                page.goto(f"{live_server.url}/login/")
                page.fill("input[name=username]", tenant.admin.username)
                page.fill("input[name=password]", "pw-for-tests-1")
                page.click("button[type=submit]")
            if not signed_in:
                visit = [(p, p) for p in SIGNED_OUT]
            elif scheme == "dark":  # the theme's contrast, on the pages axe checks
                visit = [(name, path) for name, path in pages
                         if name in MAIN or (path in OUTSIDE and path not in VENDOR)]  # fmt: skip
            else:
                visit = pages
            for name, path in visit:
                status = page.request.get(live_server.url + path).status
                if status == 405:  # an action (POST only), not a page
                    continue
                if status >= 500:
                    errors.append(f"{path}: {status}")
                    continue
                page.goto(live_server.url + path)
                page.wait_for_load_state("networkidle")
                visited += 1
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > 390:
                    too_wide.append(f"{path}: {width}px")
                if path not in VENDOR and name not in FRAGMENTS:
                    found = _axe(page)
                    if found:
                        violations[f"{path} ({scheme})"] = found
            context.close()
        browser.close()
    assert not errors, errors
    assert visited >= 24, visited
    assert not too_wide, too_wide
    assert not violations, "\n".join(f"{k}: {v}" for k, v in violations.items())


# Each section link's text, the lines it is laid out on (a link broken inside its
# name spans two).
_LINK_LINES = """() => [...document.querySelectorAll('.mainnav a')].map(a => {
  const range = document.createRange(); range.selectNodeContents(a);
  const tops = [...range.getClientRects()].map(r => r.bottom).sort((x, y) => x - y);
  const lines = tops.filter((t, i) => i === 0 || t - tops[i - 1] > 8).length;
  return [a.textContent.trim().replace(/\\s+/g, ' '), lines];
})"""


@pytest.mark.django_db(transaction=True)
def test_no_section_name_breaks_inside_at_any_common_width(live_server, tenant):
    """At 1280 px the header's links broke inside their names ("Failure / modes",
    "Review / runs", "Training / data", the Skills count under "Skills"), since the
    sections and the account links shared one line; now the sections take a line of
    their own below 1,360 px, and a name is never broken."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", tenant.admin.username)
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("button[type=submit]")
        broken = {}
        for width in (1440, 1366, 1280, 1024, 761, 600, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/w/{tenant.workspace.slug}/")
            links = page.evaluate(_LINK_LINES)
            assert len(links) >= 6, links
            broken[width] = [name for name, lines in links if lines > 1]
        browser.close()
    assert broken == {w: [] for w in broken}, broken
