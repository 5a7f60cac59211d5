"""The trace page: waterfall bars, the session's other traces, times in the
workspace's zone (named), and the zone setting."""

from __future__ import annotations

import pytest

from tests.factories import ingest, trace_payload
from traces.models import Trace
from workspaces.models import AuditEvent


@pytest.mark.django_db
def test_trace_page_has_a_waterfall_the_session_and_the_zone(tenant):
    steps = [{"kind": "tool_call", "name": "a", "started_at": "2026-11-20T10:00:00Z", "duration_ms": 1000},
             {"kind": "tool_call", "name": "b", "started_at": "2026-11-20T10:00:01Z", "duration_ms": 3000}]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("t1", session_id="s-7", steps=steps,
                                            started_at="2026-11-20T10:00:00Z"),
                              trace_payload("t2", session_id="s-7"), trace_payload("t3", session_id="s-8")])  # fmt: skip
    trace = Trace.objects.get(external_id="t1")
    page = tenant.client_for(tenant.viewer).get(f"/w/acme/traces/{trace.pk}/").content.decode()
    assert (
        'style="left: 0.0%; width: 25.0%"' in page and 'style="left: 25.0%; width: 75.0%"' in page
    )
    # Link texts, not bare strings: a random CSRF token may hold "t3".
    assert (
        "1 other trace in this session" in page
        and ">t2</code></a>" in page
        and ">t3</code></a>" not in page
    )
    assert "10:00:00 UTC" in page
    tenant.workspace.time_zone = "Europe/Paris"
    tenant.workspace.save()
    page = tenant.client_for(tenant.viewer).get(f"/w/acme/traces/{trace.pk}/").content.decode()
    assert "11:00:00 CET" in page


@pytest.mark.django_db
def test_time_zone_setting_is_for_admins_and_validated(tenant, other_tenant):
    url = "/w/acme/settings/time-zone/"
    assert tenant.client_for(tenant.lead).post(url, {"time_zone": "Asia/Tokyo"}).status_code == 403
    assert (
        other_tenant.client_for(other_tenant.admin)
        .post(url, {"time_zone": "Asia/Tokyo"})
        .status_code
        == 404
    )
    admin = tenant.client_for(tenant.admin)
    bad = admin.post(url, {"time_zone": "Mars/Olympus"}, follow=True)
    assert "is not a time zone name" in bad.content.decode()
    tenant.workspace.refresh_from_db()
    assert tenant.workspace.time_zone == "UTC"
    admin.post(url, {"time_zone": "Asia/Tokyo"})
    tenant.workspace.refresh_from_db()
    assert tenant.workspace.time_zone == "Asia/Tokyo"
    assert AuditEvent.objects.filter(
        workspace=tenant.workspace, action="workspace.time_zone"
    ).exists()


@pytest.mark.django_db
def test_the_timeline_keeps_the_logs_order_unless_every_step_has_a_time(tenant):
    """A run whose prompt has no time of its own and whose calls do (ATIF's user
    turns) reads in its log's order, not timed steps first; a run whose every step
    is timed reads by time, whatever order its steps were numbered in."""
    partly = [
        {"kind": "user_prompt", "input": "fix it"},
        {"kind": "tool_call", "name": "first", "started_at": "2026-11-20T10:00:00Z"},
        {"kind": "assistant_message", "output": "done"},
    ]
    timed = [{"kind": "tool_call", "name": "later", "started_at": "2026-11-20T10:00:05Z"},
             {"kind": "tool_call", "name": "sooner", "started_at": "2026-11-20T10:00:01Z"}]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("p1", steps=partly), trace_payload("p2", steps=timed)])
    viewer = tenant.client_for(tenant.viewer)

    def order(external_id: str, *names: str) -> list[int]:
        trace = Trace.objects.get(external_id=external_id)
        page = viewer.get(f"/w/acme/traces/{trace.pk}/").content.decode()
        timeline = page[page.index('id="timeline"') :]
        return [timeline.index(name) for name in names]

    first, prompt, said = order("p1", "first", "fix it", "done")
    assert prompt < first < said
    sooner, later = order("p2", "sooner", "later")
    assert sooner < later


@pytest.mark.django_db
def test_token_counts_are_grouped_by_thousands(tenant):
    """A Claude Code session reads 13 million tokens (its cache): shown as
    13,474,872, not 13474872, on the trace page, its steps and the trace list."""
    steps = [{"kind": "llm_call", "name": "m", "tokens": 13_000_000},
             {"kind": "llm_call", "name": "m", "tokens": 474_872}]  # fmt: skip
    ingest(tenant.workspace, [trace_payload("big", steps=steps)])
    trace = Trace.objects.get(external_id="big")
    viewer = tenant.client_for(tenant.viewer)
    page = viewer.get(f"/w/acme/traces/{trace.pk}/").content.decode()
    assert "13,474,872 tokens" in page and "474,872 tokens" in page
    assert "13474872" not in page
    assert "13,474,872" in viewer.get("/w/acme/traces/").content.decode()
