"""Drafting converges: once a live skill covers a mode, more ingest drafts nothing,
and a workspace has at most one re-cluster pending however many ingests ask."""

from __future__ import annotations

import pytest
from django.test import TestCase

from failures import modes
from failures.models import ClusterRun, FailureMode, RunState
from failures.services import cluster_run_request
from skills.models import DistillationJob, JobState, Skill, SkillStatus, SkillVersion
from skills.services import distill_due, distillation_run, modes_due_for_distillation
from tests.factories import ingest, retried_payloads, successful_payloads, trace_payload
from tests.failures.test_failure_modes import ERRORS, ingest_failures, mode_of
from traces.services import trace_ingest_batch

pytestmark = pytest.mark.django_db
TRANSIENT = ("payments.refund", "crm.search")


def _draft_everything_due(workspace_id: int) -> None:
    for job in distill_due(workspace_id=workspace_id):
        job.refresh_from_db()
        if job.state == JobState.QUEUED:
            distillation_run(job_id=job.pk)


@pytest.fixture
def drafted(tenant, settings):
    """Three clustered modes with a proposed skill each, then a lead's split of one
    of them, drafted too (the split's draft may land on the original skill)."""
    from failures.embedding import incidents_embed
    from failures.services import failure_modes_recluster

    settings.HIVEMIND_DISTILL_MIN_INCIDENTS = 3
    for tool in ERRORS:
        agent = f"{tool.split('.')[0]}-agent"
        ingest_failures(tenant, tool, 10, split=True)
        # Successful runs of the same agents: the contrast an offline draft rests on.
        ingest(workspace=tenant.workspace, items=successful_payloads(
            48, tool=tool, agent=agent, prefix=f"ok-{tool}"))  # fmt: skip
        if tool in TRANSIENT:
            # Runs that hit the busy answer, called again and succeeded: "not done until
            # a call succeeds" passes its backtest on the runs it was not drafted from.
            ingest(workspace=tenant.workspace, items=retried_payloads(
                10, tool=tool, agent=agent, error=ERRORS[tool].format(n=3),
                prefix=f"retried-{tool}"))  # fmt: skip
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    _draft_everything_due(tenant.workspace.pk)
    refund = mode_of("payments.refund")
    chosen = list(refund.incidents.values_list("pk", flat=True)[:4])
    tenant.split = modes.failure_mode_split(
        workspace=tenant.workspace, mode_id=refund.pk, incident_ids=chosen, label="",
        actor=tenant.lead,
    )  # fmt: skip
    _draft_everything_due(tenant.workspace.pk)
    return tenant


def test_a_draft_merged_into_another_modes_skill_covers_its_mode(drafted):
    assert modes_due_for_distillation(workspace_id=drafted.workspace.pk) == []
    split = drafted.split
    skill = Skill.objects.get(versions__source_mode=split)
    version = skill.latest_version
    assert version is not None

    # Approving the skill addresses every mode it was drafted from.
    from skills import review

    review.skill_approve(skill=skill, number=version.number, actor=drafted.lead)
    from skills.selectors import skill_source_modes

    sources = skill_source_modes(skill=skill)
    assert split.pk in sources and len(sources) >= 1
    assert set(FailureMode.objects.filter(pk__in=sources).values_list("status", flat=True)) == {
        "addressed"
    }


