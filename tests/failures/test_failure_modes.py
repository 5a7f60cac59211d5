"""Failure modes with the real embedding model and real pgvector."""

from __future__ import annotations

import json

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from failures import modes
from failures import services as failure_modes
from failures.embedding import incidents_embed
from failures.models import NOT_CAUSES, FailureMode, Incident, ModeStatus
from tests.factories import ingest, split_keys, trace_payload
from workspaces.errors import PermissionDenied
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db

ERRORS = {
    "payments.refund": "429 Too Many Requests: rate limit exceeded, retry after {n}s",
    "crm.search": "ReadTimeout: CRM did not answer within {n} ms",
    "sql.query": 'UndefinedColumn: column "created" does not exist, line {n}',
}


def ingest_failures(tenant, tool: str, count: int, start: int = 0, split: bool = False) -> None:
    """`count` failed runs that hit `tool`'s error; with `split`, each its own task,
    half of them in each half of the backtest's split (tests.factories.split_keys)."""
    keys = split_keys(f"{tool}-f", start + count)[start:] if split else [""] * count
    items = [
        trace_payload(
            f"{tool}-{start + i}",
            agent=f"{tool.split('.')[0]}-agent",
            task_key=keys[i],
            steps=[
                {
                    "kind": "tool_call",
                    "name": tool,
                    "input": {"id": i},
                    "error": ERRORS[tool].format(n=1000 + i * 7),
                }
            ],  # fmt: skip
        )
        for i in range(count)
    ]
    ingest(workspace=tenant.workspace, items=items)


@pytest.fixture
def clustered(tenant):
    for tool in ERRORS:
        ingest_failures(tenant, tool, 8)
    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes.failure_modes_recluster(workspace_id=tenant.workspace.pk)
    return tenant


def mode_of(tool: str) -> FailureMode:
    return (
        FailureMode.objects.exclude(status=ModeStatus.MERGED)
        .filter(incidents__tool=tool)
        .distinct()
        .get()
    )


def test_reclustering_finds_one_labelled_mode_per_failure(clustered):
    modes = FailureMode.objects.filter(workspace=clustered.workspace, incident_count__gt=0)
    assert modes.count() == 3
    refund = mode_of("payments.refund")
    assert refund.incident_count == 8 and refund.label.startswith("payments.refund: 429")
    assert refund.keywords and refund.centroid is not None


def test_mode_ids_are_stable_across_reclustering(clustered):
    before = {tool: mode_of(tool).pk for tool in ERRORS}
    ingest_failures(clustered, "crm.search", 4, start=100)
    incidents_embed(workspace_id=clustered.workspace.pk)
    failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk)
    assert {tool: mode_of(tool).pk for tool in ERRORS} == before
    assert mode_of("crm.search").incident_count == 12


def test_new_incident_close_to_a_mode_joins_it_at_once(clustered):
    ingest_failures(clustered, "payments.refund", 1, start=500)
    embedded = incidents_embed(workspace_id=clustered.workspace.pk)
    incident = Incident.objects.get(pk=embedded[0])
    assert incident.failure_mode == mode_of("payments.refund")
    assert incident.assigned_by == "nearest"
    assert mode_of("payments.refund").incident_count == 9


def test_unlike_incident_stays_unclustered(clustered):
    ingest(
        workspace=clustered.workspace,
        items=[trace_payload("odd", steps=[{"kind": "error", "name": "gpu.render",
                                             "error": "CUDA out of memory in shader compiler"}])],
    )  # fmt: skip
    incidents_embed(workspace_id=clustered.workspace.pk)
    assert Incident.objects.get(trace__external_id="odd").failure_mode is None


def test_merge_moves_incidents_and_survives_reclustering(clustered):
    source, target = mode_of("crm.search"), mode_of("sql.query")
    modes.failure_mode_merge(
        workspace=clustered.workspace,
        source_id=source.pk,
        target_id=target.pk,
        actor=clustered.lead,
    )
    source.refresh_from_db()
    target.refresh_from_db()
    assert source.status == ModeStatus.MERGED and source.merged_into == target
    assert target.incident_count == 16 and source.incident_count == 0
    assert AuditEvent.objects.filter(action="failure_mode.merge").exists()


def test_split_creates_a_mode_that_reclustering_keeps(clustered):
    mode = mode_of("payments.refund")
    chosen = list(mode.incidents.values_list("pk", flat=True)[:3])
    new = modes.failure_mode_split(
        workspace=clustered.workspace, mode_id=mode.pk, incident_ids=chosen,
        label="Refunds over the limit", actor=clustered.lead,
    )  # fmt: skip
    failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk)
    new.refresh_from_db()
    assert set(new.incidents.values_list("pk", flat=True)) == set(chosen)
    assert new.label == "Refunds over the limit" and new.incident_count == 3


def test_ignore_and_rename(clustered):
    mode = mode_of("sql.query")
    modes.failure_mode_set_status(
        workspace=clustered.workspace, mode_id=mode.pk, status="ignored", actor=clustered.lead
    )
    modes.failure_mode_rename(
        workspace=clustered.workspace,
        mode_id=mode.pk,
        label="Stale column names",
        actor=clustered.lead,
    )
    failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk)
    mode.refresh_from_db()
    assert mode.status == ModeStatus.IGNORED and mode.label == "Stale column names"


