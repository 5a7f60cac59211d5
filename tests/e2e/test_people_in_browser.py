"""People in a real browser (Playwright, Debian's Chromium): an admin invites
someone, who sets a password from the emailed link and works with the invited
role; a forgotten password is reset through the emailed link; a signed-in user
creates a workspace. Emails are read from Django's test mail outbox (the app's
mail backend: console by default, SMTP from the environment)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core import mail

from tests.factories import make_user, make_workspace
from workspaces.models import Membership, Workspace

CHROMIUM = os.environ.get("HIVEMIND_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def log_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_invite_set_password_and_work_as_the_invited_role(live_server):
    from playwright.sync_api import expect, sync_playwright

    admin = make_user("people-admin", password="admin-password-1")
    workspace = make_workspace(name="People", owner=admin)
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        log_in(page, base, "people-admin", "admin-password-1")
        page.goto(f"{base}/w/{workspace.slug}/settings/#members")
        invite = page.locator("form", has=page.get_by_role("button", name="Send invitation"))
        invite.locator("input[name=email]").fill("newhire@example.com")
        invite.locator("select[name=role]").select_option("lead")
        invite.get_by_role("button", name="Send invitation").click()
        expect(page.locator(".messages")).to_contain_text("newhire@example.com")
        link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[-1].body).group(0)
        # The newcomer's own browser: a fresh context, so no request of the
        # admin's page still in flight can set the admin's session again.
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        page.goto(link.replace("http://testserver", base).replace("http://127.0.0.1:8000", base))
        expect(page.locator("h1")).to_contain_text("Join People")
        page.fill("input[name=username]", "newhire")
        page.fill("input[name=password1]", "newhire-password-9")
        page.fill("input[name=password2]", "newhire-password-9")
        page.get_by_role("button", name="Create account and join").click()
        expect(page.locator(".userbox")).to_contain_text("Lead")
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        log_in(page, base, "newhire", "newhire-password-9")
        expect(page).to_have_url(re.compile(f"/w/{workspace.slug}/$"))
        expect(page.locator(".userbox")).to_contain_text("newhire")
        browser.close()
    assert Membership.objects.get(workspace=workspace, user__username="newhire").role == "lead"


@pytest.mark.django_db(transaction=True)
def test_reset_a_forgotten_password_and_create_a_workspace(live_server):
    from playwright.sync_api import expect, sync_playwright

    make_user("forgetful", password="first-password-1", email="forgetful@example.com")
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/login/")
        page.get_by_role("link", name="Forgot your password?").click()
        page.fill("input[name=email]", "forgetful@example.com")
        page.get_by_role("button", name="Send the link").click()
        expect(page.locator("h1")).to_contain_text("Check your email")
        link = re.search(r"https?://\S+/password/reset/\S+/", mail.outbox[-1].body).group(0)
        page.goto(re.sub(r"^https?://[^/]+", base, link))
        page.fill("input[name=new_password1]", "second-password-2")
        page.fill("input[name=new_password2]", "second-password-2")
        page.get_by_role("button", name="Set password").click()
        expect(page.locator("h1")).to_contain_text("Your password is set")
        log_in(page, base, "forgetful", "second-password-2")
        # Not in any workspace yet: create one.
        expect(page.locator("h1")).to_contain_text("not in a workspace")
        page.get_by_role("link", name="Create a workspace").click()
        page.fill("input[name=name]", "Forgetful team")
        page.get_by_role("button", name="Create workspace").click()
        expect(page.locator(".messages")).to_contain_text("you are its admin")
        expect(page.locator(".userbox")).to_contain_text("Admin")
        browser.close()
    assert Workspace.objects.filter(slug="forgetful-team").exists()
