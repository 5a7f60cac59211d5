"""Thin Celery tasks for distillation."""

from __future__ import annotations

from celery import shared_task

from hivemind_web.celery import TASK_RETRY, TRANSIENT_ERRORS

from . import services


@shared_task(
    **TASK_RETRY, soft_time_limit=600, time_limit=660,
)  # fmt: skip
def distill_mode(job_id: int) -> str:
    return services.distillation_run(job_id=job_id).state


@shared_task(
    **TASK_RETRY, soft_time_limit=300, time_limit=330,
)  # fmt: skip
def distill_due(workspace_id: int) -> int:
    """Named so traces can trigger it without importing skills (apps import downward)."""
    return len(services.distill_due(workspace_id=workspace_id))


@shared_task(
    bind=True, acks_late=True, max_retries=6, soft_time_limit=60, time_limit=90,
)  # fmt: skip
def deliver_webhook(self, delivery_id: int) -> str:  # type: ignore[no-untyped-def]
    from .webhooks import DeliveryFailed, webhook_deliver

    try:
        return webhook_deliver(delivery_id=delivery_id).state
    except DeliveryFailed as exc:
        # Backoff 30 s, 60 s, … up to ~30 min; the delivery row shows each attempt.
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 1800)) from exc


@shared_task(
    **TASK_RETRY, soft_time_limit=300, time_limit=330,
)  # fmt: skip
def sweep_jobs() -> int:
    """Resend distillation jobs and webhook deliveries whose message was lost (the
    broker was down when they were queued). Both tasks are idempotent."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    from .models import DistillationJob, JobState, WebhookDelivery

    stale = timezone.now() - timedelta(minutes=5)
    # A job left "drafting" longer than the task may run lost its worker or ran out
    # of retries while the database was away: it is sent again (drafting is idempotent).
    stuck = timezone.now() - timedelta(minutes=15)
    jobs = list(
        DistillationJob.objects.filter(
            Q(state=JobState.QUEUED, created_at__lt=stale)
            | Q(state=JobState.DRAFTING, updated_at__lt=stuck)
        ).values_list("pk", flat=True)
    )
    for pk in jobs:
        distill_mode.delay(pk)
    deliveries = list(
        WebhookDelivery.objects.filter(state="pending", attempts=0, created_at__lt=stale)
        .values_list("pk", flat=True)
    )  # fmt: skip
    for pk in deliveries:
        deliver_webhook.delay(pk)
    return len(jobs) + len(deliveries)


@shared_task(
    **{**TASK_RETRY, "autoretry_for": (*TRANSIENT_ERRORS, OSError)},  # SMTP errors too
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def email_alert(workspace_id: int, event: str, text: str) -> int:
    from .alerts import email_alert as send

    return send(workspace_id=workspace_id, event=event, text=text)


@shared_task(
    **TASK_RETRY, soft_time_limit=300, time_limit=330,
)  # fmt: skip
def alerts_sweep() -> int:
    """New failure modes, jumps and harmful trials, in every workspace (beat)."""
    from workspaces.models import Workspace

    from .alerts import alerts_sweep as sweep

    return sum(len(sweep(workspace=w)) for w in Workspace.objects.all())
