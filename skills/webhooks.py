"""Webhooks: a signed POST to the workspace's URL for every alert
(skills/alerts.py): publications, rollbacks, retirements, new failure modes,
jumps, harmful skills, tests."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from workspaces.errors import InvalidInput
from workspaces.models import Workspace
from workspaces.services import audit_record

from . import outbound
from .models import Skill, SkillVersion, WebhookDelivery, WebhookEndpoint

SIGNATURE_HEADER = "X-Hivemind-Signature"


def webhook_get(*, workspace: Workspace) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(workspace=workspace).first()


@transaction.atomic
def webhook_save(*, workspace: Workspace, form: Any, actor: User) -> WebhookEndpoint:
    """Save the workspace's webhook from a valid WebhookForm; audited."""
    endpoint = form.save(commit=False)
    endpoint.workspace = workspace
    endpoint.save()
    audit_record(workspace=workspace, actor=actor, action="webhook.save", obj=endpoint,
                 after={"url": endpoint.url, "active": endpoint.active})  # fmt: skip
    return endpoint


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_enqueue(*, skill_id: int, version_id: int, event: str = "skill.published") -> None:
    """The alert of a review action (published, rolled back): webhook and emails."""
    from .alerts import alert_send

    skill = Skill.objects.select_related("workspace").get(pk=skill_id)
    version = SkillVersion.objects.get(pk=version_id)
    words = {"skill.published": "published", "skill.rolled_back": "rolled back to",
             "skill.retired": "retired (no longer served), was"}[event]  # fmt: skip
    alert_send(
        workspace=skill.workspace, event=event,
        text=f"Skill {skill.name} {words} v{version.number}: {version.description}"[:500],
        data={"skill": skill.name, "version": version.number, "description": version.description,
              "published_at": timezone.now().isoformat()},
    )  # fmt: skip


def webhook_test(*, workspace: Workspace, actor: User) -> WebhookDelivery:
    """A test delivery, sent now through the same path as every event."""
    from .alerts import alert_send

    endpoint = webhook_get(workspace=workspace)
    if endpoint is None:
        raise InvalidInput("Save a webhook URL first.")
    if not endpoint.active:
        raise InvalidInput("The webhook is switched off: tick Active and save, then test.")
    alert_send(workspace=workspace, event="test", data={"by": actor.get_username()},
               text=f"Test from Hivemind ({workspace.name}), sent by {actor.get_username()}.")  # fmt: skip
    audit_record(workspace=workspace, actor=actor, action="webhook.test", obj=endpoint)
    return endpoint.deliveries.order_by("-pk").first()  # type: ignore[return-value]


class DeliveryFailed(Exception):
    pass


def webhook_deliver(*, delivery_id: int, timeout: float = 10.0) -> WebhookDelivery:
    """POST the payload, signed with HMAC-SHA256. Raises DeliveryFailed to be retried."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if delivery.state == "delivered":
        return delivery  # idempotent: a retried task does not send twice
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: sign(delivery.endpoint.secret, body),
               "X-Hivemind-Event": delivery.event, "X-Hivemind-Delivery": str(delivery.pk)}  # fmt: skip
    delivery.attempts += 1
    try:
        status = outbound.post(delivery.endpoint.url, body, headers, timeout=timeout)
    except outbound.Refused as exc:
        # Not retried: the address will not become public by waiting.
        delivery.state, delivery.error = "failed", f"Refused: {exc.detail}"[:500]
        delivery.save()
        return delivery
    except OSError:
        # One generic reason: the page must not tell "refused" from "timed out"
        # from "no route" (that would map the network behind the URL).
        status, delivery.error = None, "Could not connect or no answer in time."
    if status is not None and 200 <= status < 300:
        delivery.response_code, delivery.state = status, "delivered"
        delivery.delivered_at, delivery.error = timezone.now(), ""
        delivery.save()
        return delivery
    if status is not None:
        delivery.response_code = status
        delivery.error = f"HTTP {status}" + (
            " (redirects are not followed)" if 300 <= status < 400 else ""
        )
    delivery.state = "failed"
    delivery.save()
    raise DeliveryFailed(delivery.error)
