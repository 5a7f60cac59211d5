"""Metrics and Overview answer a PM: filters in the URL, CSV of the charts'
series, trends in words, the review queue, new modes."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from failures.models import FailureMode
from metrics.selectors import Trend, agent_trends
from metrics.services import rollups_refresh_for_traces
from metrics.stats import Rate
from skills.models import Skill, SkillVersion
from tests.factories import ingest


def _traces(tenant, agent, n, ok, days_ago):
    when = timezone.now() - timedelta(days=days_ago)
    items = [{"external_id": f"{agent}-{days_ago}-{i}", "agent": agent,
              "status": "succeeded" if i < ok else "failed",
              "started_at": (when + timedelta(seconds=i)).isoformat(),
              "steps": [{"kind": "tool_call", "name": "t"}]} for i in range(n)]  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ingest(workspace=tenant.workspace, items=items).trace_ids)


@pytest.fixture
def data(tenant):
    _traces(tenant, "support-agent", 40, 36, days_ago=1)
    _traces(tenant, "support-agent", 40, 20, days_ago=9)
    _traces(tenant, "checkout-agent", 10, 5, days_ago=2)
    _traces(tenant, "checkout-agent", 10, 5, days_ago=40)
    return tenant


def test_trend_words_follow_the_interval_rule():
    same = Trend("support-agent", Rate(84, 100), Rate(86, 100))
    assert same.words == "support-agent: 84% this week, 86% last week, no measurable change"
    better = Trend("a", Rate(90, 100), Rate(50, 100))
    assert better.words.endswith("better")
    assert Trend("a", Rate(1, 1), Rate(0, 0)).words.endswith("too few outcomes to compare")


def test_trend_words_say_how_many_outcomes_were_read_from_sessions():
    some = Trend("claude-code", Rate(40, 52), Rate(30, 40), inferred=12)
    assert some.words.endswith(
        "no measurable change (12 of 52 outcomes this week read from its sessions, not reported)"
    )
    every = Trend("claude-code", Rate(40, 52), Rate(30, 40), inferred=52)
    assert every.words.endswith("(all 52 outcomes this week read from its sessions, not reported)")
    assert "read from" not in Trend("claude-code", Rate(40, 52), Rate(30, 40)).words


@pytest.mark.django_db
def test_metrics_filtered_by_agent_and_range_and_its_csv(data):
    client = data.client_for(data.viewer)
    today = timezone.now().date()
    query = f"agent=checkout-agent&from={today - timedelta(days=7)}&to={today}&by=day"
    page = client.get(f"/w/acme/metrics/?{query}")
    assert page.status_code == 200
    assert b"Showing" in page.content and b"checkout-agent" in page.content
    assert b"support-agent:" not in page.content  # the trend is the filtered agent's only
    rows = list(
        csv.reader(io.StringIO(client.get(f"/w/acme/metrics/series.csv?{query}").content.decode()))
    )
    assert rows[0][:5] == ["day_starting_utc", "agent", "traces", "succeeded", "failed"]
    assert {r[1] for r in rows[1:]} == {"checkout-agent"}
    assert sum(int(r[2]) for r in rows[1:]) == 10  # the one 40 days ago is outside the range
    everyone = list(
        csv.reader(io.StringIO(client.get("/w/acme/metrics/series.csv").content.decode()))
    )
    assert sum(int(r[2]) for r in everyone[1:]) == 100
    assert {r[1] for r in everyone[1:]} == {"support-agent", "checkout-agent"}


@pytest.mark.django_db
def test_bad_filters_are_explained_not_refused(data):
    client = data.client_for(data.viewer)
    page = client.get("/w/acme/metrics/?from=2026-13-01&to=yesterday&agent=nobody")
    assert page.status_code == 200
    text = page.content.decode()
    assert "is not a date" in text and "No agent named" in text
    swapped = client.get("/w/acme/?from=2026-11-20&to=2026-11-01")
    assert swapped.status_code == 200 and "were swapped" in swapped.content.decode()


@pytest.mark.django_db
def test_empty_range_says_what_to_do(data):
    page = data.client_for(data.viewer).get("/w/acme/metrics/?from=2020-01-01&to=2020-01-31")
    assert b"No traces" in page.content and b"Widen the date range" in page.content
    assert b"plotly" not in page.content  # no chart library for no chart


@pytest.mark.django_db
def test_overview_shows_queue_week_over_week_trends_and_new_modes(data):
    skill = Skill.objects.create(workspace=data.workspace, name="proposed-one")
    SkillVersion.objects.create(skill=skill, number=1, description="d", body="## Do\nx",
                                authorship="offline")  # fmt: skip
    FailureMode.objects.create(workspace=data.workspace, label="brand new mode", incident_count=3,
                               trace_count=3, first_seen=timezone.now())  # fmt: skip
    page = data.client_for(data.viewer).get("/w/acme/")
    text = page.content.decode()
    assert "proposed skill awaiting review" in text
    assert 'class="nav-badge"' in text  # the badge beside Skills
    assert "the range before" in text
    # The week's success rate with its 95% interval: a week's runs are a sample.
    from metrics.selectors import overview_get
    from metrics.stats import wilson

    week = overview_get(workspace=data.workspace)
    low, high = wilson(week.succeeded_7d, week.succeeded_7d + week.failed_7d)
    assert f"success rate, 95% interval {round(100 * low)}–{round(100 * high)}% (" in text
    assert week.succeeded_7d + week.failed_7d > 0
    # "0 of 126" alone read as "none had an outcome": it says which were counted.
    known = week.succeeded_7d + week.failed_7d
    assert f"({week.succeeded_7d} succeeded of {known} with a known outcome" in text
    assert "support-agent: 90% this week, 50% last week, better" in text
    assert "brand new mode" in text
    # A mode a re-cluster emptied is on no other page: not new here either.
    FailureMode.objects.create(workspace=data.workspace, label="emptied new mode",
                               incident_count=0, trace_count=0, first_seen=timezone.now())  # fmt: skip
    assert "emptied new mode" not in data.client_for(data.viewer).get("/w/acme/").content.decode()
    # Two modes whose names differ after 80 characters (InterCode's) read as two, and
    # a backticked name is code, not backticks.
    shared = "`files and output` failed: the files or the output only partly matched the expected command's"
    for label in (shared, shared + "; its last answer scored lower than an earlier one"):
        FailureMode.objects.create(workspace=data.workspace, label=label, incident_count=3,
                                   trace_count=3, first_seen=timezone.now())  # fmt: skip
    text = data.client_for(data.viewer).get("/w/acme/").content.decode()
    named = "<code>files and output</code> failed: the files or the output only partly matched"
    assert text.count(named) == 2 and "`files and output`" not in text
    assert "its last answer scored lower than an earlier one</a>" in text
    # Runs whose ids share a long prefix read as different runs (cut in the middle).
    ingest(workspace=data.workspace, items=[
        {"external_id": f"intercode-ic_ctf_multiturn_gpt-4_10_turns-{n}", "status": "failed",
         "steps": [{"kind": "tool_call", "name": "t"}]} for n in (14, 25)])  # fmt: skip
    text = data.client_for(data.viewer).get("/w/acme/").content.decode()
    assert "intercode-ic_ct…-4_10_turns-14" in text and "intercode-ic_ct…-4_10_turns-25" in text
    trends = agent_trends(workspace=data.workspace, until=timezone.now().date())
    assert [t.agent for t in trends] == ["checkout-agent", "support-agent"]


@pytest.mark.django_db
def test_dashboard_access(data, other_tenant, anon):
    for url in ("/w/acme/", "/w/acme/metrics/", "/w/acme/metrics/series.csv"):
        assert anon.get(url).status_code == 302
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
        assert data.client_for(data.viewer).get(url).status_code == 200


@pytest.mark.django_db
def test_the_overviews_failed_traces_are_those_of_the_days_it_counts(data):
    """A failed run from before the range is not listed under figures that say the
    range had none (an imported Claude Code set: "100%" above three failures of July)."""
    client = data.client_for(data.viewer)
    today = timezone.now().date()
    text = client.get(f"/w/acme/?from={today - timedelta(days=6)}&to={today}").content.decode()
    assert "support-agent-1-39" in text  # failed yesterday
    assert "checkout-agent-40-9" not in text  # failed 40 days ago
    assert f"period=custom&amp;start={today - timedelta(days=6)}&amp;end={today}" in text
    long_ago = today - timedelta(days=40)
    text = client.get(f"/w/acme/?from={long_ago}&to={long_ago}").content.decode()
    assert "checkout-agent-40-9" in text and "support-agent-1-39" not in text
    text = client.get(f"/w/acme/?from={today - timedelta(days=30)}&to={today - timedelta(days=20)}")
    assert "No failed trace started between" in text.content.decode()


def test_a_range_names_its_years_when_they_are_not_this_one():
    from datetime import date

    from metrics.filters import DashFilter, span_words

    this = timezone.now().year
    assert span_words(date(this, 11, 29), date(this, 12, 5)) == "Nov 29 – Dec 5"
    assert (
        span_words(date(this - 1, 9, 27), date(this - 1, 10, 31)) == f"Sep 27 – Oct 31, {this - 1}"
    )
    assert (
        span_words(date(this - 1, 11, 1), date(this, 12, 5)) == f"Nov 1, {this - 1} – Dec 5, {this}"
    )
    assert span_words(date(this, 12, 1), date(this, 12, 3), year=True) == f"Dec 1–3, {this}"
    assert DashFilter(date(this - 1, 11, 1), date(this, 12, 5)).between == (
        f"between Nov 1, {this - 1} and Dec 5, {this}"
    )
    assert DashFilter(date(this, 12, 1), date(this, 12, 5)).between == "between Dec 1 and Dec 5"
    assert DashFilter(date(this, 12, 5), date(this, 12, 5)).between == "on Dec 5"


@pytest.mark.django_db
def test_the_overview_over_two_years_says_which(data):
    today = timezone.now().date()
    start = today - timedelta(days=399)
    text = data.client_for(data.viewer).get(f"/w/acme/?from={start}&to={today}").content.decode()
    assert start.year != today.year  # 400 days always reach into the year before
    assert f"{start:%b %-d, %Y} – {today:%b %-d, %Y}" in text
    assert "The 7 days up to" not in text  # the footnote no longer says 7 days of any range
    # The range before's rate says how many runs it is of (the 7 days before the last 7
    # hold support-agent's 20 successes in 40 runs of 9 days ago).
    week = data.client_for(data.viewer).get("/w/acme/?period=7d").content.decode()
    assert "before: 50% (20 succeeded of 40)" in week


def test_a_runs_time_names_its_year_when_it_is_not_this_one():
    from datetime import UTC, datetime

    from traces.templatetags.trace_tags import when

    this = timezone.now().year
    assert when(datetime(this, 1, 5, 9, 56, tzinfo=UTC)) == "Jan 5, 09:56 UTC"
    assert when(datetime(this - 1, 11, 16, 9, 56, tzinfo=UTC)) == f"Nov 16, {this - 1}, 09:56 UTC"
    assert when(None) == ""


def test_a_time_under_a_minute_ago_is_just_now_not_0_minutes_ago():
    from traces.templatetags.trace_tags import ago

    now = timezone.now()
    assert ago(now - timedelta(seconds=20)) == "just now"
    assert ago(now + timedelta(seconds=5)) == "just now"  # a clock a little ahead
    assert ago(now - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"
    assert ago(None) == ""


@pytest.mark.django_db
def test_a_modes_days_name_their_year_when_it_is_not_this_one(data):
    from datetime import UTC, datetime

    from traces.templatetags.trace_tags import day

    this = timezone.now().year
    assert day(datetime(this, 8, 1, 12, tzinfo=UTC)) == "Aug 1"
    assert day(datetime(this - 1, 8, 1, 12, tzinfo=UTC)) == f"Aug 1, {this - 1}"
    assert day(None) == ""
    # Imported runs of a year ago: the failure-modes list dates their mode with the year.
    old = datetime(this - 1, 8, 1, 12, tzinfo=UTC)
    FailureMode.objects.create(workspace=data.workspace, label="old mode", incident_count=3,
                               trace_count=3, first_seen=old, last_seen=old)  # fmt: skip
    text = data.client_for(data.viewer).get("/w/acme/failure-modes/").content.decode()
    assert f"Aug 1, {this - 1} – Aug 1, {this - 1}" in text