def test_viewer_cannot_change_modes(clustered):
    with pytest.raises(PermissionDenied):
        modes.failure_mode_set_status(
            workspace=clustered.workspace, mode_id=mode_of("sql.query").pk,
            status="ignored", actor=clustered.viewer,
        )  # fmt: skip


def test_search_finds_the_right_mode_and_never_another_workspace(client, clustered, other_tenant):
    ingest_failures(other_tenant, "payments.refund", 6)
    incidents_embed(workspace_id=other_tenant.workspace.pk)
    response = client.get(
        "/api/v1/incidents/search",
        {"q": "rate-limit errors in payments"},
        headers=clustered.api_headers(),
    )
    assert response.status_code == 200
    body = response.json()
    own = set(Incident.objects.filter(workspace=clustered.workspace).values_list("pk", flat=True))
    assert body["incidents"] and {i["id"] for i in body["incidents"]} <= own
    assert body["modes"][0]["failure_mode"]["id"] == mode_of("payments.refund").pk
    assert body["incidents"][0]["tool"] == "payments.refund"
    # Each incident says what it stands for, and what became of its run.
    kinds = dict(Incident.objects.filter(workspace=clustered.workspace).values_list("pk", "kind"))
    words = {"weak": "weak lead", "recovered": "recovered", "symptom": "symptom"}
    for hit in body["incidents"]:
        assert hit["standing"] == words.get(kinds[hit["id"]], "cause")
        assert hit["run_status"] == "failed"


def test_search_reads_agent_and_time_from_the_question(client, clustered):
    response = client.get(
        "/api/v1/incidents/search",
        {"q": "timeouts in crm this week"},
        headers=clustered.api_headers(),
    )
    body = response.json()
    assert any("agent crm-agent" in u for u in body["understood"])
    assert {i["agent"] for i in body["incidents"]} <= {"crm-agent"}


def test_search_times_must_be_iso_8601(client, clustered):
    url, headers = "/api/v1/incidents/search", clustered.api_headers()
    for number in ("132", "-3.826457050857634e-295", " 1e9 ", "1_700_000_000", "inf"):
        bare = client.get(url, {"q": "timeouts", "since": number}, headers=headers)
        assert bare.status_code == 422, number
        assert "ISO 8601" in json.dumps(bare.json()["detail"]), number
    far = client.get(url, {"q": "timeouts", "since": "2026-11-01T00:00:00+17:45"}, headers=headers)
    assert far.status_code == 200  # an offset PostgreSQL cannot hold is converted to UTC
    assert client.get(url, {"q": "timeouts", "since": "2026-11-01T00:00:00Z"},
                      headers=headers).status_code == 200  # fmt: skip


def test_search_api_access(client, tenant):
    assert client.get("/api/v1/incidents/search", {"q": "x"}).status_code == 401
    from tests.factories import make_key
    from workspaces.models import Scope

    skills_only = make_key(tenant.workspace, scopes=[Scope.SKILLS_READ])
    response = client.get("/api/v1/incidents/search", {"q": "x"},
                          headers={"Authorization": f"Bearer {skills_only}"})  # fmt: skip
    assert response.status_code == 403 and "failures:read" in response.json()["detail"]
    ok = client.get("/api/v1/incidents/search", {"q": "x"}, headers=tenant.api_headers())
    assert ok.status_code == 200 and ok.json()["incidents"] == []


def test_mode_pages_access_owner_other_anonymous(clustered, other_tenant, anon):
    mode = mode_of("payments.refund")
    urls = [
        reverse("mode_list", args=[clustered.workspace.slug]),
        reverse("mode_detail", args=[clustered.workspace.slug, mode.pk]),
    ]
    for url in urls:
        response = clustered.client_for(clustered.viewer).get(url)
        assert response.status_code == 200 and b"payments.refund" in response.content
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
        assert anon.get(url).status_code == 302
    cross = reverse("mode_detail", args=[other_tenant.workspace.slug, mode.pk])
    assert other_tenant.client_for(other_tenant.admin).get(cross).status_code == 404
    detail = clustered.client_for(clustered.viewer).get(urls[1]).content.decode()
    assert f"<code>payments.refund</code> — {mode.incident_count} incidents" in detail
    assert "(none)" not in detail


def test_mode_actions_access(clustered, other_tenant, anon):
    mode = mode_of("sql.query")
    url = reverse("mode_status", args=[clustered.workspace.slug, mode.pk])
    assert anon.post(url, {"status": "ignored"}).status_code == 302
    assert (
        other_tenant.client_for(other_tenant.admin).post(url, {"status": "ignored"}).status_code
        == 404
    )
    assert (
        clustered.client_for(clustered.viewer).post(url, {"status": "ignored"}).status_code == 403
    )
    mode.refresh_from_db()
    assert mode.status == "open"
    assert clustered.client_for(clustered.lead).post(url, {"status": "ignored"}).status_code == 302
    mode.refresh_from_db()
    assert mode.status == "ignored"


def test_mode_list_search_box_renders_results(clustered):
    response = clustered.client_for(clustered.viewer).get(
        reverse("mode_list", args=[clustered.workspace.slug]),
        {"q": "database column missing"},
        headers={"HX-Request": "true", "HX-Target": "search-results"},
    )
    html = response.content.decode()
    assert html.startswith('<div id="search-results">') and "sql.query" in html