def test_200_unrelated_ingests_after_a_split_create_no_new_version(drafted):
    versions, jobs = SkillVersion.objects.count(), DistillationJob.objects.count()
    # The two busy-service modes are proposed; the precondition one ("column does not
    # exist") cannot be backtested from calls, so it is held back, not proposed.
    assert Skill.objects.filter(status=SkillStatus.PROPOSED).count() >= 2
    held = DistillationJob.objects.filter(failure_mode=mode_of("sql.query")).latest("pk")
    assert held.version is None and "Held back" in held.detail
    for i in range(200):
        # Half succeed, half fail like an already covered mode: nothing new to learn.
        item = (
            trace_payload(f"ok-{i}", status="succeeded", steps=[{"kind": "tool_call",
                          "name": "orders.get", "output": {"status": "paid"}}])
            if i % 2 else
            trace_payload(f"crm-{i}", steps=[{"kind": "tool_call", "name": "crm.search",
                          "input": {"id": i}, "error": ERRORS["crm.search"].format(n=9000 + i)}])
        )  # fmt: skip
        with TestCase.captureOnCommitCallbacks(execute=True):  # the worker's path, inline
            trace_ingest_batch(workspace=drafted.workspace, items=[item])
        pending = ClusterRun.objects.filter(state__in=[RunState.QUEUED, RunState.RUNNING])
        assert pending.count() <= 1
    assert mode_of("crm.search").incident_count == 10 + 100  # the failures did arrive
    assert SkillVersion.objects.count() == versions
    assert DistillationJob.objects.count() == jobs


def test_one_pending_recluster_per_workspace(tenant, other_tenant):
    first, created = cluster_run_request(workspace_id=tenant.workspace.pk, actor=None)
    again, created_again = cluster_run_request(workspace_id=tenant.workspace.pk, actor=None)
    assert created and not created_again and again.pk == first.pk
    theirs, created_theirs = cluster_run_request(workspace_id=other_tenant.workspace.pk,
                                                 actor=None)  # fmt: skip
    assert created_theirs and theirs.pk != first.pk


def test_a_lost_recluster_is_replaced(tenant):
    from datetime import timedelta

    from django.utils import timezone

    lost, _ = cluster_run_request(workspace_id=tenant.workspace.pk, actor=None)
    ClusterRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=2))
    fresh, created = cluster_run_request(workspace_id=tenant.workspace.pk, actor=None)
    lost.refresh_from_db()
    assert created and fresh.pk != lost.pk and lost.state == RunState.FAILED


def test_a_mode_with_nothing_to_propose_waits_for_its_evidence_to_double(tenant, settings):
    from skills.services import SKIPPED_GROWTH

    settings.HIVEMIND_DISTILL_MIN_INCIDENTS = 3
    skipped = FailureMode.objects.create(workspace=tenant.workspace, label="a", incident_count=10)
    drafted = FailureMode.objects.create(workspace=tenant.workspace, label="b", incident_count=10)
    for mode, verdict in ((skipped, "skip"), (drafted, "new")):
        DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=mode,
                                       state=JobState.DONE, verdict=verdict, mode_incidents=10)  # fmt: skip
    FailureMode.objects.filter(pk__in=[skipped.pk, drafted.pk]).update(incident_count=11)
    # One more incident: a mode whose draft was not skipped is due again (its skill
    # is gone: no live skill covers it); the skipped one is not.
    assert modes_due_for_distillation(workspace_id=tenant.workspace.pk) == [drafted]
    FailureMode.objects.filter(pk=skipped.pk).update(incident_count=10 * SKIPPED_GROWTH - 1)
    assert skipped not in modes_due_for_distillation(workspace_id=tenant.workspace.pk)
    FailureMode.objects.filter(pk=skipped.pk).update(incident_count=10 * SKIPPED_GROWTH)
    assert skipped in modes_due_for_distillation(workspace_id=tenant.workspace.pk)


def test_a_draft_whose_evidence_changed_under_it_is_drafted_again(monkeypatch):
    from types import SimpleNamespace

    from django.db import IntegrityError

    from skills import services

    calls: list[int] = []
    stored = (None, object())

    def racing(job):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # a re-diagnosis deleted a cited incident before the commit
            raise IntegrityError("insert or update violates foreign key constraint")
        return stored

    monkeypatch.setattr(services, "_draft_and_store", racing)
    assert services._draft_retrying(SimpleNamespace(pk=1)) is stored and len(calls) == 2  # type: ignore[arg-type]

    def always(job):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise IntegrityError("still changing")

    calls.clear()
    monkeypatch.setattr(services, "_draft_and_store", always)
    with pytest.raises(IntegrityError):
        services._draft_retrying(SimpleNamespace(pk=1))  # type: ignore[arg-type]
    assert len(calls) == services.DRAFT_ATTEMPTS
