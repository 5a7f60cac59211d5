"""Diagnosis in chunks, one process per workspace: traces that arrive while a
process diagnoses are queued and diagnosed together by it (mining.traces_analyse_queued)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from failures import mining
from failures.models import PendingAnalysis, TraceAnalysis
from tests.factories import trace_payload
from traces import services as trace_services
from traces.models import Trace

pytestmark = pytest.mark.django_db


def _word(i: int) -> str:
    """A word per number (tasks with digits only differing are one task)."""
    return "".join("abcdefghij"[int(d)] for d in str(i)) + "ward"


@pytest.fixture
def stored(tenant, monkeypatch):
    """Store traces without analysing them (as ingest does before the worker runs)."""
    monkeypatch.setattr(trace_services, "_after_commit_analyse", lambda *a, **k: None)

    def store(workspace, n: int, prefix: str = "run") -> list[int]:
        payloads = [
            trace_payload(
                f"{prefix}-{i}",
                agent="airline",
                task=f"task {prefix} {_word(i)}",
                status="failed" if i % 2 else "succeeded",
            )  # fmt: skip
            for i in range(n)
        ]
        trace_services.trace_ingest_batch(workspace=workspace, items=payloads)
        return list(
            Trace.objects.filter(workspace=workspace, external_id__startswith=f"{prefix}-")
            .order_by("id")
            .values_list("id", flat=True)
        )

    return store


@pytest.fixture
def diagnosed_batches(monkeypatch):
    batches: list[list[int]] = []
    diagnose = mining.traces_diagnose

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("cascade", True):  # not a chunk's own re-diagnosis of same-task runs
            batches.append(list(kwargs["trace_ids"]))
        return diagnose(**kwargs)

    monkeypatch.setattr(mining, "traces_diagnose", spy)
    return batches


def _other_session():  # type: ignore[no-untyped-def]
    """A second database session (another worker process)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def test_traces_queued_while_another_process_diagnoses_wait_for_it_and_go_in_one_chunk(
    tenant, stored, diagnosed_batches
):
    ids = stored(tenant.workspace, 6)
    ws = tenant.workspace.pk
    with _other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [mining.ANALYSE_LOCK, ws])
        # Two requests' analyses while another process holds the workspace.
        assert mining.traces_analyse_queued(workspace_id=ws, trace_ids=ids[:3]) == 0
        assert mining.traces_analyse_queued(workspace_id=ws, trace_ids=ids[3:]) == 0
        assert diagnosed_batches == [] and PendingAnalysis.objects.count() == 6
        assert not TraceAnalysis.objects.filter(trace_id__in=ids).exists()
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [mining.ANALYSE_LOCK, ws])
    # The holder (here, the next call) diagnoses everything waiting, in one chunk.
    assert mining.traces_analyse_queued(workspace_id=ws, trace_ids=[]) == 6
    assert diagnosed_batches == [ids]
    assert TraceAnalysis.objects.filter(trace_id__in=ids).count() == 6
    assert not PendingAnalysis.objects.exists()


def test_chunks_keep_to_their_step_bound_and_a_trace_queued_again_meanwhile_is_not_dropped(
    tenant, stored, diagnosed_batches, monkeypatch
):
    ids = stored(tenant.workspace, 5)
    ws = tenant.workspace.pk
    steps = Trace.objects.get(pk=ids[0]).step_count
    monkeypatch.setattr(mining, "ANALYSE_STEPS", 2 * steps)  # two of these traces a chunk
    diagnose = mining.traces_diagnose

    def resent_during_the_first_chunk(**kwargs):  # type: ignore[no-untyped-def]
        if not diagnosed_batches and kwargs.get("cascade", True):
            mining._queue(ws, [ids[0]])  # re-sent while its chunk is diagnosed
        return diagnose(**kwargs)

    monkeypatch.setattr(mining, "traces_diagnose", resent_during_the_first_chunk)
    chunks: list[int] = []
    done = mining.traces_analyse_queued(
        workspace_id=ws, trace_ids=ids, after_chunk=lambda ids: chunks.append(1)
    )
    # Still first in the queue, it goes again with the next chunk.
    assert diagnosed_batches == [ids[0:2], [ids[0], ids[2]], ids[3:5]]
    assert done == 6 and len(chunks) == 3 and not PendingAnalysis.objects.exists()


def test_only_the_workspaces_own_traces_are_queued(tenant, other_tenant, stored):
    mine = stored(tenant.workspace, 2, "mine")
    theirs = stored(other_tenant.workspace, 2, "theirs")
    mining._queue(tenant.workspace.pk, mine + theirs)
    assert sorted(PendingAnalysis.objects.values_list("trace_id", flat=True)) == mine
    assert set(PendingAnalysis.objects.values_list("workspace_id", flat=True)) == {
        tenant.workspace.pk
    }


def test_failed_runs_diagnosed_against_a_baseline_their_agent_outgrew_go_again_at_once(
    tenant, stored, diagnosed_batches
):
    """Not at the next periodic sweep: in the chunks right after the one that made
    the agent's baseline grow past twice what they were weighed against."""
    ws = tenant.workspace.pk
    early = stored(tenant.workspace, 20, "early")
    assert mining.traces_analyse_queued(workspace_id=ws, trace_ids=early) == 20
    failed = TraceAnalysis.objects.filter(trace_id__in=early, verdict="failed")
    assert {a.baseline_runs for a in failed} == {20} and failed.count() == 10
    later = stored(tenant.workspace, 20, "later")  # the agent now has 40 labelled runs
    diagnosed_batches.clear()
    done = mining.traces_analyse_queued(workspace_id=ws, trace_ids=later)
    assert diagnosed_batches[0] == later
    assert sorted(diagnosed_batches[1]) == sorted(a.trace_id for a in failed)
    assert done == 30 and not PendingAnalysis.objects.exists()
    assert {a.baseline_runs for a in failed.all()} == {40}
    # Weighed against the whole baseline now: nothing more to do when more arrive.
    diagnosed_batches.clear()
    assert mining.traces_analyse_queued(workspace_id=ws, trace_ids=stored(
        tenant.workspace, 2, "last")) == 2  # fmt: skip
    assert len(diagnosed_batches) == 1