@pytest.mark.parametrize(
    "view, data",
    [("mode_rename", {"label": "Renamed"}), ("mode_merge", {"target": "0"}),
     ("mode_split", {"incident": "0", "label": "x"}), ("mode_status", {"status": "ignored"})],
)  # fmt: skip
def test_every_mode_action_access(clustered, other_tenant, anon, view, data):
    mode = mode_of("crm.search")
    if view == "mode_merge":
        data = {"target": str(mode_of("sql.query").pk)}
    if view == "mode_split":
        data = {**data, "incident": str(mode.incidents.first().pk)}
    url = reverse(view, args=[clustered.workspace.slug, mode.pk])
    before = (mode.label, mode.status, mode.incident_count)
    assert anon.post(url, data).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).post(url, data).status_code == 404
    assert clustered.client_for(clustered.viewer).post(url, data).status_code == 403
    mode.refresh_from_db()
    assert (mode.label, mode.status, mode.incident_count) == before
    assert clustered.client_for(clustered.lead).post(url, data).status_code == 302
    mode.refresh_from_db()
    assert (mode.label, mode.status, mode.incident_count) != before


def test_recluster_button_access(clustered, other_tenant, anon):
    from failures.models import ClusterRun

    url = reverse("mode_recluster", args=[clustered.workspace.slug])
    runs = ClusterRun.objects.count()
    assert anon.post(url).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).post(url).status_code == 404
    assert clustered.client_for(clustered.viewer).post(url).status_code == 403
    assert ClusterRun.objects.count() == runs
    assert clustered.client_for(clustered.lead).post(url).status_code == 302
    assert ClusterRun.objects.count() == runs + 1  # no broker in tests: the task ran inline


def test_a_single_cluster_only_when_nothing_else_is_found():
    import numpy as np

    from failures import clustering

    rng = np.random.default_rng(1)

    def group(centre: int, n: int) -> np.ndarray:
        base = np.zeros(384, dtype=np.float32)
        base[centre] = 1.0
        points = base + rng.normal(0, 0.01, (n, 384)).astype(np.float32)
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    one = clustering.cluster_vectors(group(0, 12), min_cluster_size=5)
    # One kind of failure so far: still a mode (the fallback).
    assert set(one) - {clustering.NOISE} == {0}
    two = clustering.cluster_vectors(np.vstack([group(0, 12), group(1, 12)]), min_cluster_size=5)
    assert len(set(two) - {clustering.NOISE}) == 2


