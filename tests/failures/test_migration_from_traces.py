"""Moving incidents, modes, clustering runs, daily counts and snapshots out of
`traces` keeps every row: a database holding them before the move is migrated
across it and read back through the new apps' models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("traces", "0006_snapshots"),
    ("skills", "0003_published_set"),
    ("metrics", "0003_sweep_mark"),
    ("failures", None),
]
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_moving_the_failure_models_keeps_every_row():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = _migrate(BEFORE).loader.project_state([t for t in BEFORE if t[1]]).apps
        ids = _seed_old_schema(old)
        _migrate(latest)
        _check_new_schema(ids)
    finally:
        _migrate(latest)  # leave the test database as every other test expects it


def _seed_old_schema(apps) -> dict[str, int]:  # type: ignore[no-untyped-def]
    Workspace = apps.get_model("workspaces", "Workspace")
    Trace = apps.get_model("traces", "Trace")
    FailureMode = apps.get_model("traces", "FailureMode")
    Incident = apps.get_model("traces", "Incident")
    ClusterRun = apps.get_model("traces", "ClusterRun")
    ModeDailyCount = apps.get_model("traces", "ModeDailyCount")
    Snapshot = apps.get_model("traces", "Snapshot")
    Skill = apps.get_model("skills", "Skill")
    SkillVersion = apps.get_model("skills", "SkillVersion")
    ws = Workspace.objects.create(name="Before", slug="before-move")
    trace = Trace.objects.create(workspace=ws, external_id="t-1", status="failed", started_at=WHEN)
    mode = FailureMode.objects.create(workspace=ws, label="rate limits", incident_count=1,
                                      centroid=[0.5] * 384)  # fmt: skip
    incident = Incident.objects.create(
        workspace=ws, trace=trace, step_index=1, kind="step_error", tool="stripe.refund",
        error_text="429", signature="tool: stripe.refund | error: 429", embedding=[0.25] * 384,
        embedded_at=WHEN, failure_mode=mode, assigned_by="cluster", occurred_at=WHEN,
    )  # fmt: skip
    run = ClusterRun.objects.create(workspace=ws, started_at=WHEN, seconds=1.5, incidents=1,
                                    modes=1, noise=0)  # fmt: skip
    ModeDailyCount.objects.create(workspace=ws, failure_mode=mode, day=WHEN.date(), agent="a",
                                  incidents=1, traces=1)  # fmt: skip
    snapshot = Snapshot.objects.create(workspace=ws, version=1, sft_train='{"messages": []}\n',
                                       created_by_label="lead")  # fmt: skip
    skill = Skill.objects.create(workspace=ws, name="respect-rate-limits", source_mode=mode)
    version = SkillVersion.objects.create(skill=skill, number=1, description="d", body="b",
                                          source_mode=mode, authorship="user")  # fmt: skip
    version.evidence.add(incident)
    return {"trace": trace.pk, "mode": mode.pk, "incident": incident.pk, "run": run.pk,
            "snapshot": snapshot.pk, "version": version.pk}  # fmt: skip


def _check_new_schema(ids: dict[str, int]) -> None:
    from failures.models import ClusterRun, FailureMode, Incident, ModeDailyCount, TraceAnalysis
    from metrics.models import Snapshot
    from skills.models import SkillVersion

    incident = Incident.objects.get(pk=ids["incident"])
    assert incident.failure_mode_id == ids["mode"] and incident.trace_id == ids["trace"]
    assert list(incident.embedding[:2]) == [0.25, 0.25] and incident.tool == "stripe.refund"
    mode = FailureMode.objects.get(pk=ids["mode"])
    assert mode.label == "rate limits" and float(mode.centroid[0]) == 0.5
    run = ClusterRun.objects.get(pk=ids["run"])
    assert (run.state, run.seconds, run.finished_at) == ("done", 1.5, WHEN)
    assert ModeDailyCount.objects.get(failure_mode=mode).incidents == 1
    assert Snapshot.objects.get(pk=ids["snapshot"]).sft_train == '{"messages": []}\n'
    version = SkillVersion.objects.get(pk=ids["version"])
    assert list(version.evidence.values_list("pk", flat=True)) == [ids["incident"]]
    assert version.source_mode_id == ids["mode"]
    # Analyses from before the diagnosis (0003) are dropped, so the sweep diagnoses
    # every stored trace again.
    assert not TraceAnalysis.objects.filter(trace_id=ids["trace"]).exists()
    from failures.mining import traces_due_for_analysis

    assert ids["trace"] in traces_due_for_analysis().get(incident.workspace_id, [])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('traces_incident'), to_regclass('failures_incident')")
        assert cursor.fetchone() == (None, "failures_incident")
