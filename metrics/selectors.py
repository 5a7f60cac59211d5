"""Reads for the PM-facing pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from failures.models import FailureMode, ModeStatus
from failures.selectors import modes_known_only_from_labels
from skills.models import FetchLog, Skill, SkillStatus, Trial
from skills.selectors import published_skill_list, skill_source_modes
from skills.trials import (
    HELPS,
    HOLDOUT,
    HURTS,
    NO_CHANGE,
    TOO_FEW,
    TREATED,
    ArmDay,
    Effect,
    effect,
    t_star,
)
from skills.trials import verdict as trial_verdict
from traces.models import Trace
from workspaces.models import ApiKey, AuditEvent, Workspace

from .filters import span_words
from .models import DailyRollup, SkillDailyRollup, Snapshot, TrialDailyRollup
from .stats import Rate, verdict_within_agents


@dataclass(frozen=True)
class Overview:
    api_keys: int
    traces: int
    traces_7d: int
    succeeded_7d: int
    failed_7d: int
    incidents_7d: int
    # Of succeeded_7d + failed_7d: read from hook sessions, not reported.
    inferred_7d: int
    # Of traces_7d: dated by their arrival, nothing in them giving a time.
    undated_7d: int
    agents: int

    @property
    def success_rate_7d(self) -> float | None:
        decided = self.succeeded_7d + self.failed_7d
        return self.succeeded_7d / decided if decided else None


def overview_get(
    *,
    workspace: Workspace,
    since: date | None = None,
    until: date | None = None,
    agent: str = "",
) -> Overview:
    """Headline counts for the workspace's overview page (from the rollups): the
    period `since`..`until` (default: today and the six days before, in UTC), one
    agent or all; `traces` counts every day up to `until`."""
    until = until or timezone.now().date()
    since = since or until - timedelta(days=6)
    recent = Q(day__gte=since)
    qs = DailyRollup.objects.filter(workspace=workspace, day__lte=until)
    if agent:
        qs = qs.filter(agent=agent)
    counts = qs.aggregate(
        total=Sum("traces"),
        recent=Sum("traces", filter=recent),
        ok=Sum("succeeded", filter=recent),
        bad=Sum("failed", filter=recent),
        inferred=Sum("inferred", filter=recent),
        undated=Sum("undated", filter=recent),
        incidents=Sum("incidents", filter=recent),
        agents=Count("agent", distinct=True),
    )
    return Overview(
        api_keys=ApiKey.objects.filter(workspace=workspace, revoked_at=None).count(),
        traces=counts["total"] or 0,
        traces_7d=counts["recent"] or 0,
        succeeded_7d=counts["ok"] or 0,
        failed_7d=counts["bad"] or 0,
        incidents_7d=counts["incidents"] or 0,
        inferred_7d=counts["inferred"] or 0,
        undated_7d=counts["undated"] or 0,
        agents=counts["agents"],
    )


def undated_count(*, workspace: Workspace, since: date, until: date, agent: str = "") -> int:
    """Runs of the days `since`..`until` (one agent or all) that no time of their own
    dated: they sit on the day they arrived (`services.UNDATED`)."""
    qs = DailyRollup.objects.filter(workspace=workspace, day__gte=since, day__lte=until)
    if agent:
        qs = qs.filter(agent=agent)
    return qs.aggregate(n=Sum("undated"))["n"] or 0


def review_queue_count(*, workspace: Workspace) -> int:
    """Proposed skills waiting for a lead."""
    return Skill.objects.filter(workspace=workspace, status=SkillStatus.PROPOSED).count()


def modes_new(*, workspace: Workspace, since: date, until: date) -> list[FailureMode]:
    """Failure modes first seen in the period (merged ones, and ones a re-cluster
    emptied, excluded: neither is on the Failure modes page)."""
    return list(
        FailureMode.objects.filter(workspace=workspace, first_seen__date__gte=since,
                                   first_seen__date__lte=until, incident_count__gt=0)
        .exclude(status=ModeStatus.MERGED)
        .order_by("-first_seen")[:10]
    )  # fmt: skip


def recent_failed_traces(
    *, workspace: Workspace, since: date, until: date, agent: str = "", limit: int = 8
) -> list[Trace]:
    """The newest failed runs started on the days `since`..`until` (UTC), the days
    the Overview's figures count: a run from before the range is not one of them."""
    qs = Trace.objects.filter(
        workspace=workspace, status="failed",
        started_at__gte=datetime.combine(since, time.min, tzinfo=UTC),
        started_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
    )  # fmt: skip
    if agent:
        qs = qs.filter(agent=agent)
    return list(qs.order_by("-started_at")[:limit])