def test_incidents_embedded_while_a_run_clustered_get_the_next_run(
    clustered, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """The embedding that asked for a re-cluster does not ask again: incidents that
    arrived while the run clustered would otherwise wait for the next sweep."""
    from failures import tasks
    from failures.models import ClusterRun

    settings.HIVEMIND_RECLUSTER_AFTER = 5
    real = failure_modes.failure_modes_recluster
    arrived: list[int] = []  # incidents embedded while the first run clustered

    def run_meanwhile_five_arrive(**kwargs):  # type: ignore[no-untyped-def]
        run = real(**kwargs)
        if not arrived:  # once: the next run sees nothing new
            source = Incident.objects.filter(workspace=clustered.workspace).first()
            assert source is not None
            for i in range(5):
                source.pk, source.step_index, source.failure_mode = None, 100 + i, None
                source.save()
                arrived.append(source.pk)
            # After the run started (what it clustered), before the next one does.
            Incident.objects.filter(pk__in=arrived).update(created_at=timezone.now())
            assert run.started_at < timezone.now()
        return run

    monkeypatch.setattr(failure_modes, "failure_modes_recluster", run_meanwhile_five_arrive)
    before = ClusterRun.objects.filter(workspace=clustered.workspace).count()
    with django_capture_on_commit_callbacks(execute=True):  # the queued run runs
        tasks.recluster_workspace(clustered.workspace.pk)
    assert ClusterRun.objects.filter(workspace=clustered.workspace).count() == before + 2
    assert not failure_modes.recluster_due(workspace_id=clustered.workspace.pk)


def _waiting_copies(workspace, keys: list[str]) -> list[int]:
    """Copies of one of the workspace's incidents, without a mode, each with a text of
    its own (`keys`), embedded now."""
    source = Incident.objects.filter(workspace=workspace).first()
    assert source is not None
    copies = []
    for n, key in enumerate(keys):
        source.pk, source.step_index, source.failure_mode = None, 200 + n, None
        source.embedding_key = key
        source.save()
        copies.append(source.pk)
    return copies


def test_incidents_embedded_after_the_last_re_cluster_started_are_waiting_for_one(
    clustered, settings
):
    """A run clusters only embedded incidents: those diagnosed before it started but
    embedded after were not in it, however long ago they were created."""
    from datetime import timedelta

    from failures.models import ClusterRun

    settings.HIVEMIND_RECLUSTER_AFTER = 5
    last = ClusterRun.objects.filter(workspace=clustered.workspace).latest("started_at")
    copies = _waiting_copies(clustered.workspace, [f"key-{n}" for n in range(5)])
    Incident.objects.filter(pk__in=copies).update(
        created_at=last.started_at - timedelta(seconds=5), embedded_at=timezone.now()
    )
    assert failure_modes.recluster_due(workspace_id=clustered.workspace.pk)
    # Embedded before it started too: the run saw them, and left them out of modes.
    Incident.objects.filter(pk__in=copies).update(
        embedded_at=last.started_at - timedelta(seconds=1)
    )
    assert not failure_modes.recluster_due(workspace_id=clustered.workspace.pk)


def test_a_text_waiting_often_enough_becomes_a_mode_without_a_re_cluster(
    clustered, settings, django_capture_on_commit_callbacks
):
    """Seen on the dev data: 34 incidents of one text ("went on with assumed or
    made-up data…") waited "not in any mode" for the hourly re-cluster. Once
    HIVEMIND_MIN_MODE_SIZE incidents share a text, the embedding task makes them a
    mode of their own (what a re-cluster makes of such a text), with no full
    re-cluster; as many different texts wait for one."""
    from failures import tasks
    from failures.models import ClusterRun

    settings.HIVEMIND_RECLUSTER_AFTER = 50
    settings.HIVEMIND_MIN_MODE_SIZE = 5
    copies = _waiting_copies(clustered.workspace, [f"key-{n}" for n in range(5)])
    assert failure_modes.incidents_form_modes(workspace_id=clustered.workspace.pk) == []
    # One text (signature, key and vector), unlike the workspace's modes.
    import numpy as np

    vector = np.random.default_rng(7).normal(size=len(Incident.objects.get(pk=copies[0]).embedding))
    Incident.objects.filter(pk__in=copies).update(
        embedding_key="one text",
        embedding=(vector / np.linalg.norm(vector)).tolist(),
        signature="tool: none | error: went on with made-up data | category: reasoning.invented",
    )
    runs = ClusterRun.objects.filter(workspace=clustered.workspace).count()
    monkeypatch_embed = tasks.embedding.incidents_embed
    tasks.embedding.incidents_embed = lambda workspace_id: copies  # type: ignore[assignment]
    try:
        with django_capture_on_commit_callbacks(execute=False):
            tasks.embed_incidents(clustered.workspace.pk)
    finally:
        tasks.embedding.incidents_embed = monkeypatch_embed  # type: ignore[assignment]
    modes = set(Incident.objects.filter(pk__in=copies).values_list("failure_mode", flat=True))
    assert len(modes) == 1 and None not in modes
    mode = FailureMode.objects.get(pk=modes.pop())
    assert mode.incident_count == 5 and mode.label != "(new mode)"
    assert ClusterRun.objects.filter(workspace=clustered.workspace).count() == runs
    # A later re-cluster keeps the mode.
    failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk)
    assert set(Incident.objects.filter(pk__in=copies).values_list("failure_mode", flat=True)) == {
        mode.pk
    }


def test_a_re_cluster_that_meets_a_deadlock_waits_queued_for_its_retry(clustered, monkeypatch):
    """A deadlock with a concurrent write (seen in the worker log: an embedding's
    update against the re-cluster's) is retried by the task: the lead's run goes back
    to queued, so the retry claims and finishes it; another error fails it."""
    from django.db import OperationalError

    from failures.models import ClusterRun, RunState

    real = failure_modes._apply_labels
    calls = []

    def deadlock_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected")
        return real(*args, **kwargs)

    monkeypatch.setattr(failure_modes, "_apply_labels", deadlock_once)
    run, _ = failure_modes.cluster_run_request(
        workspace_id=clustered.workspace.pk, actor=clustered.lead
    )
    assert failure_modes.cluster_run_claim(workspace_id=clustered.workspace.pk, run_id=run.pk)
    with pytest.raises(OperationalError):
        failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk, run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert failure_modes.cluster_run_claim(workspace_id=clustered.workspace.pk, run_id=run.pk)
    failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk, run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.DONE and run.modes

    monkeypatch.setattr(failure_modes, "_apply_labels", lambda *a, **k: 1 / 0)
    run, _ = failure_modes.cluster_run_request(
        workspace_id=clustered.workspace.pk, actor=clustered.lead
    )
    assert failure_modes.cluster_run_claim(workspace_id=clustered.workspace.pk, run_id=run.pk)
    with pytest.raises(ZeroDivisionError):
        failure_modes.failure_modes_recluster(workspace_id=clustered.workspace.pk, run_id=run.pk)
    assert ClusterRun.objects.get(pk=run.pk).state == RunState.FAILED


