"""Publish webhooks: a signed POST to the workspace's URL on every publication."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from hivemind_web.celery import enqueue
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


def webhook_enqueue(*, skill_id: int, version_id: int) -> WebhookDelivery | None:
    """Record a delivery for the publication and hand it to the delivery task."""
    skill = Skill.objects.select_related("workspace").get(pk=skill_id)
    endpoint = getattr(skill.workspace, "webhook", None)
    if endpoint is None or not endpoint.active:
        return None
    version = SkillVersion.objects.get(pk=version_id)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="skill.published",
        payload={
            "event": "skill.published",
            "workspace": skill.workspace.slug,
            "skill": skill.name,
            "version": version.number,
            "description": version.description,
            "published_at": timezone.now().isoformat(),
        },
    )
    transaction.on_commit(lambda: enqueue("skills.tasks.deliver_webhook", delivery.pk))
    return delivery


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
