"""Alerts: what a team should hear about without opening the dashboard.

Each alert goes to the workspace's webhook (signed JSON, or a Slack-compatible
`{"text": …}` body when the webhook's format is Slack) and by email to the
leads and admins who switched email alerts on (Settings → Members). Events:

- `skill.published`, `skill.rolled_back`, `skill.retired` (review actions);
- `mode.new`: a failure mode first seen in the last day;
- `mode.jump`: a mode's failed runs this week are at least twice last week's, at
  least 5, and more than chance explains (one-sided binomial test, p < 0.01:
  under no change, a run with the mode is as likely to fall in either week);
- `skill.hurts`: a skill's trial says it makes things worse;
- `test`: the "Send a test" button.

The three detected events are found by `alerts_sweep` (beat, every 10 minutes)
and sent once each (`AlertSent` keys).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount, ModeStatus
from hivemind_web.celery import enqueue
from workspaces.models import Membership, Role, Workspace

from .models import AlertSent, Trial, WebhookDelivery

JUMP_MIN = 5
JUMP_P = 0.01


def _link(workspace: Workspace, path: str) -> str:
    return f"{settings.HIVEMIND_PUBLIC_URL.rstrip('/')}/w/{workspace.slug}/{path}"


def alert_send(*, workspace: Workspace, event: str, text: str, data: dict[str, Any]) -> None:
    """Queue the webhook delivery and the emails of one alert (after the commit)."""
    endpoint = getattr(workspace, "webhook", None)
    payload = {"event": event, "workspace": workspace.slug, "text": text,
               "sent_at": timezone.now().isoformat(), **data}  # fmt: skip
    if endpoint is not None and endpoint.active:
        body = {"text": text} if endpoint.format == "slack" else payload
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload=body)
        transaction.on_commit(lambda: enqueue("skills.tasks.deliver_webhook", delivery.pk))
    transaction.on_commit(lambda: enqueue("skills.tasks.email_alert", workspace.pk, event, text))


def email_alert(*, workspace_id: int, event: str, text: str) -> int:
    """Email the alert to the leads and admins who asked for alerts; how many."""
    recipients = sorted(
        set(
            Membership.objects.filter(workspace_id=workspace_id, email_alerts=True,
                                      role__in=[Role.LEAD, Role.ADMIN])
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )  # fmt: skip
    if not recipients:
        return 0
    workspace = Workspace.objects.get(pk=workspace_id)
    send_mail(
        subject=f"[Hivemind · {workspace.name}] {text[:120]}",
        message=f"{text}\n\nEvent: {event}\nSettings: {_link(workspace, 'settings/#members')} "
                "(switch these emails off there).",
        from_email=None, recipient_list=recipients,
    )  # fmt: skip
    return len(recipients)


def _once(workspace: Workspace, key: str) -> bool:
    """True the first time this key is seen (the alert is sent once)."""
    try:
        with transaction.atomic():
            AlertSent.objects.create(workspace=workspace, key=key[:200])
    except IntegrityError:
        return False
    return True


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def alerts_sweep(*, workspace: Workspace) -> list[str]:
    """Find new modes, jumps and harmful trials; send each once. Returns the keys sent."""
    sent: list[str] = []
    now = timezone.now()
    for mode in FailureMode.objects.filter(workspace=workspace, first_seen__gte=now - timedelta(days=1), incident_count__gt=0).exclude(status=ModeStatus.MERGED):  # fmt: skip
        key = f"mode.new:{mode.pk}"
        if _once(workspace, key):
            alert_send(workspace=workspace, event="mode.new", data={"mode": mode.pk, "label": mode.label,
                       "url": _link(workspace, f"failure-modes/{mode.pk}/")},
                       text=f"New failure mode: {mode.label} ({mode.trace_count} failed runs so far).")  # fmt: skip
            sent.append(key)
    today = now.date()
    this_week, last_week = today - timedelta(days=6), today - timedelta(days=13)
    counts = (
        ModeDailyCount.objects.filter(workspace=workspace, day__gte=last_week)
        .values("failure_mode")
        .annotate(total=Sum("traces"))
    )
    by_mode = {
        row["failure_mode"]: row
        for row in ModeDailyCount.objects.filter(workspace=workspace, day__gte=this_week)
        .values("failure_mode").annotate(n=Sum("traces"))
    }  # fmt: skip
    for row in counts:
        recent = (by_mode.get(row["failure_mode"]) or {}).get("n") or 0
        before = (row["total"] or 0) - recent
        if recent < JUMP_MIN or recent < 2 * before:
            continue
        if binomial_tail(recent, recent + before) >= JUMP_P:
            continue
        jumped = FailureMode.objects.filter(pk=row["failure_mode"]).first()
        if jumped is None or jumped.status == ModeStatus.MERGED:
            continue
        mode = jumped
        key = f"mode.jump:{mode.pk}:{today.isocalendar()[0]}-{today.isocalendar()[1]}"
        if _once(workspace, key):
            alert_send(workspace=workspace, event="mode.jump",
                       data={"mode": mode.pk, "label": mode.label, "this_week": recent,
                             "last_week": before, "url": _link(workspace, f"failure-modes/{mode.pk}/")},
                       text=f"Failure mode jumped: {mode.label}: {recent} failed runs in the last "
                            f"7 days against {before} in the 7 before.")  # fmt: skip
            sent.append(key)
    for trial in Trial.objects.filter(skill__workspace=workspace, verdict="hurts").select_related("skill"):  # fmt: skip
        key = f"skill.hurts:{trial.pk}"
        if _once(workspace, key):
            alert_send(workspace=workspace, event="skill.hurts",
                       data={"skill": trial.skill.name, "trial": trial.pk,
                             "url": _link(workspace, f"skills/{trial.skill_id}/trial/")},
                       text=f"Skill {trial.skill.name} makes things worse: its trial's interval "
                            "excludes no change. A lead can roll it back from the trial page.")  # fmt: skip
            sent.append(key)
    return sent
