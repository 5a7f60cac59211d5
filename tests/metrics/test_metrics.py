from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from failures.models import FailureMode, Incident, ModeDailyCount
from failures.services import failure_modes_refresh
from metrics import charts
from metrics.models import DailyRollup, SkillDailyRollup
from metrics.selectors import overview_get, skill_impact
from metrics.services import rollups_rebuild, rollups_refresh_for_traces
from metrics.stats import Rate, difference_within, verdict, verdict_within_agents, wilson
from skills.models import FetchLog, Skill, SkillVersion
from skills.review import skill_approve
from tests.factories import ingest, trace_payload
from traces.models import Trace


def test_wilson_matches_known_values():
    # Reference values (Wilson 1927; as computed by statsmodels proportion_confint(method="wilson")).
    low, high = wilson(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)
    assert wilson(0, 0) is None


def test_verdict_says_no_measurable_change_when_intervals_overlap():
    assert verdict(Rate(50, 100), Rate(55, 100)).startswith("No measurable change")
    assert "rose by 30 points" in verdict(Rate(50, 100), Rate(80, 100))
    assert verdict(Rate(0, 0), Rate(1, 2)).startswith("Not enough data")


def test_difference_within_is_the_wald_difference_for_one_stratum_and_weighs_strata():
    difference, low, high = difference_within([(Rate(24, 60), Rate(57, 60))])
    half = 1.959963984540054 * (0.4 * 0.6 / 60 + 0.95 * 0.05 / 60) ** 0.5
    assert difference == pytest.approx(0.55)
    assert (low, high) == (pytest.approx(0.55 - half), pytest.approx(0.55 + half))
    # The same +20 points in two agents of different success: +20 within, whatever
    # the mix; an agent with runs one way only weighs nothing.
    two = difference_within([(Rate(60, 100), Rate(80, 100)), (Rate(5, 50), Rate(15, 50)),
                             (Rate(0, 0), Rate(9, 10))])  # fmt: skip
    assert two is not None and two[0] == pytest.approx(0.2)
    assert difference_within([(Rate(0, 0), Rate(9, 10))]) is None


def test_a_difference_in_which_agents_ran_it_is_not_read_as_the_skills_effect():
    """Pooled, 78% with against 42% without; each agent alone, the same rate both
    ways: the agent that succeeds anyway is the one that used it."""
    strong = (Rate(9, 10), Rate(36, 40))  # (without, with)
    weak = (Rate(12, 40), Rate(3, 10))
    assert "rose by" in verdict(Rate(21, 50), Rate(39, 50))
    words = verdict_within_agents([strong, weak])
    assert words.startswith("No measurable change in success rate when each agent is compared")
    assert "(+0 points [−" in words  # a true minus sign
    helped = verdict_within_agents([(Rate(24, 40), Rate(38, 40)), (Rate(12, 40), Rate(30, 40))])
    assert helped.startswith("Success rate rose by") and "each agent against itself, +40" in helped


def test_success_figure_is_one_small_chart_per_agent_with_its_interval_band():
    series = {
        "a": [{"period": "2026-11-01", "succeeded": 8, "decided": 10, "traces": 12}],
        "b": [{"period": "2026-11-01", "succeeded": 1, "decided": 2, "traces": 2}],
        "silent": [{"period": "2026-11-01", "succeeded": 0, "decided": 0, "traces": 3}],
    }
    figure = charts.success_rate_figure(series, unit="week")
    layout = figure["layout"]
    assert layout["title"]["text"].startswith("Success rate per week")
    assert layout["grid"]["rows"] == 2  # an agent with no outcomes gets no empty chart
    lines = [t for t in figure["data"] if t.get("name")]
    assert [(t["name"], t["yaxis"]) for t in lines] == [("a", "y"), ("b", "y2")]
    assert lines[0]["y"] == [80.0] and "n=10" in lines[0]["text"][0]
    # The axis adds the "%" to the value (its ticksuffix): the hover adds none ("80%%").
    assert layout["yaxis"]["ticksuffix"] == "%" and "%{y}%" not in lines[0]["hovertemplate"]
    interval = figure["data"][0]["error_y"]  # one week: its interval as a bar
    assert interval["array"][0] > 0 and interval["arrayminus"][0] > 0
    two_weeks = {"a": [*series["a"], {**series["a"][0], "period": "2026-11-08"}]}
    figure = charts.success_rate_figure(two_weeks, unit="week")
    band_high, band_low = figure["data"][0], figure["data"][1]
    assert band_high["y"][0] > 80.0 > band_low["y"][0] and band_low["fill"] == "tonexty"
    volume = charts.volume_figure(series)
    assert volume["layout"]["yaxis"]["title"]["text"] == "traces"


