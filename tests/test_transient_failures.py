"""Work that fails on a transient error is retried until it succeeds.

- Two refreshes of one workspace's daily mode counts at once (embedding tasks
  under load did this) no longer collide on a duplicate key.
- A drafting job whose database went away is not marked failed: it stays
  "drafting", its task retries, and the sweep sends it again if the retries run
  out; it then finishes.
- Every task retries the database's transient errors (including a connection
  it closed) for about half an hour of outage.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from failures.models import FailureMode, Incident, ModeDailyCount
from failures.services import mode_daily_counts_refresh
from hivemind_web.celery import TASK_MODULES, app
from skills import services as skill_services
from skills.models import DistillationJob, JobState
from tests.factories import ingest, trace_payload
from tests.skills.test_distill import mode  # noqa: F401 - the fixture


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_of_daily_counts_at_once_do_not_collide(tenant):
    ingest(tenant.workspace, [trace_payload(f"d-{i}") for i in range(6)])
    mode_row = FailureMode.objects.create(workspace=tenant.workspace, label="m")
    Incident.objects.filter(workspace=tenant.workspace).update(failure_mode=mode_row)
    first_done = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                mode_daily_counts_refresh(mode_ids=[mode_row.pk])
                first_done.set()
                # Hold the transaction open while the second refresh starts.
                threading.Event().wait(1.0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            first_done.set()
        finally:
            connection.close()

    def second() -> None:
        try:
            first_done.wait(30)
            mode_daily_counts_refresh(mode_ids=[mode_row.pk])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    rows = list(ModeDailyCount.objects.filter(failure_mode=mode_row))
    assert len(rows) == 1 and rows[0].incidents == 6 and rows[0].traces == 6


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_draft_whose_database_went_away_is_retried_not_failed(mode, monkeypatch, error):  # noqa: F811
    job, _ = skill_services.distillation_request(mode=mode)

    def database_gone(job):  # type: ignore[no-untyped-def]
        raise error("server closed the connection unexpectedly")

    monkeypatch.setattr(skill_services, "_draft_and_store", database_gone)
    with pytest.raises(error):
        skill_services.distillation_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.DRAFTING  # not failed: the task retries it
    # The retry claims the job again and finishes it (what the draft says is
    # test_distill.py's business).
    from skills import distill

    monkeypatch.setattr(skill_services, "_draft_and_store",
                        lambda job: (None, distill.Draft("skip", "nothing to add")))  # fmt: skip
    done = skill_services.distillation_run(job_id=job.pk)
    assert done.state == JobState.DONE, done.detail


@pytest.mark.django_db
def test_the_sweep_resends_a_draft_left_drafting(mode, monkeypatch):  # noqa: F811
    from skills import tasks

    job, _ = skill_services.distillation_request(mode=mode)
    DistillationJob.objects.filter(pk=job.pk).update(
        state=JobState.DRAFTING, updated_at=timezone.now() - timedelta(minutes=30)
    )
    sent: list[int] = []
    monkeypatch.setattr(tasks.distill_mode, "delay", lambda pk: sent.append(pk))
    tasks.sweep_jobs()
    assert job.pk in sent


def test_every_task_retries_transient_database_errors_for_long_enough():
    tasks = {name: task for name, task in app.tasks.items()
             if name.rsplit(".", 1)[0] in TASK_MODULES and not name.endswith("deliver_webhook")}  # fmt: skip
    for name, task in tasks.items():
        retried = tuple(getattr(task, "autoretry_for", ()))
        assert OperationalError in retried and InterfaceError in retried, name
        assert task.max_retries >= 12, name
