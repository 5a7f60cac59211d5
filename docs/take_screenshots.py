"""Screenshots for the README tour, from a running `make run` (demo workspace).

    .venv/bin/python docs/take_screenshots.py [--url http://127.0.0.1:8000]

Logs in with the demo credentials `make run` printed (read from
.hivemind/demo_credentials.json) and saves one PNG per main page in docs/tour/,
using Debian's /usr/bin/chromium through Playwright.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "tour"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    password = json.loads((ROOT / ".hivemind" / "demo_credentials.json").read_text())["password"]
    OUT.mkdir(parents=True, exist_ok=True)
    base, w = args.url, f"{args.url}/w/demo"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/w/.*"))

        def shot(name: str, url: str, full: bool = False) -> None:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=OUT / f"{name}.png", full_page=full)
            print("saved", OUT / f"{name}.png")

        shot("1-overview", f"{w}/")
        shot("2-traces", f"{w}/traces/")
        page.goto(f"{w}/traces/?status=failed")
        page.locator("#trace-results a[href*='/traces/']").first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=OUT / "3-trace.png")
        shot("4-failure-modes", f"{w}/failure-modes/")
        page.locator("a[href*='/failure-modes/']").filter(has_text=re.compile(r"\w")).nth(2).click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=OUT / "5-failure-mode.png", full_page=True)
        shot("6-skills", f"{w}/skills/")
        page.locator("a[href*='/skills/']").filter(has_text=re.compile(r"-")).first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=OUT / "7-skill-review.png", full_page=True)
        shot("8-metrics", f"{w}/metrics/", full=True)
        page.goto(f"{w}/training-data/")
        if page.locator("text=No snapshots yet.").count():
            page.fill("input[name=name]", "demo: all agents")
            page.get_by_role("button", name="Make snapshot").click()
            page.wait_for_load_state("networkidle")
        page.screenshot(path=OUT / "9-training-data.png")
        shot("10-settings", f"{w}/settings/", full=True)
        page.fill(
            "#pii-sample",
            "Refund jane.doe@example.com, card 4111 1111 1111 1111, "
            "from 10.1.2.3 with key sk-ant-api03-abcdefghijklmnopqrstuvwx",
        )
        page.locator("#pii-result pre").wait_for()
        page.locator("#pii").screenshot(path=OUT / "10b-pii-try-it.png")
        shot("11-audit-log", f"{w}/settings/audit/")
        browser.close()


if __name__ == "__main__":
    main()