def test_the_success_line_breaks_over_periods_without_outcomes():
    """Two weeks a year apart were joined by a line through 50 weeks of no data (an
    imported set read as a steady climb), under 56 crowded ticks with no year."""
    series = {"a": [
        {"period": "2025-11-10", "succeeded": 0, "decided": 1, "traces": 2},
        {"period": "2026-11-23", "succeeded": 5, "decided": 5, "traces": 5},
        {"period": "2026-11-30", "succeeded": 52, "decided": 53, "traces": 87},
    ]}  # fmt: skip
    figure = charts.success_rate_figure(series, unit="week")
    line = next(t for t in figure["data"] if t.get("name") == "a")
    assert line["x"] == ["2025-11-10", "2025-11-17", "2026-11-23", "2026-11-30"]
    assert line["y"] == [0.0, None, 100.0, 98.1]  # broken after the first week, joined after
    # The band is one pair of traces per stretch, never filled across the gap; a week
    # alone shows its interval as a bar.
    bands = [t for t in figure["data"] if not t.get("name")]
    assert [t["x"] for t in bands] == [["2025-11-10"]] + [["2026-11-23", "2026-11-30"]] * 2
    assert [t.get("fill") for t in bands] == [None, None, "tonexty"]
    alone = bands[0]["error_y"]
    assert alone["arrayminus"] == [0.0] and alone["array"][0] > 70  # 0 of 1: 0% to 79%
    axis = figure["layout"]["xaxis"]
    assert "dtick" not in axis and axis["tickformat"] == "%b %d, %Y"
    weeks = charts.success_rate_figure({"a": series["a"][1:]}, unit="week")["layout"]["xaxis"]
    assert weeks["dtick"] == 7 * charts.DAY_MS and weeks["tickformat"] == "%b %d"


def test_an_agent_keeps_its_colour_when_another_agent_appears():
    one = {"support-agent": [{"period": "2026-11-01", "succeeded": 1, "decided": 2, "traces": 2}]}
    two = {**one, "aaa-new-agent": one["support-agent"]}

    def colour(series, agent):
        return next(t["line"]["color"] for t in charts.success_rate_figure(series)["data"]
                    if t.get("name") == agent)  # fmt: skip

    assert colour(one, "support-agent") == colour(two, "support-agent")
    assert charts.agent_colour("support-agent") == colour(one, "support-agent")


def _traces(tenant, prefix, n, ok, *, skill=None, when=None, session=""):
    when = when or timezone.now() - timedelta(days=1)
    items = [
        {"external_id": f"{prefix}-{i}", "agent": "bot", "status": "succeeded" if i < ok else "failed",
         "started_at": (when + timedelta(minutes=i)).isoformat(), "session_id": session,
         "skills_in_scope": [skill] if skill else [],
         "steps": [{"kind": "tool_call", "name": "t", "error": "" if i < ok else "boom"}]}
        for i in range(n)
    ]  # fmt: skip
    ids = ingest(workspace=tenant.workspace, items=items).trace_ids
    rollups_refresh_for_traces(trace_ids=ids)  # the task ingest queues after commit
    return ids