# --- metrics page --------------------------------------------------------------------


def success_by_period(
    *, workspace: Workspace, since: date, until: date, agent: str = "", week: bool = False
) -> dict[str, list[dict]]:
    """Per agent: [{period, succeeded, decided, traces, inferred}] from the rollups,
    days `since` to `until` (UTC), one agent or all; `inferred` of `decided` were
    read from hook sessions, not reported."""
    qs = DailyRollup.objects.filter(workspace=workspace, day__gte=since, day__lte=until)
    if agent:
        qs = qs.filter(agent=agent)
    period = TruncWeek("day") if week else F("day")
    rows = (
        qs.annotate(period=period)
        .values("agent", "period")
        .annotate(ok=Sum("succeeded"), bad=Sum("failed"), n=Sum("traces"), read=Sum("inferred"))
        .order_by("agent", "period")
    )
    series: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        series[row["agent"] or "(no agent)"].append({
            "period": row["period"], "succeeded": row["ok"], "decided": row["ok"] + row["bad"],
            "traces": row["n"], "inferred": row["read"],
        })  # fmt: skip
    return dict(series)


@dataclass(frozen=True)
class Trend:
    agent: str
    this_week: Rate  # the chosen range
    last_week: Rate  # the range of the same length just before it
    now_label: str = "this week"
    before_label: str = "last week"
    inferred: int = 0  # of this_week's outcomes, read from hook sessions

    @property
    def words(self) -> str:
        """ "support-agent: 84% this week, 86% last week, no measurable change"."""

        def pct(rate: Rate) -> str:
            return "no outcomes" if rate.value is None else f"{rate.value * 100:.0f}%"

        a, b = self.last_week.interval, self.this_week.interval
        if a is None or b is None:
            change = "too few outcomes to compare"
        elif a[1] >= b[0] and b[1] >= a[0]:
            change = "no measurable change"
        else:
            assert self.this_week.value is not None and self.last_week.value is not None
            change = "better" if self.this_week.value > self.last_week.value else "worse"
        read, n = "", self.this_week.n
        if self.inferred:
            which = ("its one outcome" if n == 1 else f"all {n} outcomes" if self.inferred == n
                     else f"{self.inferred} of {n} outcomes")  # fmt: skip
            read = f" ({which} {self.now_label} read from its sessions, not reported)"
        return (f"{self.agent}: {pct(self.this_week)} {self.now_label}, {pct(self.last_week)} "
                f"{self.before_label}, {change}{read}")  # fmt: skip


def agent_trends(
    *,
    workspace: Workspace,
    until: date,
    agent: str = "",
    since: date | None = None,
    before: tuple[date, date] | None = None,
) -> list[Trend]:
    """Each agent's success in the range `since`..`until` (default: the 7 days ending
    `until`) against `before` (default: the range of the same length just before
    it), read with the same rule as everywhere: overlapping 95% intervals are no
    change."""
    since = since or until - timedelta(days=6)
    before_since, before_until = before or (
        since - timedelta(days=(until - since).days + 1),
        since - timedelta(days=1),
    )
    weekly = (
        (until - since).days == 6
        and (before_since, before_until) == (since - timedelta(days=7), since - timedelta(days=1))
        and until == timezone.now().date()
    )
    now_label = "this week" if weekly else f"in {span_words(since, until)}"
    before_label = "last week" if weekly else f"in {span_words(before_since, before_until)}"
    qs = DailyRollup.objects.filter(workspace=workspace, day__gte=before_since, day__lte=until)
    if agent:
        qs = qs.filter(agent=agent)
    now = Q(day__gte=since, day__lte=until)
    earlier = Q(day__gte=before_since, day__lte=before_until)
    rows = qs.values("agent").annotate(
        ok=Sum("succeeded", filter=now), bad=Sum("failed", filter=now),
        ok0=Sum("succeeded", filter=earlier), bad0=Sum("failed", filter=earlier),
        read=Sum("inferred", filter=now),
    ).order_by("agent")  # fmt: skip
    return [
        Trend(agent=r["agent"] or "(no agent)",
              this_week=Rate(r["ok"] or 0, (r["ok"] or 0) + (r["bad"] or 0)),
              last_week=Rate(r["ok0"] or 0, (r["ok0"] or 0) + (r["bad0"] or 0)),
              now_label=now_label, before_label=before_label, inferred=r["read"] or 0)
        for r in rows
    ]  # fmt: skip


