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
