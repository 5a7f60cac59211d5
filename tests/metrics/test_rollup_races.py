"""Rollup rewrites that meet (the worker's sweep, a refresh after an ingest, a
rebuild) take turns: each deletes and re-inserts the same keys, and interleaved,
the second insert hit a duplicate key."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connections

from metrics.models import SkillDailyRollup
from metrics.services import rollups_rebuild, rollups_refresh_for_traces
from tests.factories import ingest, trace_payload


def _at_once(work: Callable[[], None], threads: int = 4, rounds: int = 10) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                work()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_skill_rollup_refreshes_and_rebuilds_at_the_same_time_take_turns(tenant):
    ids = ingest(tenant.workspace, [
        trace_payload(f"r-{i}", status="succeeded" if i % 2 else "failed",
                      skills_in_scope=["respect-rate-limits@1"], session_id=f"s-{i}")
        for i in range(30)
    ]).trace_ids  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ids)
    expected = sorted(SkillDailyRollup.objects.values_list("skill", "traces"))
    assert expected
    turn = iter(range(10**6))

    def work() -> None:
        if next(turn) % 3:
            rollups_refresh_for_traces(trace_ids=ids)
        else:
            rollups_rebuild(workspace_id=tenant.workspace.pk)

    assert not _at_once(work)
    connections.close_all()
    assert sorted(SkillDailyRollup.objects.values_list("skill", "traces")) == expected
