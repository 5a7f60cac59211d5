"""People and workspaces in the app: password reset and change, creating a
workspace, and Django admin changes on the audit log."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings

from tests.factories import make_user
from workspaces.models import AuditEvent, Membership, Workspace


@pytest.mark.django_db
def test_password_reset_by_email_then_log_in(client):
    make_user("rita", password="old-password-123", email="rita@example.com")
    page = client.get("/password/reset/")
    assert page.status_code == 200 and b"Reset your password" in page.content
    # The same answer for an unknown address (no account enumeration), and no email.
    assert (
        client.post("/password/reset/", {"email": "nobody@example.com"}).url
        == "/password/reset/sent/"
    )
    assert mail.outbox == []
    assert (
        client.post("/password/reset/", {"email": "rita@example.com"}).url
        == "/password/reset/sent/"
    )
    [message] = mail.outbox
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert b"Set a new password" in form.content
    set_url = form.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"}
    )
    assert done.url == "/password/reset/done/"
    assert client.login(username="rita", password="brand-new-pass-42")
    assert b"does not work any more" in client.get(link, follow=True).content  # used once


@pytest.mark.django_db
def test_password_change_needs_the_current_password(client):
    user = make_user("sam", password="old-password-123")
    assert client.get("/password/change/").status_code == 302  # anonymous: to the login page
    client.force_login(user)
    wrong = client.post("/password/change/", {"old_password": "nope", "new_password1": "x-new-pass-77",
                                              "new_password2": "x-new-pass-77"})  # fmt: skip
    assert wrong.status_code == 200 and b"incorrectly" in wrong.content
    ok = client.post("/password/change/", {"old_password": "old-password-123",
                                           "new_password1": "x-new-pass-77", "new_password2": "x-new-pass-77"})  # fmt: skip
    assert ok.url == "/password/change/done/"
    user.refresh_from_db()
    assert user.check_password("x-new-pass-77")


@pytest.mark.django_db
def test_any_signed_in_user_creates_a_workspace_and_is_its_admin(client, tenant):
    assert client.get("/workspaces/new/").status_code == 302  # anonymous
    newbie = make_user("newbie")
    client.force_login(newbie)
    assert client.get("/workspaces/new/").status_code == 200
    created = client.post("/workspaces/new/", {"name": "Support bots", "slug": ""})
    assert created.url == "/w/support-bots/"
    workspace = Workspace.objects.get(slug="support-bots")
    assert Membership.objects.get(workspace=workspace, user=newbie).role == "admin"
    assert AuditEvent.objects.filter(workspace=workspace, action="workspace.create").exists()
    taken = client.post("/workspaces/new/", {"name": "Acme again", "slug": tenant.workspace.slug})
    assert taken.status_code == 400 and b"is taken" in taken.content
    assert client.post("/workspaces/new/", {"name": "", "slug": ""}).status_code == 400
    assert Workspace.objects.count() == 2  # tenant's and the new one: nothing half-made


@pytest.mark.django_db
@override_settings(HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY=True)
def test_creating_workspaces_can_be_limited_to_staff(client):
    client.force_login(make_user("plain"))
    assert client.post("/workspaces/new/", {"name": "Mine"}).status_code == 403
    assert not Workspace.objects.filter(name="Mine").exists()
    client.force_login(make_user("boss", is_staff=True))
    assert client.post("/workspaces/new/", {"name": "Staff one"}).status_code == 302


@pytest.mark.django_db
def test_django_admin_changes_are_on_the_workspace_audit_log(client, tenant):
    superuser = get_user_model().objects.create_superuser(
        "root", "root@example.com", "root-pass-123"
    )
    client.force_login(superuser)
    # Adding oneself as admin of a workspace through Django admin.
    response = client.post("/admin/workspaces/membership/add/", {
        "workspace": tenant.workspace.pk, "user": superuser.pk, "role": "admin"})  # fmt: skip
    assert response.status_code == 302, response.content[:500]
    event = AuditEvent.objects.get(workspace=tenant.workspace, action="admin.add")
    assert event.actor == superuser and event.object_type == "Membership"
    # Creating a workspace in Django admin.
    form = client.get("/admin/workspaces/workspace/add/").content.decode()
    prefix = re.search(r'name="([\w-]+)-TOTAL_FORMS"', form).group(1)
    made_response = client.post("/admin/workspaces/workspace/add/", {
        "name": "Made in admin", "slug": "made-in-admin", "time_zone": "UTC",
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000"})  # fmt: skip
    assert made_response.status_code == 302, made_response.content[:300]
    made = Workspace.objects.get(slug="made-in-admin")
    assert AuditEvent.objects.filter(workspace=made, action="admin.add", actor=superuser).exists()


@pytest.mark.django_db
def test_new_workspace_is_in_the_menu_with_one_workspace_and_only_when_allowed(client, tenant):
    from django.test import override_settings

    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/").content.decode()
    assert "+ New workspace" in page  # one workspace is enough to see it
    with override_settings(HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY=True):
        page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/").content.decode()
        assert "+ New workspace" not in page