@pytest.mark.django_db
def test_rollup_rebuilt_from_scratch_equals_the_incremental_one(tenant):
    FetchLog.objects.create(workspace=tenant.workspace, session_id="s9", endpoint="list",
                            skills=["fetched-skill@2"], agent="bot")  # fmt: skip
    ids = (
        _traces(tenant, "a", 10, 7, skill="reported-skill@1")
        + _traces(tenant, "b", 6, 2, when=timezone.now(), session="s9")
        + _traces(tenant, "c", 4, 1, when=timezone.now() - timedelta(days=2))
    )
    rollups_refresh_for_traces(trace_ids=ids)
    # Half the incidents join a mode through the same path clustering uses.
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="boom")
    chosen = list(Incident.objects.filter(workspace=tenant.workspace).values_list("id", flat=True))
    Incident.objects.filter(pk__in=chosen[::2]).update(failure_mode=mode)
    failure_modes_refresh(mode_ids=[mode.pk], relabel=False)

    def snapshot():
        return (
            sorted(DailyRollup.objects.values_list(
                "day", "agent", "traces", "succeeded", "failed", "unknown", "steps",
                "step_errors", "incidents")),
            sorted(SkillDailyRollup.objects.values_list(
                "day", "agent", "skill", "traces", "succeeded", "failed")),
            sorted(ModeDailyCount.objects.values_list(
                "failure_mode", "day", "agent", "incidents", "traces")),
        )  # fmt: skip

    incremental = snapshot()
    rollups_rebuild(workspace_id=tenant.workspace.pk)
    assert snapshot() == incremental
    daily, skills, modes = incremental
    assert sum(r[2] for r in daily) == 20 and sum(r[3] for r in daily) == 10
    assert sum(r[8] for r in daily) == 10  # one incident per failed trace
    # By skill over the days (a run of traces started near midnight UTC spans two).
    by_skill: dict[str, int] = {}
    for row in skills:
        by_skill[row[2]] = by_skill.get(row[2], 0) + row[3]
    assert by_skill == {"reported-skill": 10, "fetched-skill": 6}
    assert sum(r[3] for r in modes) == len(chosen[::2]) == 5


@pytest.mark.django_db
def test_the_overview_counts_causes_not_symptoms_weak_leads_or_recovered_errors(tenant, client):
    """Overview said "2,059 incidents (failures found)" for 687 failed InterCode runs:
    it counted every symptom and weak lead, where Failure modes said 687 had a cause."""
    ids = _traces(tenant, "k", 2, 1)
    ok, bad = Trace.objects.filter(pk__in=ids).order_by("external_id")

    def headline() -> int:
        rollups_refresh_for_traces(trace_ids=ids)
        return overview_get(workspace=tenant.workspace).incidents_7d

    before = headline()
    now = timezone.now()
    for step, (trace, kind) in enumerate([(bad, "symptom"), (bad, "weak"), (ok, "recovered")]):
        Incident.objects.create(workspace=tenant.workspace, trace=trace, step_index=10 + step,
                                kind=kind, signature=kind, occurred_at=now)  # fmt: skip
    assert headline() == before
    # A failed check of the outcome is the harness's verdict, what failed and not why:
    # InterCode's Overview then said "687 causes of failure found" where 684 were that.
    Incident.objects.create(workspace=tenant.workspace, trace=bad, step_index=-1,
                            kind="diagnosis", signature="check", occurred_at=now,
                            stats={"evidence": "check", "check": "db_match"})  # fmt: skip
    assert headline() == before
    Incident.objects.create(workspace=tenant.workspace, trace=bad, step_index=20,
                            kind="diagnosis", signature="cause", occurred_at=now)  # fmt: skip
    assert headline() == before + 1
    client.force_login(tenant.lead)
    page = client.get(reverse("overview", args=[tenant.workspace.slug])).content.decode()
    assert f'{before + 1}</div><div class="stat-label">cause' in page
    assert "failed checks of the outcome" in page


@pytest.mark.django_db
def test_the_overview_says_how_many_runs_only_their_arrival_dated(tenant, client):
    """InterCode's 1,763 results and 85 replayed Claude Code sessions carry no time:
    each is dated by its import, and the Overview read them as this week's runs
    without a word ("87 traces, Dec 1-7")."""
    from traces.claude_code import hook_ingest

    now = timezone.now().isoformat()
    bare = {k: v for k, v in trace_payload("no-time").items() if k != "started_at"}
    ingest(workspace=tenant.workspace, items=[trace_payload("timed", started_at=now), bare])
    # A live hook session starts when it arrives: that is its time, not a missing one.
    hook_ingest(workspace=tenant.workspace, event_id="live-1", payload={
        "session_id": "live", "hook_event_name": "UserPromptSubmit", "prompt": "go"})  # fmt: skip
    # The same session replayed from a log with no times is dated by its arrival.
    hook_ingest(workspace=tenant.workspace, event_id="replay-0123", payload={
        "session_id": "replayed", "hook_event_name": "UserPromptSubmit", "prompt": "go"})  # fmt: skip
    rollups_refresh_for_traces(trace_ids=list(
        Trace.objects.filter(workspace=tenant.workspace).values_list("pk", flat=True)))  # fmt: skip
    overview = overview_get(workspace=tenant.workspace)
    assert (overview.traces_7d, overview.undated_7d) == (4, 2)
    client.force_login(tenant.lead)
    page = client.get(reverse("overview", args=[tenant.workspace.slug])).content.decode()
    assert "2 of these dated by their arrival: nothing in them gave a time of their own" in page
    # The volume chart puts them on the day they arrived, and says so.
    page = client.get(reverse("metrics", args=[tenant.workspace.slug])).content.decode()
    assert "2 of the traces charted were dated by their arrival" in page


