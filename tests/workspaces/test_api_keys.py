from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import make_key
from workspaces.errors import AuthenticationFailed, PermissionDenied
from workspaces.models import ApiKey, AuditEvent, Scope
from workspaces.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_api_key_secret_is_stored_only_as_hash(tenant):
    new = api_key_create(
        workspace=tenant.workspace, name="ci", scopes=[Scope.INGEST], actor=tenant.admin
    )
    stored = ApiKey.objects.get(pk=new.api_key.pk)
    assert new.secret.startswith(f"hm_{stored.prefix}_")
    assert new.secret not in stored.secret_hash
    assert len(stored.secret_hash) == 64
    assert AuditEvent.objects.filter(action="api_key.create", object_id=str(stored.pk)).exists()


def test_whoami_names_the_keys_own_workspace(client, tenant, other_tenant):
    response = client.get("/api/v1/whoami", headers=tenant.api_headers())
    assert response.status_code == 200
    body = response.json()
    assert body["workspace"] == tenant.workspace.slug
    assert sorted(body["scopes"]) == ["failures:read", "ingest", "skills:read"]
    other = client.get("/api/v1/whoami", headers=other_tenant.api_headers())
    assert other.json()["workspace"] == other_tenant.workspace.slug


def test_alternative_header_is_accepted(client, tenant):
    response = client.get("/api/v1/whoami", headers={"X-Hivemind-Api-Key": tenant.key})
    assert response.status_code == 200
    body = response.json()
    prefix = tenant.key.split("_")[1]
    assert body["workspace"] == tenant.workspace.slug and prefix in body["key_prefix"]


def test_missing_key_gets_401_with_reason(client):
    response = client.get("/api/v1/whoami")
    assert response.status_code == 401
    assert "Missing API key" in response.json()["detail"]


@pytest.mark.parametrize(
    "header, expected",
    [
        ("Bearer nonsense", "Malformed API key"),
        ("Bearer hm_000000000000_wrong", "Unknown API key"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer"),
    ],
)
def test_bad_keys_get_401_with_reason(client, db, header, expected):
    response = client.get("/api/v1/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert expected in response.json()["detail"]


def test_right_prefix_wrong_secret_is_rejected(client, tenant):
    forged = tenant.key[:-4] + "AAAA"
    response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_revoked_key_gets_401_saying_it_was_revoked(client, tenant):
    api_key = ApiKey.objects.get(workspace=tenant.workspace)
    api_key_revoke(api_key=api_key, actor=tenant.admin)
    response = client.get("/api/v1/whoami", headers=tenant.api_headers())
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_key_without_scope_is_refused_with_403(tenant):
    secret = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    with pytest.raises(PermissionDenied, match="lacks the 'ingest' scope"):
        api_key_authenticate(raw_key=secret, scope=Scope.INGEST)


def test_unknown_key_raises_authentication_failed(db):
    with pytest.raises(AuthenticationFailed):
        api_key_authenticate(raw_key="hm_abc_def", scope=None)


def test_last_used_is_recorded(client, tenant):
    client.get("/api/v1/whoami", headers=tenant.api_headers())
    api_key = ApiKey.objects.get(workspace=tenant.workspace)
    assert api_key.last_used_at is not None
    assert (timezone.now() - api_key.last_used_at).total_seconds() < 60


def test_an_expired_key_is_refused_like_a_revoked_one(client, tenant):
    from datetime import timedelta

    from django.utils import timezone

    from workspaces.models import ApiKey, Scope
    from workspaces.services import api_key_create

    new = api_key_create(workspace=tenant.workspace, name="short-lived", actor=None,
                         scopes=[Scope.SKILLS_READ], expires_in_days=30)  # fmt: skip
    headers = {"Authorization": f"Bearer {new.secret}"}
    assert client.get("/api/v1/skills", headers=headers).status_code == 200
    assert client.get("/api/v1/skills?task=x", headers=headers).status_code == 200
    ApiKey.objects.filter(pk=new.api_key.pk).update(expires_at=timezone.now() - timedelta(days=1))
    for url in ("/api/v1/skills", "/api/v1/skills?task=x", "/api/v1/skills.zip"):
        response = client.get(url, headers=headers)  # the early poll path too
        assert response.status_code == 401 and "expired" in response.json()["detail"], url


def test_a_key_can_be_made_with_an_expiry_on_the_settings_page(tenant):
    from django.urls import reverse

    from workspaces.models import ApiKey

    admin = tenant.client_for(tenant.admin)
    response = admin.post(reverse("api_key_new", args=[tenant.workspace.slug]),
                          {"name": "ci-bot", "scopes": ["ingest"], "expires_in_days": "90"})  # fmt: skip
    assert response.status_code == 200
    key = ApiKey.objects.get(name="ci-bot")
    assert key.expires_at is not None and 89 <= (key.expires_at - key.created_at).days <= 90
    page = admin.get(reverse("settings", args=[tenant.workspace.slug]))
    assert b"until " + key.expires_at.strftime("%Y-%m-%d").encode() in page.content
