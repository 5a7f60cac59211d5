from __future__ import annotations

import pytest
from django.urls import reverse

from workspaces.models import ApiKey

pytestmark = pytest.mark.django_db


def test_login_page_renders(anon):
    response = anon.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Hivemind" in response.content


def test_login_with_password_lands_on_overview(anon, tenant):
    response = anon.post(
        reverse("login"), {"username": "acme-admin", "password": "pw-for-tests-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("overview", args=[tenant.workspace.slug])
    assert b"Send your agents' first trace" in response.content


def test_home_redirects_to_last_used_workspace(tenant, other_tenant):
    from tests.factories import add_member

    add_member(other_tenant.workspace, user=tenant.viewer)
    client = tenant.client_for(tenant.viewer)
    client.get(reverse("overview", args=[other_tenant.workspace.slug]))
    response = client.get(reverse("home"))
    assert response["Location"] == reverse("overview", args=[other_tenant.workspace.slug])


def test_a_page_view_writes_the_session_only_when_the_workspace_changes(tenant, other_tenant):
    """Every page view wrote the session (an UPDATE and a commit) to remember a
    workspace it already remembered."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import add_member

    add_member(other_tenant.workspace, user=tenant.viewer)
    client = tenant.client_for(tenant.viewer)

    def session_writes(slug: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("overview", args=[slug])).status_code == 200
        return sum('UPDATE "django_session"' in q["sql"] for q in queries.captured_queries)

    session_writes(tenant.workspace.slug)
    assert session_writes(tenant.workspace.slug) == 0
    assert session_writes(other_tenant.workspace.slug) == 1
    assert client.get(reverse("home"))["Location"] == reverse(
        "overview", args=[other_tenant.workspace.slug]
    )


def test_switcher_lists_every_workspace_of_the_user(tenant, other_tenant):
    from tests.factories import add_member

    add_member(other_tenant.workspace, user=tenant.viewer)
    response = tenant.client_for(tenant.viewer).get(
        reverse("overview", args=[tenant.workspace.slug])
    )
    assert b"Globex" in response.content and b"Acme" in response.content


@pytest.mark.parametrize("url_name", ["overview", "settings"])
def test_page_access_owner_other_anonymous(url_name, tenant, other_tenant, anon):
    url = reverse(url_name, args=[tenant.workspace.slug])
    response = tenant.client_for(tenant.admin).get(url)
    assert response.status_code == 200 and b"Acme" in response.content
    assert b"Globex" not in response.content
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    response = anon.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_overview_empty_state_offers_key_and_curl(tenant):
    response = tenant.client_for(tenant.admin).get(
        reverse("overview", args=[tenant.workspace.slug])
    )
    assert b"Create API key" in response.content


def test_settings_need_admin(tenant):
    url = reverse("settings", args=[tenant.workspace.slug])
    response = tenant.client_for(tenant.viewer).get(url)
    assert response.status_code == 403
    assert b"needs the Admin role" in response.content


def test_admin_creates_key_and_sees_secret_once_with_working_curl(client, tenant):
    url = reverse("api_key_new", args=[tenant.workspace.slug])
    page = tenant.client_for(tenant.admin)
    response = page.post(
        url, {"name": "agent-1", "scopes": ["ingest"]}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    key = ApiKey.objects.get(name="agent-1")
    secret = html.split('id="new-key-secret">')[1].split("<")[0]
    assert secret.startswith(f"hm_{key.prefix}_")
    assert 'data-copy="new-key-secret">Copy key</button>' in html  # a copy button beside it
    assert f"Bearer {secret}" in html and "/api/v1/traces" in html
    assert (
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json()[
            "key_name"
        ]
        == "agent-1"
    )
    listing = page.get(reverse("settings", args=[tenant.workspace.slug])).content.decode()
    assert secret not in listing and key.prefix in listing


def test_key_form_errors_are_shown(tenant):
    url = reverse("api_key_new", args=[tenant.workspace.slug])
    response = tenant.client_for(tenant.admin).post(url, {"name": "", "scopes": []})
    assert response.status_code == 422
    assert b"This field is required" in response.content


@pytest.mark.parametrize("view", ["api_key_new"])
def test_key_create_access_owner_other_anonymous_viewer(view, tenant, other_tenant, anon):
    url = reverse(view, args=[tenant.workspace.slug])
    data = {"name": "x", "scopes": ["ingest"]}
    assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404
    assert anon.post(url, data).status_code == 302
    assert tenant.client_for(tenant.viewer).post(url, data).status_code == 403
    assert tenant.client_for(tenant.admin).post(url, data).status_code == 200
    assert ApiKey.objects.filter(name="x").count() == 1


def test_revoke_access_owner_other_anonymous(tenant, other_tenant, anon):
    key = ApiKey.objects.get(workspace=tenant.workspace)
    url = reverse("api_key_revoke", args=[tenant.workspace.slug, key.pk])
    # another workspace's admin, even with their own slug in the URL, cannot reach it
    other_url = reverse("api_key_revoke", args=[other_tenant.workspace.slug, key.pk])
    assert other_tenant.client_for(other_tenant.admin).post(other_url).status_code == 404
    assert other_tenant.client_for(other_tenant.admin).post(url).status_code == 404
    assert anon.post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is None
    assert tenant.client_for(tenant.admin).post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_healthz_reports_database_and_pgvector(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["database"] is True
    assert body["pgvector"].count(".") == 2


def test_pages_carry_a_content_security_policy(tenant):
    from django.urls import reverse

    response = tenant.client_for(tenant.viewer).get(
        reverse("overview", args=[tenant.workspace.slug])
    )
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert b"onclick=" not in response.content and b"onsubmit=" not in response.content