def _published(tenant, name="use-the-retry"):
    skill = Skill.objects.create(workspace=tenant.workspace, name=name)
    SkillVersion.objects.create(skill=skill, number=1, description="d", body="b", authorship="user")
    return skill_approve(skill=skill, number=1, actor=tenant.lead)


@pytest.mark.django_db
def test_impact_says_no_measurable_change_without_an_effect(tenant):
    skill = _published(tenant)
    later = timezone.now() + timedelta(hours=1)
    _traces(tenant, "with", 40, 20, skill="use-the-retry@1", when=later)
    _traces(tenant, "without", 40, 20, when=later)
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["with"].n, row["without"].n) == (40, 40)
    assert row["cohort_verdict"].startswith("No measurable change")


@pytest.mark.django_db
def test_impact_names_the_lift_with_an_effect_and_uses_the_fetch_log(tenant):
    skill = _published(tenant)
    later = timezone.now() + timedelta(hours=1)
    # These traces do not report the skill; the fetch log of their session does.
    FetchLog.objects.create(workspace=tenant.workspace, session_id="s1", endpoint="list",
                            skills=["use-the-retry@1"], agent="bot")  # fmt: skip
    _traces(tenant, "with", 60, 57, when=later, session="s1")
    _traces(tenant, "reported", 1, 1, skill="use-the-retry", when=later)
    _traces(tenant, "without", 60, 24, when=later)
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert row["with"].n == 61 and row["without"].n == 60
    assert "rose by" in row["cohort_verdict"]


def _agent_runs(tenant, prefix, agent, n, ok, *, skill=None, when=None):
    when = when or timezone.now() + timedelta(hours=1)
    items = [
        {"external_id": f"{prefix}-{i}", "agent": agent, "status": "succeeded" if i < ok else "failed",
         "started_at": (when + timedelta(minutes=i)).isoformat(),
         "skills_in_scope": [skill] if skill else [],
         "steps": [{"kind": "tool_call", "name": "t", "error": "" if i < ok else "boom"}]}
        for i in range(n)
    ]  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ingest(workspace=tenant.workspace, items=items).trace_ids)


@pytest.mark.django_db
def test_with_and_without_a_skill_is_compared_within_each_agent(tenant, client):
    """The strong agent used the skill most of the time, the weak one seldom; each
    succeeds as often with it as without. Pooled, the skill would read +36 points."""
    skill = _published(tenant)
    _agent_runs(tenant, "sw", "strong", 40, 36, skill="use-the-retry@1")
    _agent_runs(tenant, "so", "strong", 10, 9)
    _agent_runs(tenant, "ww", "weak", 10, 3, skill="use-the-retry@1")
    _agent_runs(tenant, "wo", "weak", 40, 12)
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["with"], row["without"]) == (Rate(39, 50), Rate(21, 50))
    assert row["cohort_agents"] == ["strong", "weak"]
    assert row["cohort_verdict"].startswith("No measurable change in success rate when each")
    client.force_login(tenant.lead)
    page = client.get(reverse("skill_impact", args=[tenant.workspace.slug, skill.pk]))
    assert "Counted: strong, weak (the agents with runs both ways)" in page.content.decode()


@pytest.mark.django_db
def test_agents_that_ran_a_skill_only_one_way_are_not_compared_with_each_other(tenant):
    # "never" tried the skill before it was published, not since.
    _agent_runs(tenant, "t", "never", 1, 1, skill="use-the-retry",
                when=timezone.now() - timedelta(days=2))  # fmt: skip
    skill = _published(tenant)
    _agent_runs(tenant, "a", "always", 40, 38, skill="use-the-retry@1")
    _agent_runs(tenant, "n", "never", 40, 10)
    _agent_runs(tenant, "b", "both", 20, 10, skill="use-the-retry@1")
    _agent_runs(tenant, "c", "both", 20, 10)
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["with"], row["without"]) == (Rate(10, 20), Rate(10, 20))
    assert row["cohort_agents"] == ["both"]
    assert row["cohort_verdict"].startswith("No measurable change")
    Trace.objects.filter(workspace=tenant.workspace, agent="both").delete()
    rollups_rebuild(workspace_id=tenant.workspace.pk)
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert row["cohort_verdict"].startswith("Not compared: no agent has runs both with and")