def test_a_rediagnosed_incident_whose_finding_changed_leaves_its_mode_and_the_mode_is_recounted(
    clustered,
):
    """Seen on the dev data: telecom runs re-diagnosed as failing their environment
    assertions stayed in the mode "`db_match` failed". A run sent again with another
    error leaves the mode (to be placed again once embedded); one sent again as
    succeeded takes its incident out; the mode counts what it still holds. An
    incident a lead placed stays where the lead put it."""
    from failures.models import Assignment

    refund = mode_of("payments.refund")
    assert refund.incident_count == 8
    placed = Incident.objects.get(trace__external_id="payments.refund-2")
    Incident.objects.filter(pk=placed.pk).update(assigned_by=Assignment.MANUAL)
    items = [
        trace_payload(f"payments.refund-{i}", agent="payments-agent", steps=[{
            "kind": "tool_call", "name": "payments.refund", "input": {"id": i},
            "error": "PermissionError: refunds above 500 EUR need a manager"}])
        for i in (0, 2)
    ] + [
        trace_payload("payments.refund-1", agent="payments-agent", status="succeeded",
                      steps=[{"kind": "tool_call", "name": "payments.refund", "input": {"id": 1}}])
    ]  # fmt: skip
    ingest(workspace=clustered.workspace, items=items)
    changed = Incident.objects.get(trace__external_id="payments.refund-0")
    assert "PermissionError" in changed.description and changed.failure_mode_id is None
    assert not Incident.objects.filter(trace__external_id="payments.refund-1",
                                       failure_mode=refund).exists()  # fmt: skip
    assert Incident.objects.get(pk=placed.pk).failure_mode_id == refund.pk  # the lead's
    refund.refresh_from_db()
    assert refund.incident_count == 6 == Incident.objects.filter(failure_mode=refund).count()


def test_a_mode_whose_incidents_are_older_than_the_chart_says_so(tenant):
    from datetime import timedelta

    old = timezone.now() - timedelta(days=400)
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="crm.search: timeout",
                                      incident_count=9, first_seen=old, last_seen=old)  # fmt: skip
    url = reverse("mode_detail", args=[tenant.workspace.slug, mode.pk])
    html = tenant.client_for(tenant.viewer).get(url).content.decode()
    assert "None of this mode's 9 incidents fall in the last 60 days" in html
    assert old.strftime("%b %-d, %Y") in html  # the year, not only "Aug 1"
    # The chart is of the 60 days up to its last incident, not of 60 empty days, and
    # its CSV is of the same days.
    from failures.models import ModeDailyCount

    ModeDailyCount.objects.create(workspace=tenant.workspace, failure_mode=mode,
                                  day=old.date(), agent="crm-agent", incidents=9, traces=7)  # fmt: skip
    html = tenant.client_for(tenant.viewer).get(url).content.decode()
    assert "the chart shows the 60 days up to the last" in html
    figure = json.loads(
        html.split('id="mode-figure" type="application/json">')[1].split("</script>")[0]
    )
    assert figure["layout"]["title"]["text"] == (
        "Incidents per day,<br>the 60 days up to its last incident"
    )
    assert figure["data"][0]["x"][-1] == old.date().isoformat()
    assert figure["data"][0]["y"][-1] == 9
    csv_url = reverse("mode_daily_csv", args=[tenant.workspace.slug, mode.pk])
    assert f"{csv_url}?until={old.date().isoformat()}" in html
    rows = tenant.client_for(tenant.viewer).get(f"{csv_url}?until={old.date().isoformat()}")
    assert f"{old.date().isoformat()},crm-agent,9,7" in rows.content.decode()
    # A date that is no date is the default window, not an error.
    assert tenant.client_for(tenant.viewer).get(f"{csv_url}?until=soon").status_code == 200


def test_a_reclustering_whose_message_was_lost_is_sent_again_and_runs_once(clustered):
    from datetime import timedelta

    from failures import tasks
    from failures.models import ClusterRun

    # A lead's click while the broker was away: the run was recorded, its message lost.
    run = ClusterRun.objects.create(workspace=clustered.workspace)
    ClusterRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    fresh = ClusterRun.objects.create(workspace=other_workspace(clustered))
    tasks.sweep_unfinished()
    run.refresh_from_db()
    assert run.state == "done" and run.incidents > 0
    fresh.refresh_from_db()
    assert fresh.state == "queued"  # not lost yet: its message may still arrive
    # A lead clicking "Re-cluster now" meanwhile sends a queued run's message again.
    waiting = ClusterRun.objects.create(workspace=clustered.workspace)
    url = reverse("mode_recluster", args=[clustered.workspace.slug])
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert clustered.client_for(clustered.lead).post(url).status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == "done"
    assert not ClusterRun.objects.filter(workspace=clustered.workspace, state="queued").exists()
    # The first message arrives after all: the run is not clustered a second time.
    finished = run.finished_at
    assert tasks.recluster_workspace(clustered.workspace.pk, run.pk) == 0
    run.refresh_from_db()
    assert run.finished_at == finished


def other_workspace(tenant):  # type: ignore[no-untyped-def]
    from workspaces.services import workspace_create

    return workspace_create(name="Other", slug="other-recluster", owner=tenant.admin)


def test_a_new_incident_joins_only_a_nearby_mode_of_its_own_kind(tenant):
    import numpy as np

    from failures.services import incidents_assign_nearest
    from traces.models import Trace

    ingest(tenant.workspace, [trace_payload(f"k-{i}") for i in range(3)])
    traces = list(Trace.objects.filter(workspace=tenant.workspace).order_by("pk"))
    now = timezone.now()
    base = np.zeros(384, dtype=np.float32)
    base[0] = 1.0
    near = base.copy()
    near[1] = 0.05
    near /= np.linalg.norm(near)

    def incident(trace, category, vector, mode=None):  # type: ignore[no-untyped-def]
        return Incident.objects.create(
            workspace=tenant.workspace, trace=trace, step_index=9, kind="diagnosis",
            category=category, signature=f"tool: x | error: e | category: {category}",
            embedding=vector.tolist(), embedded_at=now, occurred_at=now, failure_mode=mode,
        )  # fmt: skip

    checks = FailureMode.objects.create(workspace=tenant.workspace, label="`db_match` failed",
                                        centroid=base.tolist(), incident_count=1)  # fmt: skip
    incident(traces[0], "outcome.check_failed", base, checks)
    gave_up = incident(traces[1], "process.gave_up", near)  # close, but another kind
    same = incident(traces[2], "outcome.check_failed", near)
    assert (
        incidents_assign_nearest(
            workspace_id=tenant.workspace.pk, incident_ids=[gave_up.pk, same.pk]
        )
        == 1
    )
    gave_up.refresh_from_db()
    same.refresh_from_db()
    assert gave_up.failure_mode is None and same.failure_mode == checks


