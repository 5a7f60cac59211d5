"""A PM's periods (6/8 item 5): any range against the range just before it, in
words; one-click "this month" (against the same days of last month) and "last 4
weeks"; a default range that covers the data when nothing is recent; the
compound-error table follows the range and says n/a without per-step validity."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from metrics.filters import dash_filter
from metrics.selectors import agent_trends, compound_by_agent
from metrics.services import rollups_refresh_for_traces
from tests.factories import ingest

pytestmark = pytest.mark.django_db


def _runs(tenant, agent: str, n: int, ok: int, day: date, step_error: bool = True) -> None:  # type: ignore[no-untyped-def]
    items = [{"external_id": f"{agent}-{day}-{i}", "agent": agent,
              "status": "succeeded" if i < ok else "failed",
              "started_at": f"{day.isoformat()}T10:00:{i % 60:02d}Z",
              "steps": [{"kind": "tool_call", "name": "t",
                         **({"error": "boom"} if step_error and i >= ok else {})}]}
             for i in range(n)]  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ingest(workspace=tenant.workspace, items=items).trace_ids)


def test_this_month_is_compared_with_the_same_days_of_last_month():
    today = timezone.now().date()
    flt = dash_filter(QueryDict("period=month"), default_days=90, agents=[])
    assert flt.since == today.replace(day=1) and flt.until == today
    before = flt.previous()
    assert before.since.day == 1 and before.since.month != today.month
    assert before.until.day == min(today.day, (today.replace(day=1) - timedelta(days=1)).day)
    four = dash_filter(QueryDict("period=4w"), default_days=90, agents=[])
    assert four.days == 28 and four.previous().days == 28
    assert four.previous().until == four.since - timedelta(days=1)


def test_any_range_is_compared_with_the_range_before_in_words(tenant):
    today = timezone.now().date()
    _runs(tenant, "support-agent", 40, 36, today - timedelta(days=3))
    _runs(tenant, "support-agent", 40, 20, today - timedelta(days=20))
    since = today - timedelta(days=13)
    [trend] = agent_trends(workspace=tenant.workspace, since=since, until=today)
    assert trend.this_week.n == 40 and trend.last_week.n == 40
    assert trend.words.startswith("support-agent: 90% in ") and trend.words.endswith("better")
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/metrics/?from={since}&to={today}").content.decode()  # fmt: skip
    assert "90% in " in page and "50% in " in page and "better" in page
    assert "This month" in page and "Last 4 weeks" in page  # one click each


def test_the_default_range_covers_old_data_and_says_so(tenant):
    old = timezone.now().date() - timedelta(days=200)
    _runs(tenant, "batch-agent", 10, 7, old)
    flt = dash_filter(QueryDict(""), default_days=90, agents=["batch-agent"], last_day=old)
    assert flt.until == old and flt.since == old - timedelta(days=89)
    assert "Nothing arrived in the last 90 days" in flt.problems[0]
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/metrics/")
    assert "No traces" not in page.content.decode().split("<h1>Metrics</h1>")[1][:3000]


def test_compound_error_follows_the_range_and_says_n_a_without_step_errors(tenant):
    today = timezone.now().date()
    _runs(tenant, "no-validity", 10, 6, today - timedelta(days=2), step_error=False)
    _runs(tenant, "with-errors", 10, 6, today - timedelta(days=2))
    _runs(tenant, "with-errors", 10, 6, today - timedelta(days=60))
    rows = {r["agent"]: r for r in compound_by_agent(
        workspace=tenant.workspace, since=today - timedelta(days=6), until=today)}  # fmt: skip
    assert rows["no-validity"]["per_step"] is None and rows["no-validity"]["predicted"] is None
    assert rows["with-errors"]["end_to_end"].n == 10  # the range only
    page = tenant.client_for(tenant.viewer).get(
        f"/w/{tenant.workspace.slug}/metrics/?from={today - timedelta(days=6)}&to={today}"
    )
    assert "n/a (steps report no errors)" in page.content.decode()


def test_twelve_agents_get_twelve_colours_and_keep_them():
    from metrics.charts import agent_colours

    agents = [f"agent-{n:02d}" for n in range(12)]
    colours = agent_colours(agents)
    assert len(set(colours.values())) == 12
    assert agent_colours([*agents, "newcomer"])["agent-03"] == colours["agent-03"]


def test_the_partial_period_is_marked_and_the_legend_sits_below_the_axis():
    from metrics.charts import volume_figure

    series = {"a": [{"period": date(2026, 11, 23), "traces": 5, "decided": 5, "succeeded": 4},
                    {"period": date(2026, 11, 30), "traces": 2, "decided": 2, "succeeded": 1}]}  # fmt: skip
    figure = volume_figure(series, unit="week", partial=True)
    assert figure["data"][0]["marker"]["opacity"] == [1, 0.45]
    assert figure["layout"]["annotations"][0]["text"] == "this week so far"
    assert figure["layout"]["legend"]["y"] < -0.3  # under the axis title


def test_per_step_success_counts_calls_not_the_framework_steps_around_them(tenant):
    """A run traced by a framework records its agent and graph nodes as framework
    steps (kind "span") around the calls, and a tool's error again on each: per-step
    success counts the calls only, as the run was stored, re-sent with more steps,
    and recounted."""
    from traces.ingest import refresh_aggregates
    from traces.models import Trace

    day = timezone.now().date() - timedelta(days=1)

    def run(i: int, spans: int, failed: bool) -> dict:
        error = {"error": "ValueError: order not found"} if failed else {}
        steps = [{"index": n, "kind": "span", "name": f"node-{n}", **error} for n in range(spans)]
        steps += [{"index": spans, "kind": "llm_call", "name": "chat", "parent_index": 0},
                  {"index": spans + 1, "kind": "tool_call", "name": "lookup", "parent_index": 0,
                   **error}]  # fmt: skip
        return {"external_id": f"graph-{i}", "agent": "graph", "started_at":
                f"{day.isoformat()}T10:00:0{i}Z", "status": "failed" if failed else "succeeded",
                "steps": steps}  # fmt: skip

    def per_step() -> float:
        rows = {r["agent"]: r for r in compound_by_agent(workspace=tenant.workspace, days=7)}
        return rows["graph"]["per_step"]

    items = [run(i, 3, failed=i >= 2) for i in range(4)]
    ids = ingest(workspace=tenant.workspace, items=items).trace_ids
    rollups_refresh_for_traces(trace_ids=ids)
    # 8 calls, 2 of them failed: 0.75 (all 20 steps, 8 with errors, would say 0.6).
    assert per_step() == 0.75
    failed = Trace.objects.get(workspace=tenant.workspace, external_id="graph-3")
    assert (failed.step_count, failed.span_count, failed.error_count,
            failed.span_error_count) == (5, 3, 4, 3)  # fmt: skip
    # Sent again with a fourth framework step (the merge path), then recounted.
    ingest(workspace=tenant.workspace, items=[run(3, 4, failed=True)])
    rollups_refresh_for_traces(trace_ids=ids)
    failed.refresh_from_db()
    assert (failed.step_count, failed.span_count, failed.span_error_count) == (6, 4, 4)
    assert per_step() == 0.75
    refresh_aggregates(ids)
    failed.refresh_from_db()
    assert (failed.step_count, failed.span_count, failed.span_error_count) == (6, 4, 4)
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/traces/{failed.pk}/")
    assert "6 (4 of them framework steps" in page.content.decode()


def test_a_week_from_the_first_of_a_month_is_compared_with_the_week_before():
    """ "Last 7 days" on the 7th of a month (and the default range then) runs from the
    1st: it was compared with the same days of the month before, a month back, and on
    those days the Overview's week-over-week trends read against the wrong week.
    Only "This month" (and the links from it) compares a month so far that way."""
    from datetime import date

    week = dash_filter(QueryDict("from=2026-11-01&to=2026-11-07"), default_days=7, agents=[])
    before = week.previous()
    assert (before.since, before.until) == (date(2026, 10, 25), date(2026, 10, 31))
    assert "vs=" not in week.query()
    month = dash_filter(QueryDict("from=2026-11-01&to=2026-11-07&vs=month"), default_days=7,
                        agents=[])  # fmt: skip
    before = month.previous()
    assert (before.since, before.until) == (date(2026, 10, 1), date(2026, 10, 7))
    assert "vs=month" in month.query()  # the links from "This month" keep comparing so
    # "vs=month" on a range that is no month so far is the range just before.
    other = dash_filter(QueryDict("from=2026-11-03&to=2026-11-09&vs=month"), default_days=7,
                        agents=[])  # fmt: skip
    assert other.previous().until == date(2026, 11, 2)


def test_the_filter_form_of_this_month_keeps_comparing_with_last_month(tenant):
    page = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/metrics/?period=month")
    assert '<input type="hidden" name="vs" value="month">' in page.content.decode()
    week = tenant.client_for(tenant.viewer).get(f"/w/{tenant.workspace.slug}/metrics/?period=7d")
    assert 'name="vs"' not in week.content.decode()