@pytest.mark.django_db
def test_before_and_after_windows_are_split_at_publication(tenant):
    _traces(tenant, "old", 30, 10, skill="use-the-retry", when=timezone.now() - timedelta(days=5))
    skill = _published(tenant)
    _traces(tenant, "new", 30, 28, skill="use-the-retry", when=timezone.now() + timedelta(hours=1))
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["before"].n, row["after"].n) == (30, 30)
    assert (row["before"].successes, row["after"].successes) == (10, 28)
    assert "rose by" in row["time_verdict"]


@pytest.mark.django_db
def test_success_before_and_after_publication_counts_agents_with_runs_in_both(tenant):
    """A strong agent that starts after publication is not the skill's doing."""
    earlier = timezone.now() - timedelta(days=3)
    _agent_runs(tenant, "o1", "old", 40, 20, skill="use-the-retry", when=earlier)
    skill = _published(tenant)
    _agent_runs(tenant, "o2", "old", 40, 20, skill="use-the-retry@1")
    _agent_runs(tenant, "n2", "new", 80, 78, skill="use-the-retry@1")
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["before"], row["after"]) == (Rate(20, 40), Rate(20, 40))
    assert row["time_agents"] == ["old"]
    assert row["time_verdict"].startswith("No measurable change")
    assert "rose by" in verdict(Rate(20, 40), Rate(98, 120))  # what pooling would say


@pytest.mark.django_db
def test_a_modes_share_before_and_after_publication_is_compared_within_agents(tenant):
    """Half of the old agent's runs hit the mode before and since; a new agent whose
    runs never hit it starts after publication. Pooled, the share would halve."""
    earlier = timezone.now() - timedelta(days=3)
    _agent_runs(tenant, "o1", "old", 20, 10, skill="use-the-retry", when=earlier)
    skill = _published(tenant)
    _agent_runs(tenant, "o2", "old", 20, 10, skill="use-the-retry@1")
    _agent_runs(tenant, "n2", "new", 40, 40, skill="use-the-retry@1")
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="boom")
    Incident.objects.filter(workspace=tenant.workspace).update(failure_mode=mode)
    failure_modes_refresh(mode_ids=[mode.pk], relabel=False)
    Skill.objects.filter(pk=skill.pk).update(source_mode=mode)
    skill.refresh_from_db()
    row = skill_impact(workspace=tenant.workspace, skill=skill)
    assert (row["mode_before"], row["mode_after"]) == (Rate(10, 20), Rate(10, 20))
    assert row["mode_agents"] == ["old"]
    assert row["mode_verdict"].startswith("No measurable change in recurrence")
    assert "fell by" in verdict(Rate(10, 20), Rate(10, 60), what="recurrence")  # pooled


@pytest.mark.django_db
def test_skills_published_the_same_day_to_the_same_agents_do_not_show_one_figure_as_each(
    tenant,
):
    """Success before vs since publication belongs to the agents, not the skill: two
    skills published the same day to the same agents would show the very same figure
    as each one's. It is shown for neither, and the page says why; their with/without
    cohorts differ and stay."""
    _traces(tenant, "old", 20, 10, when=timezone.now() - timedelta(days=5))
    first, second = _published(tenant, "use-the-retry"), _published(tenant, "check-the-cart")
    later = timezone.now() + timedelta(minutes=5)
    _traces(tenant, "a", 20, 18, skill="use-the-retry", when=later)
    _traces(tenant, "b", 20, 8, skill="check-the-cart", when=later)
    one, two = (skill_impact(workspace=tenant.workspace, skill=s) for s in (first, second))
    assert one["time_shared_with"] == ["check-the-cart"]
    assert two["time_shared_with"] == ["use-the-retry"]
    assert not one["shared_with"] and one["with"] != two["with"]
    page = tenant.client_for(tenant.viewer).get(reverse("metrics", args=[tenant.workspace.slug]))
    assert page.text.count("(published the same day), so not shown as this skill") == 2
    csv = (
        tenant.client_for(tenant.viewer)
        .get(reverse("impact_csv", args=[tenant.workspace.slug]))
        .text
    )
    assert "before/after success identical to check-the-cart, not shown" in csv
    skill_page = tenant.client_for(tenant.viewer).get(
        reverse("skill_impact", args=[tenant.workspace.slug, first.pk])
    )
    assert "published the same day to the same agents" in skill_page.text