def agents_by_first_seen(*, workspace: Workspace) -> list[str]:
    """The workspace's agents in the order they first sent traces (then by name)."""
    return [
        row["agent"] or "(no agent)"
        for row in DailyRollup.objects.filter(workspace=workspace)
        .values("agent").annotate(first=Min("day")).order_by("first", "agent")
    ]  # fmt: skip


def last_active_day(*, workspace: Workspace) -> date | None:
    """The last day any trace of the workspace started (the rollups)."""
    return (
        DailyRollup.objects.filter(workspace=workspace)
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )


def agent_list(*, workspace: Workspace) -> list[str]:
    """The agents that have sent traces (from the rollups: a small table)."""
    return list(
        DailyRollup.objects.filter(workspace=workspace)
        .exclude(agent="")
        .values_list("agent", flat=True)
        .distinct()
        .order_by("agent")
    )


def compound_by_agent(
    *,
    workspace: Workspace,
    days: int = 30,
    agent: str = "",
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """Per-step success beside end-to-end success, and what the first predicts, over
    `since`..`until` (default: the last `days` days). An agent whose failed runs
    carry no step error reports no per-step validity: its per-step success and
    prediction are None ("n/a"), not 100%."""
    until = until or timezone.now().date()
    since = since or until - timedelta(days=days - 1)
    qs = DailyRollup.objects.filter(workspace=workspace, day__gte=since, day__lte=until)
    if agent:
        qs = qs.filter(agent=agent)
    rows = (
        qs.values("agent")
        .annotate(
            steps=Sum("steps"),
            errors=Sum("step_errors"),
            n=Sum("traces"),
            ok=Sum("succeeded"),
            bad=Sum("failed"),
        )  # fmt: skip
        .order_by("agent")
    )
    result = []
    for row in rows:
        if not row["steps"] or not row["n"]:
            continue
        typical = row["steps"] / row["n"]
        end_to_end = Rate(row["ok"], row["ok"] + row["bad"])
        measured = row["errors"] > 0 or not row["bad"]
        per_step = 1 - row["errors"] / row["steps"] if measured else None
        result.append({
            "agent": row["agent"], "per_step": per_step, "typical_steps": typical,
            "predicted": per_step ** typical if per_step is not None else None,
            "end_to_end": end_to_end,
        })  # fmt: skip
    return result


_IMPACT_SQL = """
    WITH p(skill, day, mode_id) AS (SELECT * FROM unnest(%(names)s::text[], %(days)s::date[],
                                                           %(modes)s::bigint[])),
    a AS (SELECT DISTINCT skill, agent FROM metrics_skilldailyrollup
          WHERE workspace_id = %(ws)s AND skill = ANY(%(names)s)),
    totals AS (
        SELECT p.skill, a.agent, d.day >= p.day AS after, sum(d.succeeded) AS ok,
               sum(d.failed) AS bad, sum(d.traces) AS n
        FROM p JOIN a ON a.skill = p.skill
        JOIN metrics_dailyrollup d ON d.workspace_id = %(ws)s AND d.agent = a.agent
             AND d.day >= p.day - %(window)s
        GROUP BY 1, 2, 3
    ), cohort AS (
        SELECT p.skill, s.agent, sum(s.succeeded) AS ok, sum(s.failed) AS bad
        FROM p JOIN metrics_skilldailyrollup s ON s.workspace_id = %(ws)s AND s.skill = p.skill
             AND s.day >= p.day
        GROUP BY 1, 2
    ), hits AS (
        SELECT p.skill, a.agent, m.day >= p.day AS after, sum(m.traces) AS n
        FROM p JOIN a ON a.skill = p.skill
        JOIN failures_modedailycount m ON m.failure_mode_id = p.mode_id AND m.agent = a.agent
             AND m.day >= p.day - %(window)s
        GROUP BY 1, 2, 3
    ), likes AS (
        -- A mode of labelled runs only: the failed runs like its labelled ones
        -- (metrics_skillrunlikeness, kept for such skills alone; people's labelled
        -- runs are never among them), unless a lead said "not the same failure".
        SELECT p.skill, t.agent, (t.started_at AT TIME ZONE 'UTC')::date >= p.day AS after,
               count(*) AS n
        FROM p JOIN skills_skill k ON k.workspace_id = %(ws)s AND k.name = p.skill
        JOIN metrics_skillrunlikeness l ON l.skill_id = k.id AND l.like
        JOIN traces_trace t ON t.id = l.trace_id
             AND (t.started_at AT TIME ZONE 'UTC')::date >= p.day - %(window)s
        JOIN a ON a.skill = p.skill AND a.agent = t.agent
        WHERE NOT EXISTS (SELECT 1 FROM failures_labelcandidate c
                          JOIN failures_runlabel r ON r.id = c.label_id
                          WHERE c.trace_id = t.id AND c.state = 'rejected'
                            AND r.failure_mode_id = p.mode_id)
        GROUP BY 1, 2, 3
    )
    SELECT 'total', skill, agent, after, ok, bad, n FROM totals
    UNION ALL SELECT 'cohort', skill, agent, TRUE, ok, bad, 0 FROM cohort
    UNION ALL SELECT 'hits', skill, agent, after, 0, 0, n FROM hits
    UNION ALL SELECT 'likes', skill, agent, after, 0, 0, n FROM likes
"""

# Days before a skill's publication its impact compares with (and after which runs
# like a labels-only mode's labelled ones are kept: metrics.services).
IMPACT_WINDOW_DAYS = 30


def skill_publication_times(*, workspace_id: int, skills: list[Skill]) -> dict[int, datetime]:
    """When each skill was first approved (published), by skill id; a skill never
    approved is not in it."""
    first_approval = dict(
        AuditEvent.objects.filter(
            workspace_id=workspace_id,
            object_type="Skill",
            action="skill.approve",
            object_id__in=[str(s.pk) for s in skills],
        )  # fmt: skip
        .values("object_id")
        .annotate(at=Min("created_at"))
        .values_list("object_id", "at")
    )
    return {s.pk: first_approval[str(s.pk)] for s in skills if str(s.pk) in first_approval}


def skill_impacts(
    *, workspace: Workspace, skills: list[Skill], window_days: int = IMPACT_WINDOW_DAYS
) -> dict[int, dict]:
    """Per skill: with vs without it (same agents, since publication) and before vs
    after publication, from the rollups in one query for all skills. Days are UTC
    days; the publication day counts as "after". Skills never published are left out.
    A skill whose failure mode holds only labelled runs counts, as the mode's, its
    labelled runs and the failed runs like them (unconfirmed; `by_likeness`)."""
    times = skill_publication_times(workspace_id=workspace.pk, skills=skills)
    published = [(s, times[s.pk]) for s in skills if s.pk in times]
    if not published:
        return {}
    agents: dict[str, list[str]] = defaultdict(list)
    for name, agent in (
        SkillDailyRollup.objects.filter(
            workspace=workspace, skill__in=[s.name for s, _ in published]
        )
        .values_list("skill", "agent")
        .distinct()
        .order_by("skill", "agent")
    ):
        agents[name].append(agent)
    # (kind, skill, after) -> agent -> (succeeded, failed, runs)
    by_agent: dict[tuple[str, str, bool], dict[str, tuple[int, int, int]]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(
            _IMPACT_SQL,
            {
                "ws": workspace.pk, "window": window_days,
                "names": [s.name for s, _ in published],
                "days": [at.astimezone(UTC).date() for _, at in published],
                "modes": [s.source_mode_id for s, _ in published],
            },
        )  # fmt: skip
        for kind, name, agent, after, ok, bad, n in cursor.fetchall():
            by_agent[(kind, name, after)][agent] = (int(ok or 0), int(bad or 0), int(n or 0))
    zero = (0, 0, 0)
    result = {}
    for skill, published_at in published:
        if not agents.get(skill.name):
            result[skill.pk] = {"skill": skill, "agents": [], "published_at": published_at}
            continue
        # Each comparison is made within the agents that have runs on both sides:
        # pooling agents would credit the skill with the better agents' own success
        # whenever they are the ones that use it (or that started after it).
        cohort = _Comparison.of(
            _with_and_without(
                by_agent[("total", skill.name, True)], by_agent[("cohort", skill.name, True)]
            ),
            sides="both with and without it in scope since publication",
        )
        totals = {after: by_agent[("total", skill.name, after)] for after in (False, True)}
        period_sides = f"both in the {window_days} days before publication and since"
        periods = _Comparison.of(
            {agent: (Rate(*_known(totals[False].get(agent, zero))),
                     Rate(*_known(totals[True].get(agent, zero))))
             for agent in set(totals[False]) | set(totals[True])},
            sides=period_sides, mix="which agents ran more before or since",
        )  # fmt: skip
        # A mode that holds only runs people labelled gains a run only when someone
        # labels it: its runs are counted with the failed runs like its labelled ones
        # (kept by metrics.services.skills_likeness_refresh), as a trial counts them.
        by_likeness = skill.source_mode_id is not None and modes_known_only_from_labels(
            workspace_id=workspace.pk, mode_ids=[skill.source_mode_id]
        )

        shares = {
            after: _mode_shares(by_agent, skill.name, after, likeness=by_likeness)
            for after in (False, True)
        }
        mode = _Comparison.of(
            {agent: (shares[False].get(agent, Rate(0, 0)), shares[True].get(agent, Rate(0, 0)))
             for agent in set(totals[False]) | set(totals[True])},
            sides=period_sides, mix="which agents ran more before or since",
            what="recurrence of its failure mode", higher_is_better=False,
        )  # fmt: skip
        mode_before, mode_after, mode_verdict = mode.first, mode.second, mode.verdict
        # The runs like a labelled one are kept while the skill is published only.
        measured = skill.source_mode_id is not None and not (
            by_likeness and skill.status != SkillStatus.PUBLISHED
        )
        if skill.source_mode_id is None:
            mode_before = mode_after = Rate(0, 0)
            mode_verdict = "It was drafted from no failure mode: there is no recurrence to count."
        elif not measured:
            mode_before = mode_after = Rate(0, 0)
            mode_verdict = (
                "Recurrence of its failure mode not measured since it was retired: every run "
                "in the mode is one a person labelled, and the runs like them are compared "
                "while a skill is published only."
            )
        elif by_likeness:
            mode_verdict += (
                " Counted: the runs people labelled into it and the failed runs like them "
                "(unconfirmed)."
            )
        result[skill.pk] = {
            "skill": skill, "agents": agents[skill.name], "published_at": published_at,
            "with": cohort.second, "without": cohort.first,
            "cohort_verdict": cohort.verdict, "cohort_agents": cohort.agents,
            "before": periods.first, "after": periods.second, "time_verdict": periods.verdict,
            "time_agents": periods.agents, "mode_agents": mode.agents,
            "mode_before": mode_before, "mode_after": mode_after,
            "mode_measured": measured,
            "mode_by_likeness": by_likeness and measured, "mode_verdict": mode_verdict,
            "shared_with": [], "time_shared_with": [],
        }  # fmt: skip
    _mark_shared(result)
    return result


def _with_and_without(
    after: dict[str, tuple[int, int, int]], cohort: dict[str, tuple[int, int, int]]
) -> dict[str, tuple[Rate, Rate]]:
    """Per agent since publication: (its runs without the skill, its runs with it)."""
    strata = {}
    for agent, (ok, bad, _) in after.items():
        with_ok, with_bad, _ = cohort.get(agent, (0, 0, 0))
        strata[agent] = (
            Rate(max(ok - with_ok, 0), max(ok + bad - with_ok - with_bad, 0)),
            Rate(with_ok, with_ok + with_bad),
        )
    return strata


def _mode_shares(
    by_agent: dict[tuple[str, str, bool], dict[str, tuple[int, int, int]]],
    name: str, after: bool, *, likeness: bool,
) -> dict[str, Rate]:  # fmt: skip
    """Per agent, the runs of one side (before or since publication) in the skill's
    mode, out of all its runs on that side; with `likeness`, the mode's runs are its
    labelled ones and the failed runs like them."""
    rates = {}
    for agent, (_, _, runs) in by_agent[("total", name, after)].items():
        hits = by_agent[("hits", name, after)].get(agent, (0, 0, 0))[2]
        likes = by_agent[("likes", name, after)].get(agent, (0, 0, 0))[2] if likeness else 0
        rates[agent] = Rate(hits + likes, runs)
    return rates


def _known(counts: tuple[int, int, int]) -> tuple[int, int]:
    """(succeeded, runs with a known outcome) of rollup counts."""
    return counts[0], counts[0] + counts[1]


@dataclass(frozen=True)
class _Comparison:
    """Two sides of a skill's impact over the agents with runs on both: their
    pooled rates, the agents counted and the verdict (`verdict_within_agents`).
    When no agent has runs on both sides, the rates are every agent's, shown for
    what they are, and not compared."""

    first: Rate
    second: Rate
    agents: list[str]
    verdict: str

    @classmethod
    def of(
        cls, pairs: dict[str, tuple[Rate, Rate]], *, sides: str, mix: str = "which agents ran it",
        what: str = "success rate", higher_is_better: bool = True,
    ) -> _Comparison:  # fmt: skip
        both = {agent: pair for agent, pair in pairs.items() if pair[0].n and pair[1].n}
        shown = list((both or pairs).values())
        first = Rate(sum(f.successes for f, _ in shown), sum(f.n for f, _ in shown))
        second = Rate(sum(s.successes for _, s in shown), sum(s.n for _, s in shown))
        if both:
            words = verdict_within_agents(list(both.values()), what=what, mix=mix,
                                          higher_is_better=higher_is_better)  # fmt: skip
        elif first.n and second.n:
            words = (
                f"Not compared: no agent has runs {sides}, and comparing one agent's runs "
                "with another's would measure the agents."
            )
        else:
            words = f"Not enough data to compare the {what}."
        return cls(first, second, sorted(both), words)


def _mark_shared(rows: dict[int, dict]) -> None:
    """Skills whose success figures are the very same numbers (same agents, same
    cohort, same publication day): those figures cannot tell them apart, and the
    pages say so instead of showing them as each skill's effect."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows.values():
        if row.get("agents"):
            key = (row["with"], row["without"], row["before"], row["after"])
            groups[key].append(row)
    for group in groups.values():
        if len(group) > 1:
            for row in group:
                row["shared_with"] = sorted(r["skill"].name for r in group if r is not row)
    # Success before vs since publication is the agents' own, whatever the skill: the
    # skills published the same day to the same agents show the very same figure.
    same_time: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows.values():
        if row.get("agents") and not row.get("shared_with"):
            day = row["published_at"].astimezone(UTC).date()
            same_time[(tuple(row["agents"]), day)].append(row)
    for group in same_time.values():
        if len(group) > 1:
            for row in group:
                row["time_shared_with"] = sorted(r["skill"].name for r in group if r is not row)


def skill_impact(*, workspace: Workspace, skill: Skill, window_days: int = 30) -> dict | None:
    """One skill's row, computed beside the other published skills' so figures it
    shares with them are marked (`shared_with`)."""
    others = [p.skill for p in published_skill_list(workspace_id=workspace.pk, with_body=False)
              if p.skill.pk != skill.pk]  # fmt: skip
    return skill_impacts(workspace=workspace, skills=[skill, *others],
                         window_days=window_days).get(skill.pk)  # fmt: skip


def impact_table(*, workspace: Workspace) -> list[dict]:
    skills = [p.skill for p in published_skill_list(workspace_id=workspace.pk, with_body=False)]
    impacts = skill_impacts(workspace=workspace, skills=skills)
    return [impacts[s.pk] for s in skills if s.pk in impacts]


def snapshot_list(*, workspace: Workspace) -> QuerySet[Snapshot]:
    """A workspace's snapshots, newest first, without their (large) files."""
    return Snapshot.objects.filter(workspace=workspace).defer(*Snapshot.FILES.values())


# --- trials --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    traces: int = 0
    succeeded: int = 0
    failed: int = 0
    mode_traces: int = 0
    tokens: int = 0
    seconds: float = 0.0
    steps: int = 0
    errors: int = 0

    @property
    def decided(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class TrialResult:
    """A trial's figures, from its rollups (skills.trials explains the statistics)."""

    trial: Trial
    arms: dict[str, Arm]
    recurrence: Effect  # share of traces hitting the skill's failure modes
    success: Effect  # share of decided traces that succeeded
    verdict: str
    reached: bool
    remaining: int  # traces still needed in the fuller arm
    unassigned_fetches: int
    # False for a skill drafted from no failure mode: there is no recurrence to read,
    # and the verdict rests on success alone.
    recurrence_measured: bool = True
    # True when every run of the skill's modes is one a person labelled: new runs
    # join them only once labelled, so the arms' failures with the mode are the runs
    # like its labelled ones (`failures.propagation.runs_like_modes`), which no
    # person has confirmed. The pages say so.
    recurrence_by_likeness: bool = False

    @property
    def verdict_words(self) -> str:
        return verdict_words(self.verdict, reached=self.reached or self.trial.ended_at is not None)


def verdict_words(verdict: str, *, reached: bool) -> str:
    return {
        HELPS: "Helps",
        HURTS: "Hurts",
        NO_CHANGE: "No measurable change" if reached else "No measurable change yet",
        TOO_FEW: "Too few traces yet",
    }.get(verdict, "Not measured yet")


def trial_result(*, trial: Trial) -> TrialResult:
    rows = list(
        TrialDailyRollup.objects.filter(trial=trial, agent__in=trial.agents).values(
            "day",
            "arm",
            "traces",
            "succeeded",
            "failed",
            "mode_traces",
            "tokens",
            "seconds",
            "steps",
            "errors",
        )  # fmt: skip
    )
    sums: dict[str, dict[str, float]] = {TREATED: defaultdict(float), HOLDOUT: defaultdict(float)}
    for row in rows:
        for key in ("traces", "succeeded", "failed", "mode_traces", "tokens", "seconds", "steps",
                    "errors"):  # fmt: skip
            sums[row["arm"]][key] += row[key]
    arms = {
        arm: Arm(**{k: (v if k == "seconds" else int(v)) for k, v in values.items()})  # type: ignore[arg-type]
        for arm, values in sums.items()
    }
    horizon = t_star(planned=trial.planned_per_arm, holdout_share=trial.holdout_share)
    modes = skill_source_modes(skill=trial.skill)
    by_likeness = modes_known_only_from_labels(workspace_id=trial.workspace_id, mode_ids=modes)
    recurrence = effect(
        [ArmDay(r["day"], r["arm"], r["traces"], r["mode_traces"]) for r in rows],
        holdout_share=trial.holdout_share, t_star=horizon, prior=trial.baseline_rate,
    )  # fmt: skip
    success = effect(
        [ArmDay(r["day"], r["arm"], r["succeeded"] + r["failed"], r["succeeded"]) for r in rows],
        holdout_share=trial.holdout_share, t_star=horizon, prior=trial.baseline_success,
    )  # fmt: skip
    # The planned size counts the arm the split makes smaller.
    smaller = HOLDOUT if trial.holdout_share <= 0.5 else TREATED
    planned_smaller = round(trial.planned_per_arm * min(trial.holdout_share,
                                                         1 - trial.holdout_share)
                            / max(trial.holdout_share, 1 - trial.holdout_share))  # fmt: skip
    have = arms[smaller].traces
    unassigned = FetchLog.objects.filter(
        workspace_id=trial.workspace_id, session_id="", created_at__gte=trial.started_at,
        **({"created_at__lte": trial.ended_at} if trial.ended_at else {}),
    ).count()  # fmt: skip
    return TrialResult(
        trial=trial, arms=arms, recurrence=recurrence, success=success,
        verdict=trial_verdict(recurrence=recurrence, success=success,
                              recurrence_measured=bool(modes)),
        reached=have >= planned_smaller, remaining=max(planned_smaller - have, 0),
        unassigned_fetches=unassigned, recurrence_measured=bool(modes),
        recurrence_by_likeness=by_likeness,
    )  # fmt: skip


def trial_list(*, workspace: Workspace) -> QuerySet[Trial]:
    return Trial.objects.filter(workspace=workspace).select_related("skill", "version")


def harmful_trials(*, workspace: Workspace) -> list[Trial]:
    """Skills whose latest trial reads "hurts" and that are still served to its arm."""
    return list(
        Trial.objects.filter(
            workspace=workspace, verdict=HURTS, skill__status="published", skill__rollout="trial"
        )  # fmt: skip
        .select_related("skill")
        .order_by("skill__name")
    )
