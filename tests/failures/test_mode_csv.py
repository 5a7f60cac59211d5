"""The failure-mode chart's data as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount


@pytest.mark.django_db
def test_mode_chart_csv_and_its_access(tenant, other_tenant, anon):
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="m", incident_count=3)
    ModeDailyCount.objects.create(workspace=tenant.workspace, failure_mode=mode, agent="=cmd()",
                                  day=timezone.now().date(), incidents=3, traces=2)  # fmt: skip
    url = f"/w/acme/failure-modes/{mode.pk}/daily.csv"
    rows = list(csv.reader(io.StringIO(tenant.client_for(tenant.viewer).get(url).content.decode())))
    assert rows[0] == ["day_utc", "agent", "incidents", "failed_runs"]
    assert rows[1][1:] == ["'=cmd()", "3", "2"]  # a formula is neutralised
    assert anon.get(url).status_code == 302
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert tenant.client_for(tenant.viewer).get(url + "?days=abc").status_code == 200