@pytest.mark.django_db
def test_metrics_page_and_csv_access(tenant, other_tenant, anon):
    rollups_refresh_for_traces(trace_ids=_traces(tenant, "a", 5, 3))
    for name in ("metrics", "impact_csv", "compound_csv"):
        url = reverse(name, args=[tenant.workspace.slug])
        response = tenant.client_for(tenant.viewer).get(url)
        assert response.status_code == 200
        assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
        assert anon.get(url).status_code == 302
    csv_text = (
        tenant.client_for(tenant.viewer)
        .get(reverse("compound_csv", args=[tenant.workspace.slug]))
        .content.decode()
    )
    assert csv_text.splitlines()[1].startswith("bot,")
    page = (
        tenant.client_for(tenant.viewer)
        .get(reverse("metrics", args=[tenant.workspace.slug]))
        .content.decode()
    )
    assert "success-figure" in page and "Compound error" in page


@pytest.mark.django_db
def test_skill_page_impact_section_access(tenant, other_tenant, anon):
    skill = _published(tenant)
    _traces(tenant, "w", 5, 4, skill="use-the-retry", when=timezone.now() + timedelta(hours=1))
    url = reverse("skill_impact", args=[tenant.workspace.slug, skill.pk])
    html = (
        tenant.client_for(tenant.viewer).get(url, headers={"HX-Request": "true"}).content.decode()
    )
    assert "<h2>Impact</h2>" in html and "each agent against its own runs" in html
    assert other_tenant.client_for(other_tenant.admin).get(url).status_code == 404
    assert anon.get(url).status_code == 302
    page = tenant.client_for(tenant.viewer).get(
        reverse("skill_detail", args=[tenant.workspace.slug, skill.pk])
    )
    assert url.encode() in page.content


def test_csv_cells_cannot_become_formulas():
    from metrics.views import csv_cell

    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert [csv_cell(v) for v in ("+1+1", "-cmd", "@SUM(A1)", "\tx")] == [
        "'+1+1", "'-cmd", "'@SUM(A1)", "'\tx"]  # fmt: skip
    assert csv_cell("-12.5") == "-12.5" and csv_cell("checkout") == "checkout"
    assert csv_cell(3) == 3


@pytest.mark.django_db
def test_a_rebuild_recounts_imported_runs_of_last_year_and_keeps_purged_days(tenant):
    """Retention counts from arrival, so last year's imported runs stay: a rebuild
    recounts their days; a day whose runs were purged keeps what the rollup had."""
    from datetime import timedelta

    old = timezone.now() - timedelta(days=400)
    ids = ingest(workspace=tenant.workspace, items=[
        trace_payload("imported-1", started_at=old.isoformat(), status="failed"),
        trace_payload("imported-2", started_at=old.isoformat(), status="succeeded"),
    ]).trace_ids  # fmt: skip
    rollups_refresh_for_traces(trace_ids=ids)
    agent = "checkout-agent"
    purged = (old - timedelta(days=30)).date()
    DailyRollup.objects.create(workspace=tenant.workspace, day=purged, agent=agent, traces=7,
                               succeeded=3, failed=4)  # fmt: skip
    # A count gone stale (a rollup written by an older version, say).
    DailyRollup.objects.filter(day=old.date()).update(failed=9)
    rollups_rebuild(workspace_id=tenant.workspace.pk)
    assert sorted(DailyRollup.objects.values_list("day", "traces", "succeeded", "failed")) == [
        (purged, 7, 3, 4), (old.date(), 2, 1, 1)]  # fmt: skip