def test_a_failed_check_joins_only_a_mode_of_the_same_check(tenant):
    """InterCode's SQL runs ("`result rows` failed") joined the CTF runs' mode
    ("`flag` failed: no correct flag was submitted") on closeness alone, and the
    mode kept the CTF label over 259 SQL incidents."""
    import numpy as np

    from failures import clustering
    from failures.services import incidents_assign_nearest
    from traces.models import Trace

    ingest(tenant.workspace, [trace_payload(f"c-{i}") for i in range(3)])
    traces = list(Trace.objects.filter(workspace=tenant.workspace).order_by("pk"))
    now = timezone.now()
    base = np.zeros(384, dtype=np.float32)
    base[0] = 1.0
    near = base.copy()
    near[1] = 0.05
    near /= np.linalg.norm(near)

    def incident(trace, error, vector, mode=None):  # type: ignore[no-untyped-def]
        return Incident.objects.create(
            workspace=tenant.workspace, trace=trace, step_index=-1, kind="diagnosis",
            category="outcome.check_failed",
            signature=f"tool: none | error: {error} | category: outcome.check_failed",
            embedding=vector.tolist(), embedded_at=now, occurred_at=now, failure_mode=mode,
        )  # fmt: skip

    flags = FailureMode.objects.create(
        workspace=tenant.workspace, label="`flag` failed: no correct flag was submitted",
        centroid=base.tolist(), incident_count=1,
    )  # fmt: skip
    incident(traces[0], "`flag` failed: no correct flag was submitted", base, flags)
    rows = incident(traces[1], "`result rows` failed: none of the expected rows", near)
    flag = incident(traces[2], "`flag` failed: no correct flag was submitted", near)
    assert (
        incidents_assign_nearest(workspace_id=tenant.workspace.pk, incident_ids=[rows.pk, flag.pk])
        == 1
    )
    rows.refresh_from_db()
    flag.refresh_from_db()
    assert rows.failure_mode is None and flag.failure_mode == flags
    # Re-clustering keeps them apart the same way.
    groups = {
        clustering.category_group(i.signature, "")
        for i in Incident.objects.filter(pk__in=[rows.pk, flag.pk])
    }
    assert groups == {"outcome.check_failed:flag", "outcome.check_failed:result rows"}


def test_a_mode_that_doubles_by_joins_is_labelled_by_what_its_incidents_now_say(tenant):
    import numpy as np

    from failures.services import incidents_assign_nearest
    from traces.models import Trace

    ingest(tenant.workspace, [trace_payload(f"g-{i}") for i in range(6)])
    traces = list(Trace.objects.filter(workspace=tenant.workspace).order_by("pk"))
    now = timezone.now()
    base = np.zeros(384, dtype=np.float32)
    base[0] = 1.0

    def incident(trace, error, mode=None):  # type: ignore[no-untyped-def]
        return Incident.objects.create(
            workspace=tenant.workspace, trace=trace, step_index=-1, kind="diagnosis",
            category="outcome.check_failed", tool="",
            signature=f"tool: none | error: {error} | category: outcome.check_failed",
            embedding=base.tolist(), embedded_at=now, occurred_at=now, failure_mode=mode,
        )  # fmt: skip

    mode = FailureMode.objects.create(
        workspace=tenant.workspace, label="`rows` failed: none returned",
        centroid=base.tolist(), incident_count=2,
    )  # fmt: skip
    incident(traces[0], "`rows` failed: none returned", mode)
    incident(traces[1], "`rows` failed: none returned", mode)
    one = incident(traces[2], "`rows` failed: some returned")
    incidents_assign_nearest(workspace_id=tenant.workspace.pk, incident_ids=[one.pk])
    mode.refresh_from_db()
    assert mode.incident_count == 3 and mode.label == "`rows` failed: none returned"
    more = [incident(t, "`rows` failed: some returned") for t in traces[3:]]
    incidents_assign_nearest(workspace_id=tenant.workspace.pk, incident_ids=[i.pk for i in more])
    mode.refresh_from_db()
    assert mode.incident_count == 6 and mode.label == "`rows` failed: some returned"


