"""Alerts: webhook events (JSON or Slack-compatible), email to leads who opt in,
"send a test", retire and rollback events, detected events sent once, and the
webhook secret never written back into a page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount
from skills import review
from skills.alerts import alerts_sweep, binomial_tail
from skills.models import Trial, WebhookDelivery, WebhookEndpoint
from tests.skills.test_review_and_api import make_skill
from workspaces.models import Membership


@pytest.fixture
def hook(tenant):
    return WebhookEndpoint.objects.create(workspace=tenant.workspace, url="https://hooks.example.com/x",
                                          secret="top-secret-value")  # fmt: skip


def _events(endpoint):
    return list(endpoint.deliveries.order_by("pk").values_list("event", flat=True))


@pytest.mark.django_db
def test_publish_rollback_and_retire_each_send_an_event(tenant, hook):
    skill = make_skill(tenant.workspace)
    with TestCase.captureOnCommitCallbacks(execute=True):
        review.skill_approve(skill=skill, number=1, actor=tenant.lead)
    review.skill_edit(skill=skill, description="Second.", body="## Do\nx", actor=tenant.lead)
    with TestCase.captureOnCommitCallbacks(execute=True):
        review.skill_approve(skill=skill, number=2, actor=tenant.lead)
    with TestCase.captureOnCommitCallbacks(execute=True):
        review.skill_rollback(skill=skill, number=1, actor=tenant.lead)
    with TestCase.captureOnCommitCallbacks(execute=True):
        review.skill_retire(skill=skill, reason="obsolete", actor=tenant.lead)
    assert _events(hook) == [
        "skill.published",
        "skill.published",
        "skill.rolled_back",
        "skill.retired",
    ]
    retired = hook.deliveries.order_by("pk").last().payload
    assert retired["skill"] == "respect-rate-limits" and "retired" in retired["text"]


@pytest.mark.django_db
def test_slack_format_posts_text_and_leads_who_opt_in_get_email(tenant, hook):
    hook.format = "slack"
    hook.save()
    Membership.objects.filter(workspace=tenant.workspace, user=tenant.lead).update(
        email_alerts=True
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        review.skill_approve(skill=make_skill(tenant.workspace), number=1, actor=tenant.lead)
    payload = hook.deliveries.get().payload
    assert set(payload) == {"text"} and "respect-rate-limits published v1" in payload["text"]
    assert [m.to for m in mail.outbox] == [[tenant.lead.email]]  # not the viewer, not the admin


@pytest.mark.django_db
def test_detected_events_are_sent_once(tenant, hook):
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="gh auth failures",
                                      incident_count=12, trace_count=12, first_seen=timezone.now())  # fmt: skip
    today = timezone.now().date()
    for days, n in ((1, 6), (2, 6), (9, 2)):
        ModeDailyCount.objects.create(workspace=tenant.workspace, failure_mode=mode, agent="a",
                                      day=today - timedelta(days=days), incidents=n, traces=n)  # fmt: skip
    # A mode a re-cluster emptied the same day is on no page: no alert for it.
    FailureMode.objects.create(workspace=tenant.workspace, label="emptied", incident_count=0,
                               trace_count=0, first_seen=timezone.now())  # fmt: skip
    skill = make_skill(tenant.workspace)
    review.skill_approve(
        skill=skill, number=1, actor=tenant.lead, rollout="trial", holdout_share=0.5
    )
    Trial.objects.filter(skill=skill).update(verdict="hurts")
    with TestCase.captureOnCommitCallbacks(execute=True):
        sent = alerts_sweep(workspace=tenant.workspace)
    assert sorted(k.split(":")[0] for k in sent) == ["mode.jump", "mode.new", "skill.hurts"]
    jump = WebhookDelivery.objects.get(event="mode.jump").payload
    assert (jump["this_week"], jump["last_week"]) == (12, 2)
    assert alerts_sweep(workspace=tenant.workspace) == []  # once


def test_the_jump_test_is_a_one_sided_binomial_tail():
    assert binomial_tail(12, 14) == pytest.approx(0.00647, abs=1e-4)  # 12 of 14: beyond chance
    assert binomial_tail(5, 7) > 0.01  # 5 against 2: could be chance


@pytest.mark.django_db
def test_send_a_test_and_the_secret_stays_out_of_the_page(tenant, other_tenant, hook, monkeypatch):
    import socket

    # hooks.example.com stands for a public host (no DNS in tests).
    monkeypatch.setattr("skills.outbound.resolve", lambda host, port, **kw: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))])  # fmt: skip
    url = "/w/acme/settings/webhook/"
    admin = tenant.client_for(tenant.admin)
    page = admin.get(url).content.decode()
    assert "top-secret-value" not in page and "leave empty to keep it" in page
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert admin.post(url, {"action": "test"}).status_code == 302
    assert _events(hook) == ["test"]
    # Saving without retyping the secret keeps it.
    admin.post(
        url, {"url": "https://hooks.example.com/y", "secret": "", "format": "json", "active": "on"}
    )
    hook.refresh_from_db()
    assert hook.url.endswith("/y") and hook.secret == "top-secret-value"
    assert tenant.client_for(tenant.lead).post(url, {"action": "test"}).status_code == 403
    assert (
        other_tenant.client_for(other_tenant.admin).post(url, {"action": "test"}).status_code == 404
    )
    assert _events(hook) == ["test"]


@pytest.mark.django_db
def test_email_alerts_opt_in_is_for_leads_and_admins(tenant, other_tenant):
    url = "/w/acme/settings/alerts/"
    assert tenant.client_for(tenant.viewer).post(url, {"email_alerts": "on"}).status_code == 403
    assert (
        other_tenant.client_for(other_tenant.admin).post(url, {"email_alerts": "on"}).status_code
        == 404
    )
    assert tenant.client_for(tenant.lead).post(url, {"email_alerts": "on"}).status_code == 302
    assert Membership.objects.get(workspace=tenant.workspace, user=tenant.lead).email_alerts
