"""8/9: settings pages (members, PII policy with live preview, audit log), login and
ingest rate limits, retention purge that keeps rollups, enqueue with the broker down."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from failures.models import Incident
from metrics.models import DailyRollup
from metrics.services import rollups_refresh_for_traces, rollups_sweep
from tests.factories import celery_broker, ingest, make_user, trace_payload
from traces.models import Step, Trace
from traces.services import traces_purge_expired
from workspaces.models import AuditEvent, Membership, PiiPolicy, Role


def _url(tenant, name, **kwargs):
    return reverse(name, kwargs={"slug": tenant.workspace.slug, **kwargs})


# --- members ---------------------------------------------------------------------------


def _invite(admin, tenant, email, role="lead"):
    from django.core import mail

    before = len(mail.outbox)
    response = admin.post(_url(tenant, "member_add"), {"email": email, "role": role}, follow=True)
    assert len(mail.outbox) == before + 1
    message = mail.outbox[-1]
    link = next(line for line in message.body.splitlines() if "/invite/" in line)
    return response, message, link.split("://", 1)[1].split("/", 1)[1]


@pytest.mark.django_db
def test_inviting_does_not_add_anyone_until_they_accept_then_role_and_removal(tenant):
    newcomer = make_user("newcomer", email="new@example.com")
    admin = tenant.client_for(tenant.admin)
    response, message, path = _invite(admin, tenant, "NEW@example.com")
    assert message.to == ["NEW@example.com"] and "as lead" in message.body
    assert b"Invitation sent to NEW@example.com" in response.content
    assert not Membership.objects.filter(workspace=tenant.workspace, user=newcomer).exists()
    assert b"Pending invitations" in response.content

    person = tenant.client_for(newcomer)
    page = person.get("/" + path)
    assert page.status_code == 200 and b"Join as newcomer" in page.content
    assert person.post("/" + path).status_code == 302
    membership = Membership.objects.get(workspace=tenant.workspace, user=newcomer)
    assert membership.role == Role.LEAD
    assert person.get("/" + path).status_code == 404  # used once

    admin.post(_url(tenant, "member_role", pk=membership.pk), {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    admin.post(_url(tenant, "member_remove", pk=membership.pk))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = set(AuditEvent.objects.filter(workspace=tenant.workspace).values_list("action",
                                                                                   flat=True))  # fmt: skip
    assert {"invitation.create", "invitation.accept", "membership.add", "membership.change",
            "membership.remove"} <= actions  # fmt: skip


@pytest.mark.django_db
def test_the_admin_cannot_tell_whether_an_account_exists(tenant):
    make_user("known", email="known@example.com")
    admin = tenant.client_for(tenant.admin)
    known, _, _ = _invite(admin, tenant, "known@example.com")
    unknown, _, _ = _invite(admin, tenant, "unknown@example.com")
    assert known.status_code == unknown.status_code == 200
    text = [m.message for m in known.context["messages"]][0]
    other = [m.message for m in unknown.context["messages"]][0]
    assert text.replace("known@", "unknown@") == other


@pytest.mark.django_db
def test_a_newcomer_creates_an_account_from_the_link(tenant, anon):
    admin = tenant.client_for(tenant.admin)
    _, _, path = _invite(admin, tenant, "fresh@example.com", role="viewer")
    page = anon.get("/" + path)
    assert b"Create account and join" in page.content
    bad = anon.post("/" + path, {"username": "fresh", "password1": "x", "password2": "y"})
    assert bad.status_code == 422
    response = anon.post("/" + path, {"username": "fresh", "password1": "a-long-pass-9",
                                      "password2": "a-long-pass-9"})  # fmt: skip
    assert response.status_code == 302
    membership = Membership.objects.get(workspace=tenant.workspace, user__username="fresh")
    assert membership.role == Role.VIEWER and membership.user.email == "fresh@example.com"
    assert anon.get(response["Location"]).status_code == 200  # signed in


@pytest.mark.django_db
def test_expired_withdrawn_and_wrong_links_are_refused_the_same_way(tenant, anon):
    from workspaces.models import Invitation

    admin = tenant.client_for(tenant.admin)
    _, _, expired = _invite(admin, tenant, "a@example.com")
    Invitation.objects.filter(email="a@example.com").update(expires_at=timezone.now())
    _, _, withdrawn = _invite(admin, tenant, "b@example.com")
    pending = Invitation.objects.get(email="b@example.com")
    admin.post(_url(tenant, "invitation_revoke", pk=pending.pk))
    _, _, replaced = _invite(admin, tenant, "c@example.com")
    _invite(admin, tenant, "c@example.com")  # a new invitation replaces the open one
    for path in (expired, withdrawn, replaced, "invite/inv_wrong/"):
        response = anon.get("/" + path)
        assert response.status_code == 404 and b"not valid" in response.content, path
        assert anon.post("/" + path, {"username": "z", "password1": "a-long-pass-9",
                                      "password2": "a-long-pass-9"}).status_code == 404  # fmt: skip
    assert not Membership.objects.filter(user__username="z").exists()


@pytest.mark.django_db
def test_member_add_refuses_a_non_email_and_last_admin_is_kept(tenant):
    admin = tenant.client_for(tenant.admin)
    response = admin.post(_url(tenant, "member_add"), {"email": "nobody", "role": "lead"})
    assert response.status_code == 422 and b"valid email" in response.content
    own = Membership.objects.get(workspace=tenant.workspace, user=tenant.admin)
    back = _url(tenant, "settings") + "#members"  # the form's `next`, as the page sends it
    response = admin.post(_url(tenant, "member_role", pk=own.pk), {"role": "viewer", "next": back},
                          follow=True)  # fmt: skip
    assert response.redirect_chain[-1][0] == back and b"at least one admin" in response.content
    assert Membership.objects.get(pk=own.pk).role == Role.ADMIN


@pytest.mark.django_db
def test_member_pages_refuse_non_admins_other_workspaces_and_anonymous(tenant, other_tenant, anon):
    target = Membership.objects.get(workspace=tenant.workspace, user=tenant.viewer)
    posts = [
        (_url(tenant, "member_add"), {"email": "x@example.com", "role": "admin"}),
        (_url(tenant, "invitation_revoke", pk=1), {}),
        (_url(tenant, "member_role", pk=target.pk), {"role": "admin"}),
        (_url(tenant, "member_remove", pk=target.pk), {}),
        (_url(tenant, "pii_policy_save"), {"retention_days": 5}),
        (_url(tenant, "pii_policy_try"), {"sample": "a@b.co"}),
    ]
    for url, data in posts:
        assert tenant.client_for(tenant.lead).post(url, data).status_code == 403, url
        assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404, url
        assert anon.post(url, data).status_code == 302, url  # to the login page
    target.refresh_from_db()
    assert target.role == Role.VIEWER


# --- PII policy ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pii_try_it_shows_the_sample_as_it_would_be_stored(tenant):
    admin = tenant.client_for(tenant.admin)
    data = {"redact_emails": "on", "redact_secrets": "on", "retention_days": 90,
            "custom_patterns": "ORDER_ID: ORD-\\d+",
            "sample": "mail jane@example.com about ORD-123 from 10.0.0.1"}  # fmt: skip
    response = admin.post(_url(tenant, "pii_policy_try"), data, HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200
    assert "jane@example.com" not in text and "ORD-123" not in text
    assert "10.0.0.1" in text  # IP redaction is switched off in this form
    bad = admin.post(_url(tenant, "pii_policy_try"), {**data, "custom_patterns": "X: ("})
    assert b"Invalid regular expression" in bad.content


@pytest.mark.django_db
def test_pii_policy_save_validates_audits_and_applies_to_ingest(tenant):
    admin = tenant.client_for(tenant.admin)
    bad = admin.post(_url(tenant, "pii_policy_save"), {"retention_days": 0})
    assert bad.status_code == 422
    response = admin.post(_url(tenant, "pii_policy_save"), {
        "capture_enabled": "on", "redact_emails": "on", "retention_days": 30,
        "custom_patterns": "ORDER_ID: ORD-\\d+", "confirm_retention": "30",
    })  # fmt: skip
    assert response.status_code == 302
    policy = PiiPolicy.objects.get(workspace=tenant.workspace)
    assert policy.retention_days == 30 and not policy.redact_ip_addresses
    assert policy.custom_patterns == [{"name": "ORDER_ID", "pattern": "ORD-\\d+"}]
    assert AuditEvent.objects.filter(action="pii_policy.change").exists()
    ingest(workspace=tenant.workspace,
                       items=[trace_payload("p1", task="refund ORD-991 for 10.0.0.1")])  # fmt: skip
    assert Trace.objects.get(external_id="p1").task == "refund [ORDER_ID] for 10.0.0.1"


# --- audit log -------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_log_filters_and_access(tenant, other_tenant, anon):
    admin = tenant.client_for(tenant.admin)
    admin.post(_url(tenant, "pii_policy_save"),
               {"retention_days": 45, "redact_emails": "on", "confirm_retention": "45"})  # fmt: skip
    url = _url(tenant, "audit_log")
    page = admin.get(url)
    assert page.status_code == 200 and b"<code>pii_policy.change</code>" in page.content
    filtered = admin.get(url, {"action": "api_key"})
    assert b"<code>pii_policy.change</code>" not in filtered.content
    assert admin.get(url, {"since": "not-a-date"}).status_code == 200  # explained, not 500
    assert tenant.client_for(tenant.viewer).get(url).status_code == 403
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert anon.get(url).status_code == 302


# --- rate limits -----------------------------------------------------------------------


@pytest.mark.django_db
def test_login_attempts_are_limited(client, settings):
    settings.HIVEMIND_LOGIN_ATTEMPTS = 3
    make_user("victim", password="right-password-1")
    for _ in range(3):
        assert (
            client.post("/login/", {"username": "victim", "password": "wrong"}).status_code == 200
        )
    locked = client.post("/login/", {"username": "victim", "password": "right-password-1"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert b"Too many failed attempts" in locked.content


@pytest.mark.django_db
def test_ingest_is_rate_limited_per_key_with_retry_after(client, tenant, other_tenant, settings):
    settings.HIVEMIND_INGEST_RATE_LIMIT = 2
    body = json.dumps({"traces": [trace_payload()]})
    for _ in range(2):
        ok = client.post("/api/v1/traces", body, content_type="application/json",
                         headers=tenant.api_headers())  # fmt: skip
        assert ok.status_code == 200
    limited = client.post("/api/v1/traces", body, content_type="application/json",
                          headers=tenant.api_headers())  # fmt: skip
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert "retry after" in limited.json()["detail"]
    # Another key (another workspace) has its own budget.
    other = client.post("/api/v1/traces", body, content_type="application/json",
                        headers=other_tenant.api_headers())  # fmt: skip
    assert other.status_code == 200


# --- retention and catch-up ---------------------------------------------------------------


@pytest.mark.django_db
def test_purge_removes_old_traces_and_keeps_rollups(tenant):
    PiiPolicy.objects.update_or_create(workspace=tenant.workspace, defaults={"retention_days": 30})
    old = (timezone.now() - timedelta(days=40)).isoformat()
    new = (timezone.now() - timedelta(days=1)).isoformat()
    ids = ingest(workspace=tenant.workspace, items=[
        trace_payload("old-1", started_at=old), trace_payload("new-1", started_at=new),
    ]).trace_ids  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ids)
    before = sorted(DailyRollup.objects.values_list("day", "traces", "failed"))
    # Retention counts from arrival: a run that started 40 days ago but arrived now stays.
    assert traces_purge_expired(workspace_id=tenant.workspace.pk) == 0
    Trace.objects.filter(external_id="old-1").update(
        received_at=timezone.now() - timedelta(days=40)
    )
    from traces.services import retention_preview

    assert retention_preview(workspace_id=tenant.workspace.pk) == 1
    assert retention_preview(workspace_id=tenant.workspace.pk, days=60) == 0
    assert traces_purge_expired(workspace_id=tenant.workspace.pk) == 1
    assert list(Trace.objects.values_list("external_id", flat=True)) == ["new-1"]
    assert not Step.objects.filter(trace__external_id="old-1").exists()
    assert Incident.objects.filter(workspace=tenant.workspace).count() == 1
    from metrics.services import rollups_rebuild

    rollups_rebuild(workspace_id=tenant.workspace.pk)
    assert sorted(DailyRollup.objects.values_list("day", "traces", "failed")) == before
    assert AuditEvent.objects.filter(action="retention.purge").exists()


@pytest.mark.django_db
def test_broker_down_ingest_still_stores_and_the_sweep_catches_up(
    tenant, settings, django_capture_on_commit_callbacks, caplog
):
    # A broker nobody listens on: enqueueing fails fast, the request does not.
    with (
        celery_broker("redis://127.0.0.1:1/0"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        batch = ingest(workspace=tenant.workspace, items=[trace_payload("bd-1")])
    assert Trace.objects.filter(external_id="bd-1").exists() and batch.trace_ids
    # The first enqueue finds the broker refusing; the next one does not even try.
    assert "failures.tasks.analyse_traces" in caplog.text and "not enqueueing" in caplog.text
    # Refused: left to the sweep; slow to refuse: held until the first publish ends,
    # then dropped with it (the broker never took it).
    assert ("metrics.tasks.refresh_rollups left to the periodic sweep" in caplog.text
            or "metrics.tasks.refresh_rollups sent once the publish before it lands"
            in caplog.text)  # fmt: skip
    assert not DailyRollup.objects.exists()  # the refresh message was lost
    assert rollups_sweep() >= 1
    assert DailyRollup.objects.get().traces == 1


@pytest.mark.django_db
def test_guessing_does_not_lock_the_owner_out_of_a_browser_they_logged_in_from(settings):
    from django.test import Client

    settings.HIVEMIND_LOGIN_ATTEMPTS = 3
    make_user("owner", password="right-password-1")
    # The owner and the attacker share one address (an office NAT, a proxy).
    home = Client(REMOTE_ADDR="10.0.0.2")
    assert (
        home.post("/login/", {"username": "owner", "password": "right-password-1"}).status_code
        == 302
    )
    assert "hm_device" in home.cookies
    home.post("/logout/")
    attacker = Client(REMOTE_ADDR="10.0.0.2")
    codes = [attacker.post("/login/", {"username": "owner", "password": "guess"}).status_code
             for _ in range(5)]  # fmt: skip
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    # Still locked for the attacker, even with the right password...
    assert attacker.post("/login/", {"username": "owner",
                                     "password": "right-password-1"}).status_code == 429  # fmt: skip
    # ...and for a new browser, with Retry-After saying when...
    fresh = Client(REMOTE_ADDR="10.0.0.3").post("/login/", {"username": "owner", "password": "x"})
    assert fresh.status_code == 429 and int(fresh["Retry-After"]) > 0
    # ...but not for the owner's own browser, at the same address.
    assert (
        home.post("/login/", {"username": "owner", "password": "right-password-1"}).status_code
        == 302
    )
    # A forged or copied-from-nowhere cookie is no trust.
    forged = Client(REMOTE_ADDR="10.0.0.2")
    forged.cookies["hm_device"] = "not-signed"
    assert forged.post("/login/", {"username": "owner", "password": "guess"}).status_code == 429


@pytest.mark.django_db
def test_admin_login_is_throttled_like_the_apps(client, settings):
    settings.HIVEMIND_LOGIN_ATTEMPTS = 3
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.create_superuser("root", "root@example.com", "right-password-1")
    page = client.get("/admin/login/")
    assert page.status_code == 200 and b"Django administration" in page.content
    codes = [client.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code
             for _ in range(6)]  # fmt: skip
    assert codes[:3] == [200, 200, 200] and set(codes[3:]) == {429}
    fresh = Client()
    ok = fresh.post("/admin/login/", {"username": "root", "password": "right-password-1"})
    assert ok.status_code == 429  # the account is limited from browsers it has not used
    settings.HIVEMIND_LOGIN_ATTEMPTS = 100
    ok = fresh.post("/admin/login/?next=/admin/",
                    {"username": "root", "password": "right-password-1", "next": "/admin/"})  # fmt: skip
    assert ok.status_code == 302 and fresh.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_password_reset_mail_is_throttled_per_address_and_per_client(settings):
    from django.core import mail
    from django.test import Client

    settings.HIVEMIND_RESET_MAILS_PER_ADDRESS = 3
    settings.HIVEMIND_RESET_REQUESTS_PER_CLIENT = 10
    make_user("resetme", email="reset.me@example.com")
    clients = [Client(REMOTE_ADDR=f"10.1.0.{i}") for i in range(10)]
    answers = [clients[i % 10].post("/password/reset/", {"email": "reset.me@example.com"})
               for i in range(30)]  # fmt: skip
    # Every request gets the usual answer (nothing tells whether the address has an
    # account), and only three mails go out.
    assert {a.status_code for a in answers} == {302}
    assert len(mail.outbox) == 3
    # One client asking for many addresses is stopped too.
    one = Client(REMOTE_ADDR="10.2.0.1")
    codes = [one.post("/password/reset/", {"email": f"n{i}@example.com"}).status_code
             for i in range(12)]  # fmt: skip
    assert codes[:10] == [302] * 10 and codes[10:] == [429, 429]
    assert (
        b"Too many reset requests"
        in one.post("/password/reset/", {"email": "x@example.com"}).content
    )


@pytest.mark.django_db
def test_an_attempt_is_counted_before_the_password_is_checked(settings, monkeypatch):
    """Counting first (one atomic upsert) is what keeps concurrent attempts under
    the limit: no attempt reaches the password check without having been counted."""
    from django.contrib.auth import backends

    from workspaces import ratelimit

    settings.HIVEMIND_LOGIN_ATTEMPTS = 3
    make_user("counted", password="right-password-1")
    seen: list[int] = []
    real = backends.ModelBackend.authenticate

    def spy(self, request, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(ratelimit.peek("login:user:counted", window=15 * 60))
        return real(self, request, **kwargs)

    monkeypatch.setattr(backends.ModelBackend, "authenticate", spy)
    from django.test import Client

    client = Client(REMOTE_ADDR="198.51.100.1")
    for _ in range(5):
        client.post("/login/", {"username": "counted", "password": "wrong"})
    assert seen == [1, 2, 3]  # the 4th and 5th never reached the password check


@pytest.mark.django_db
def test_the_retention_preview_is_for_admins_of_the_workspace(tenant, other_tenant, anon):
    from django.urls import reverse

    ingest(workspace=tenant.workspace, items=[trace_payload("aged")])
    Trace.objects.filter(external_id="aged").update(
        received_at=timezone.now() - timedelta(days=200)
    )
    url = reverse("trace_retention", args=[tenant.workspace.slug])
    page = tenant.client_for(tenant.admin).get(url).content.decode()
    assert "1 trace</strong> reached Hivemind more than the retention period ago" in page
    assert (
        "<strong>1 trace</strong>"
        in tenant.client_for(tenant.admin).get(url + "?days=100").content.decode()
    )
    assert "deletes no trace under 365 days" in tenant.client_for(tenant.admin).get(
        url + "?days=365").content.decode()  # fmt: skip
    assert tenant.client_for(tenant.viewer).get(url).status_code == 403
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert anon.get(url).status_code == 302
