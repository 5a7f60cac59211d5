"""The smaller settings fixes: a new key's example fits its scopes and the key
is listed at once; cutting retention asks first and says what goes; members
who are not admins get their own settings page; a role changes without JS."""

from __future__ import annotations

import pytest

from workspaces.models import PiiPolicy


@pytest.mark.django_db
def test_a_read_only_key_gets_a_command_it_may_run_and_is_listed_at_once(tenant):
    admin = tenant.client_for(tenant.admin)
    response = admin.post("/w/acme/settings/api-keys/", {"name": "reader", "scopes": ["skills:read"],
                                                          "expires_in_days": ""}, HTTP_HX_REQUEST="true")  # fmt: skip
    text = response.content.decode()
    assert response.status_code == 200
    assert "Fetch the published skills with it" in text and "/api/v1/skills" in text
    assert "/api/v1/traces" not in text  # not a command that would answer 403
    assert 'id="api-key-rows" hx-swap-oob="true"' in text and "reader" in text
    ingest = admin.post("/w/acme/settings/api-keys/", {"name": "agent", "scopes": ["ingest"],
                                                       "expires_in_days": ""}, HTTP_HX_REQUEST="true")  # fmt: skip
    assert "Send a first trace with it" in ingest.content.decode()


@pytest.mark.django_db
def test_cutting_retention_warns_what_goes_and_asks_once_more(tenant):
    admin = tenant.client_for(tenant.admin)
    form = {
        "capture_enabled": "on",
        "redact_emails": "on",
        "retention_days": "30",
        "custom_patterns": "",
    }
    first = admin.post("/w/acme/settings/pii/", form)
    assert first.status_code == 409 and "This deletes data" in first.content.decode()
    assert PiiPolicy.objects.get(workspace=tenant.workspace).retention_days == 90
    confirmed = admin.post("/w/acme/settings/pii/", {**form, "confirm_retention": "30"})
    assert confirmed.status_code == 302
    assert PiiPolicy.objects.get(workspace=tenant.workspace).retention_days == 30
    longer = admin.post("/w/acme/settings/pii/", {**form, "retention_days": "60"})
    assert longer.status_code == 302  # keeping data longer deletes nothing: no question


@pytest.mark.django_db
def test_members_who_are_not_admins_get_their_own_settings(tenant, other_tenant, anon):
    for user in (tenant.viewer, tenant.lead):
        page = tenant.client_for(user).get("/w/acme/settings/mine/")
        assert page.status_code == 200 and b"Change your password" in page.content
        assert b'href="/w/acme/settings/"' not in tenant.client_for(user).get("/w/acme/").content
    assert (
        b"Email me these alerts"
        in tenant.client_for(tenant.lead).get("/w/acme/settings/mine/").content
    )
    assert anon.get("/w/acme/settings/mine/").status_code == 302
    assert (
        other_tenant.client_for(other_tenant.admin).get("/w/acme/settings/mine/").status_code == 404
    )


@pytest.mark.django_db
def test_role_change_has_a_button(tenant):
    page = tenant.client_for(tenant.admin).get("/w/acme/settings/").content.decode()
    assert (
        "data-autosubmit" not in page
        and '<button class="small secondary" type="submit">Change</button>' in page
    )


@pytest.mark.django_db
def test_the_api_keys_section_says_what_every_scope_lets_a_key_do(tenant):
    """The section explained four scopes of five: `failures:write` (labelling runs,
    as the MCP tool `label_run` and the labels API do) was offered as a checkbox
    and said nowhere what it allows."""
    from workspaces.models import Scope

    text = tenant.client_for(tenant.admin).get("/w/acme/settings/").content.decode()
    explained = text.split('<section class="card" id="api-keys"', 1)[-1].split("<table", 1)[0]
    assert [s for s in Scope.values if f"<code>{s}</code> " not in explained] == []