def test_a_modes_daily_counts_hold_imported_runs_of_last_year_and_keep_purged_days(tenant):
    """Retention counts from arrival, so last year's imported runs stay; their mode's
    chart, trend and skill-impact counts must hold them. A day whose incidents were
    purged keeps the count the rollup had."""
    from datetime import timedelta

    from failures.models import ModeDailyCount
    from failures.services import mode_daily_counts_refresh

    old = timezone.now() - timedelta(days=400)
    trace_id = ingest(workspace=tenant.workspace,
                      items=[trace_payload("imported-1", started_at=old.isoformat())]).trace_ids[0]  # fmt: skip
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="payments.refund: 429",
                                      incident_count=2, first_seen=old, last_seen=old)  # fmt: skip
    for step in (10, 11):
        Incident.objects.create(workspace=tenant.workspace, trace_id=trace_id, step_index=step,
                                kind="error", failure_mode=mode, occurred_at=old)  # fmt: skip
    purged_day = (old - timedelta(days=30)).date()
    ModeDailyCount.objects.create(workspace=tenant.workspace, failure_mode=mode, day=purged_day,
                                  agent="checkout-agent", incidents=5, traces=4)  # fmt: skip
    for scope in ({"mode_ids": [mode.pk]}, {"workspace_id": tenant.workspace.pk}):
        mode_daily_counts_refresh(**scope)  # type: ignore[arg-type]
        assert sorted(
            ModeDailyCount.objects.filter(failure_mode=mode).values_list(
                "day", "incidents", "traces"
            )
        ) == [(purged_day, 5, 4), (old.date(), 2, 1)]


def test_recounting_only_the_days_of_incidents_that_joined_gives_the_full_counts(tenant):
    """Incidents joining a mode recount only the days they fall on; the counts are
    those a full recount gives (every agent of those days, other days untouched)."""
    from datetime import timedelta

    from failures.models import ModeDailyCount
    from failures.services import mode_daily_counts_refresh, mode_daily_counts_refresh_days
    from traces.models import Trace

    now = timezone.now().replace(hour=12)
    days = [now - timedelta(days=n) for n in (0, 1, 400)]
    ids = ingest(workspace=tenant.workspace, items=[
        trace_payload(f"run-{n}", agent=f"agent-{n % 2}", started_at=day.isoformat())
        for n, day in enumerate(days * 2)
    ]).trace_ids  # fmt: skip
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="payments.refund: 429")

    def add(trace_ids: list[int], step: int) -> list[int]:
        made = []
        for trace_id in trace_ids:
            when = Trace.objects.get(pk=trace_id).started_at
            made.append(Incident.objects.create(
                workspace=tenant.workspace, trace_id=trace_id, step_index=step, kind="error",
                failure_mode=mode, occurred_at=when).pk)  # fmt: skip
        return made

    mode_daily_counts_refresh_days(mode_ids=[mode.pk], incident_ids=add(ids[:3], 10))
    mode_daily_counts_refresh_days(mode_ids=[mode.pk], incident_ids=add([ids[0], ids[3]], 11))

    def counts() -> list[tuple]:
        return sorted(ModeDailyCount.objects.filter(failure_mode=mode)
                      .values_list("day", "agent", "incidents", "traces"))  # fmt: skip

    partial = counts()
    mode_daily_counts_refresh(mode_ids=[mode.pk])
    assert partial == counts() and len(partial) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writer", ["embedding", "re-diagnosis", "re-cluster", "purge"])
def test_writers_of_a_workspaces_incidents_queue_behind_each_other(tenant, writer):
    """A re-cluster, the embedding, a re-diagnosis and the retention purge write the
    same incidents: each takes the workspace's `modes_lock` before any row, so one
    waits for another's transaction instead of both holding rows the other needs (a
    deadlock, seen in the worker log between an embedding's update and a
    re-cluster's)."""
    import threading
    from datetime import timedelta

    import psycopg
    from django.db import connection as main_connection
    from django.db import connections

    from failures.mining import traces_diagnose
    from traces.models import Trace
    from traces.services import traces_purge_expired

    ingest_failures(tenant, "payments.refund", 6)  # diagnosed, embedded, clustered
    ws = tenant.workspace.pk
    if writer == "embedding":
        Incident.objects.filter(workspace_id=ws).update(
            embedding=None, embedding_key="", embedded_at=None
        )
    run = {
        "embedding": lambda: incidents_embed(workspace_id=ws),
        "re-diagnosis": lambda: traces_diagnose(
            workspace_id=ws,
            trace_ids=list(Trace.objects.filter(workspace_id=ws).values_list("pk", flat=True)),
            force=True,
        ),  # fmt: skip
        "re-cluster": lambda: failure_modes.failure_modes_recluster(workspace_id=ws),
        "purge": lambda: traces_purge_expired(workspace_id=ws),
    }[writer]
    if writer == "purge":
        Trace.objects.filter(workspace_id=ws).update(
            received_at=timezone.now() - timedelta(days=400)
        )
    params = main_connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    holder = psycopg.connect(**params, autocommit=False)
    holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", [failure_modes.CLUSTER_LOCK, ws])
    errors: list[BaseException] = []

    def write() -> None:
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=write)
    thread.start()
    waited = False
    for _ in range(600):  # until the writer waits for the lock, or it ends without
        waited = bool(holder.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = %s AND objid = %s", [failure_modes.CLUSTER_LOCK, ws],
        ).fetchone()[0])  # fmt: skip
        if waited or not thread.is_alive():
            break
        thread.join(0.05)
    # Waiting before it wrote, not after (the purge's follow-up refresh waits too).
    incidents_while_waiting = holder.execute(
        f"SELECT count(*) FROM {Incident._meta.db_table} WHERE workspace_id = %s", [ws]
    ).fetchone()[0]
    holder.commit()  # the other writer's transaction ends; this one goes on
    holder.close()
    thread.join()
    main_connection.close()
    assert waited, f"the {writer} wrote without waiting for the workspace's lock"
    assert incidents_while_waiting, f"the {writer} wrote before it waited for the lock"
    assert not errors, errors
    assert not Incident.objects.filter(workspace_id=ws, embedded_at=None).exists()
    assert Incident.objects.filter(workspace_id=ws).exists() == (writer != "purge")