@pytest.mark.django_db
def test_the_impact_of_a_skill_of_a_mode_known_from_labels_counts_the_runs_like_them(
    tenant, other_tenant
):
    """A mode formed from a lead's labels gains a run only when someone labels it:
    the observational impact counts, before and since publication, its labelled
    runs and the failed runs like them (as its trial would), and says they are
    unconfirmed; a lead's "not the same failure" counts at once."""
    from failures import tasks
    from failures.models import CandidateState, LabelCandidate
    from failures.services import mode_daily_counts_refresh
    from metrics.models import SkillRunLikeness
    from metrics.services import skills_likeness_refresh
    from tests.failures.test_labels import _cancel, _label, _seat

    ws = tenant.workspace
    earlier = (timezone.now() - timedelta(days=3)).isoformat()
    old = [{**run, "started_at": earlier} for run in
           [_cancel(i) for i in range(4)] + [_seat(i) for i in range(3)]]  # fmt: skip
    ingest(workspace=ws, items=old)
    stored = {t.external_id: t for t in Trace.objects.filter(workspace=ws)}
    tasks.analyse_traces(ws.pk, [t.pk for t in stored.values()])
    label = _label(tenant, stored["cancel-0"])
    mode = FailureMode.objects.get(pk=label.failure_mode_id)
    skill = Skill.objects.create(workspace=ws, name="check-cancellation-rules", source_mode=mode)
    SkillVersion.objects.create(skill=skill, number=1, description="d", body="b",
                                authorship="user", source_mode=mode)  # fmt: skip
    skill = skill_approve(skill=skill, number=1, actor=tenant.lead)
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    new = [{**run, "started_at": later, "skills_in_scope": [skill.name]} for run in
           [_cancel(100 + i) for i in range(3)] + [_seat(100 + i) for i in range(2)]]  # fmt: skip
    ingest(workspace=ws, items=new)
    # Another workspace's cancellations under a skill of the same name count nowhere here.
    ingest(workspace=other_tenant.workspace,
           items=[{**_cancel(200), "started_at": later, "skills_in_scope": [skill.name]}])  # fmt: skip
    every = list(Trace.objects.filter(workspace=ws).values_list("pk", flat=True))
    tasks.analyse_traces(ws.pk, every)
    mode_daily_counts_refresh(workspace_id=ws.pk)
    rollups_refresh_for_traces(trace_ids=every)
    assert skills_likeness_refresh(workspace_id=ws.pk) == 1
    row = skill_impact(workspace=ws, skill=skill)
    assert row is not None and row["mode_measured"] and row["mode_by_likeness"]
    # Before: the labelled run and the three like it, of 7; since: the 3 cancellations of 5.
    assert (row["mode_before"].successes, row["mode_before"].n) == (4, 7)
    assert (row["mode_after"].successes, row["mode_after"].n) == (3, 5)
    assert "the failed runs like them (unconfirmed)" in row["mode_verdict"]
    assert not SkillRunLikeness.objects.filter(workspace=other_tenant.workspace).exists()
    LabelCandidate.objects.update_or_create(
        label=label, trace=Trace.objects.get(workspace=ws, external_id="cancel-100"),
        defaults={"workspace": ws, "step_index": 2, "score": 0.9,
                  "state": CandidateState.REJECTED},
    )  # fmt: skip
    assert skill_impact(workspace=ws, skill=skill)["mode_after"].successes == 2
    page = tenant.client_for(tenant.viewer).get(reverse("metrics", args=[ws.slug]))
    assert "runs like its labelled ones, unconfirmed" in page.text
    # Another mode's change compares nothing again; a change of this one, every run.
    some = SkillRunLikeness.objects.filter(skill=skill, like=True).first()
    SkillRunLikeness.objects.filter(pk=some.pk).update(like=False)
    skills_likeness_refresh(workspace_id=ws.pk, recheck=True, changed_modes=[mode.pk + 1000])
    assert not SkillRunLikeness.objects.get(pk=some.pk).like
    skills_likeness_refresh(workspace_id=ws.pk, recheck=True, changed_modes=[mode.pk])
    assert SkillRunLikeness.objects.get(skill=skill, trace_id=some.trace_id).like
    # Retired: its runs are no longer compared, and the page says so rather than
    # counting the labelled runs alone as the mode's.
    from skills.review import skill_retire

    skill_retire(skill=skill, reason="done", actor=tenant.lead)
    skills_likeness_refresh(workspace_id=ws.pk)
    assert not SkillRunLikeness.objects.filter(skill=skill).exists()
    row = skill_impact(workspace=ws, skill=Skill.objects.get(pk=skill.pk))
    assert not row["mode_measured"] and not row["mode_by_likeness"]
    assert row["mode_verdict"].startswith("Recurrence of its failure mode not measured since")


@pytest.mark.django_db
def test_pages_say_the_diagnosis_is_still_running_while_runs_wait_for_it(tenant, other_tenant):
    """Right after an import the causes found grow as the worker diagnoses: the
    Overview and Failure modes say how many runs still wait, at least (a run whose
    task has not started is not queued yet), so a count so far is not read as
    final. Another workspace's waiting runs are not this one's."""
    from failures.models import PendingAnalysis

    ids = _traces(tenant, "w", 3, 1, when=timezone.now())
    other = ingest(workspace=other_tenant.workspace, items=[trace_payload("o-1")]).trace_ids
    viewer = tenant.client_for(tenant.viewer)
    overview = reverse("overview", args=[tenant.workspace.slug])
    modes = reverse("mode_list", args=[tenant.workspace.slug])
    assert "Still diagnosing" not in viewer.get(overview).text
    PendingAnalysis.objects.create(trace_id=other[0], workspace=other_tenant.workspace)
    assert "Still diagnosing" not in viewer.get(overview).text
    for trace_id in ids[1:]:
        PendingAnalysis.objects.create(trace_id=trace_id, workspace=tenant.workspace)
    assert "Still diagnosing: at least 2 runs waiting" in viewer.get(overview).text
    page = viewer.get(modes).text
    assert 'id="still-diagnosing"' in page and "at least 2 runs waiting for the diagnosis" in page


@pytest.mark.django_db
def test_the_causes_found_are_recounted_once_the_runs_are_diagnosed(tenant):
    """The ingest recounts its runs' days at once, before the worker diagnoses them;
    after a large import the worker finishes long after, and the periodic sweep
    only looks back 10 minutes: the Overview read 415 causes where 687 were found.
    Each diagnosed chunk recounts its runs."""
    from failures import tasks
    from traces.services import trace_ingest_batch

    items = [trace_payload(f"late-{i}", status="failed",
                           steps=[{"kind": "tool_call", "name": "pay", "error": "boom"}])
             for i in range(4)] + [trace_payload(f"ok-{i}") for i in range(8)]  # fmt: skip
    ids = trace_ingest_batch(workspace=tenant.workspace, items=items).trace_ids
    rollups_refresh_for_traces(trace_ids=ids)  # what the ingest queued, run first

    def causes_counted() -> int:
        return sum(DailyRollup.objects.filter(workspace=tenant.workspace)
                   .values_list("incidents", flat=True))  # fmt: skip

    assert causes_counted() == 0
    tasks.analyse_traces(tenant.workspace.pk, ids)
    found = (
        Incident.objects.filter(workspace=tenant.workspace)
        .exclude(kind__in=["recovered", "symptom", "weak"]).count()
    )  # fmt: skip
    assert found > 0 and causes_counted() == found


@pytest.mark.django_db
def test_the_rollups_sweep_recounts_runs_diagnosed_again_since(tenant):
    """A run diagnosed again long after it was stored (a new baseline, a label) gets
    new incidents with no recount of its own: the sweep finds it by its analysis."""
    from failures.models import TraceAnalysis
    from metrics.models import SweepMark as Mark
    from metrics.services import rollups_sweep

    ids = _traces(tenant, "old", 3, 0, when=timezone.now() - timedelta(days=2))
    Trace.objects.filter(pk__in=ids).update(updated_at=timezone.now() - timedelta(days=1))
    TraceAnalysis.objects.filter(trace_id__in=ids).update(
        analysed_at=timezone.now() - timedelta(days=1)
    )
    Mark.objects.update_or_create(name="rollups", defaults={"watermark": timezone.now()})
    before = sum(DailyRollup.objects.filter(workspace=tenant.workspace)
                 .values_list("incidents", flat=True))  # fmt: skip
    Incident.objects.create(workspace=tenant.workspace, trace_id=ids[0], step_index=7,
                            kind="diagnosis", signature="late", occurred_at=timezone.now())  # fmt: skip
    TraceAnalysis.objects.filter(trace_id=ids[0]).update(analysed_at=timezone.now())
    assert rollups_sweep() == 1
    after = sum(DailyRollup.objects.filter(workspace=tenant.workspace)
                .values_list("incidents", flat=True))  # fmt: skip
    assert after == before + 1