def test_the_modes_page_says_its_list_of_incidents_in_no_mode_is_the_newest_only(client, tenant):
    """The page lists 20 of the incidents no mode holds; its heading counts them all,
    and it says the list is the newest of them, not all."""
    ingest(tenant.workspace, [trace_payload(f"n-{i}") for i in range(23)])
    now = timezone.now()
    incidents = Incident.objects.filter(workspace=tenant.workspace).exclude(kind__in=NOT_CAUSES)
    total = incidents.count()
    assert total >= 23
    incidents.update(embedded_at=now, failure_mode=None, embedding=[1.0] + [0.0] * 383)
    client.force_login(tenant.viewer)
    page = client.get(reverse("mode_list", args=[tenant.workspace.slug])).content.decode()
    noise = page.split("Not in any mode")[1]
    assert f"({total} incidents)" in noise
    shown = noise.split('id="noise-shown">')[1].split("</p>")[0]
    assert shown == f"The newest 20 of the {total}; search incidents above to find the others."


def test_what_the_agents_were_trying_to_do_counts_runs_and_says_when_tasks_differ(tenant):
    """Five runs on five different carts read as one kind of task, not as one cart
    five times; a run with two incidents in the mode counts once."""
    from failures.selectors import mode_tasks
    from traces.models import Trace

    carts = ["88542", "10433", "27719", "60218"]
    items = [trace_payload(f"cart-{c}", agent="shop-agent", task=f"Apply discount code to cart {c}")
             for c in carts]  # fmt: skip
    items.append(trace_payload("refund-1", agent="shop-agent", task="Refund order 8812"))
    chores = [
        "Cancel the booking",
        "Ship the parcel",
        "Email the invoice",
        "Close the ticket",
        "Reset the password",
        "Merge the accounts",
        "Print the label",
        "Rate the driver",
    ]
    items += [trace_payload(f"chore-{i}", agent="shop-agent", task=task)
              for i, task in enumerate(chores)]  # fmt: skip
    ingest(workspace=tenant.workspace, items=items)
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="discount: rejected",
                                      incident_count=6)  # fmt: skip
    for trace in Trace.objects.filter(workspace=tenant.workspace):
        for step in (10, 11) if trace.external_id == "cart-88542" else (10,):
            Incident.objects.create(workspace=tenant.workspace, trace=trace, step_index=step,
                                    kind="step_error", signature="x", failure_mode=mode,
                                    occurred_at=timezone.now())  # fmt: skip
    tasks = mode_tasks(mode=mode)
    assert [(t["task"], t["n"], t["others"]) for t in tasks["kinds"][:2]] == [
        ("Apply discount code to cart 10433", 4, 3),  # the first of the kind, by task
        ("Cancel the booking", 1, 0),
    ]
    assert (len(tasks["kinds"]), tasks["more_kinds"], tasks["more_runs"]) == (8, 2, 2)
    url = reverse("mode_detail", args=[tenant.workspace.slug, mode.pk])
    html = tenant.client_for(tenant.viewer).get(url).content.decode()
    assert "Apply discount code to cart 10433" in html
    assert "and 3 similar tasks · 4 runs" in html
    assert "Cancel the booking</li>" in html  # one run: no count
    assert "And 2 other kinds of task in 2 runs." in html


def test_a_lift_and_its_interval_read_on_the_side_of_1_they_are_judged_on(client, tenant):
    """The modes page judges a lift by its stored interval (above 1: it fails more
    often; wholly below 1: less often; else "may be chance"). Rounded to one decimal,
    a low end of 1.04 read "1.0" beside a lift shown as not chance, and an interval
    wholly below 1 read "may be chance"."""
    lifts = {"above": (1.6, 1.04, 2.345), "below": (0.5, 0.3, 0.96), "across": (1.25, 0.7, 2.2)}
    for label, (lift, low, high) in lifts.items():
        FailureMode.objects.create(
            workspace=tenant.workspace, label=f"mode {label}", centroid=[1.0] + [0.0] * 383,
            incident_count=3, stats={"lift": lift, "lift_low": low, "lift_high": high,
                                     "also_in_successes": 0.1, "successes": 10},
        )  # fmt: skip
    client.force_login(tenant.viewer)
    page = client.get(reverse("mode_list", args=[tenant.workspace.slug])).content.decode()
    cells = {label: page.split(f"mode {label}</a>")[1].split("</tr>")[0] for label in lifts}
    assert '<span class="good">×1.6</span><div class="small muted">1.04–2.4</div>' in cells["above"]
    assert (
        '×0.5</span><div class="small muted">0.3–0.96: runs showing it fail less often'
        in (cells["below"])
    )
    assert '×1.3</span><div class="small muted">0.7–2.2: may be chance' in cells["across"]
