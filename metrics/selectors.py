"""Reads for the PM-facing pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from skills.models import Skill, SkillStatus
from traces.models import Incident, Trace
from workspaces.models import ApiKey, AuditEvent, Workspace

from .models import DailyRollup
from .stats import Rate, verdict


@dataclass(frozen=True)
class Overview:
    api_keys: int
    traces: int
    traces_7d: int
    succeeded_7d: int
    failed_7d: int
    incidents_7d: int
    agents: int

    @property
    def success_rate_7d(self) -> float | None:
        decided = self.succeeded_7d + self.failed_7d
        return self.succeeded_7d / decided if decided else None


def overview_get(*, workspace: Workspace) -> Overview:
    """Headline counts for the workspace's overview page."""
    week_ago = timezone.now() - timedelta(days=7)
    traces = Trace.objects.filter(workspace=workspace)
    counts = traces.aggregate(
        total=Count("id"),
        recent=Count("id", filter=Q(started_at__gte=week_ago)),
        ok=Count("id", filter=Q(started_at__gte=week_ago, status="succeeded")),
        bad=Count("id", filter=Q(started_at__gte=week_ago, status="failed")),
        agents=Count("agent", distinct=True),
    )
    return Overview(
        api_keys=ApiKey.objects.filter(workspace=workspace, revoked_at=None).count(),
        traces=counts["total"],
        traces_7d=counts["recent"],
        succeeded_7d=counts["ok"],
        failed_7d=counts["bad"],
        incidents_7d=Incident.objects.filter(
            workspace=workspace, occurred_at__gte=week_ago
        ).count(),
        agents=counts["agents"],
    )


def recent_failed_traces(*, workspace: Workspace, limit: int = 8) -> list[Trace]:
    return list(
        Trace.objects.filter(workspace=workspace, status="failed").order_by("-started_at")[:limit]
    )


# --- metrics page --------------------------------------------------------------------


def success_by_period(
    *, workspace: Workspace, days: int = 60, week: bool = False
) -> dict[str, list[dict]]:
    """Per agent: [{period, succeeded, decided, traces}] from the rollups."""
    since = timezone.now().date() - timedelta(days=days - 1)
    qs = DailyRollup.objects.filter(workspace=workspace, day__gte=since)
    period = TruncWeek("day") if week else F("day")
    rows = (
        qs.annotate(period=period)
        .values("agent", "period")
        .annotate(ok=Sum("succeeded"), bad=Sum("failed"), n=Sum("traces"))
        .order_by("agent", "period")
    )
    series: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        series[row["agent"] or "(no agent)"].append({
            "period": row["period"], "succeeded": row["ok"], "decided": row["ok"] + row["bad"],
            "traces": row["n"],
        })  # fmt: skip
    return dict(series)


def compound_by_agent(*, workspace: Workspace, days: int = 30) -> list[dict]:
    """Per-step success beside end-to-end success, and what the first predicts."""
    since = timezone.now().date() - timedelta(days=days - 1)
    rows = (
        DailyRollup.objects.filter(workspace=workspace, day__gte=since)
        .values("agent")
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
        per_step = 1 - row["errors"] / row["steps"]
        typical = row["steps"] / row["n"]
        end_to_end = Rate(row["ok"], row["ok"] + row["bad"])
        result.append({
            "agent": row["agent"], "per_step": per_step, "typical_steps": typical,
            "predicted": per_step ** typical, "end_to_end": end_to_end,
        })  # fmt: skip
    return result


def _cohort_rates(
    workspace_id: int, agents: list[str], refs: list[str], name: str, since, until
) -> tuple[Rate, Rate]:  # type: ignore[no-untyped-def]
    """(with skill, without) among these agents' decided traces in [since, until)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH t AS (
                SELECT t.status, (t.skills_in_scope && %s::varchar[] OR EXISTS (
                    SELECT 1 FROM skills_fetchlog f
                    WHERE f.workspace_id = t.workspace_id AND t.session_id <> ''
                      AND f.session_id = t.session_id AND f.created_at <= t.started_at + interval '1 day'
                      AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(f.skills) s
                                  WHERE s LIKE %s))) AS has_skill
                FROM traces_trace t
                WHERE t.workspace_id = %s AND t.agent = ANY(%s) AND t.started_at >= %s
                  AND t.started_at < %s AND t.status IN ('succeeded', 'failed')
            )
            SELECT has_skill, count(*) FILTER (WHERE status = 'succeeded'), count(*)
            FROM t GROUP BY has_skill
            """,
            [refs, f"{name}@%", workspace_id, agents, since, until],
        )
        counts = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    with_skill = counts.get(True, (0, 0))
    without = counts.get(False, (0, 0))
    return Rate(*with_skill), Rate(*without)


def _recurrence(workspace_id: int, mode_id: int | None, agents: list[str], since, until) -> Rate:  # type: ignore[no-untyped-def]
    """Traces hitting the mode, out of all these agents' traces in the window."""
    if mode_id is None:
        return Rate(0, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM traces_incident i
                                    WHERE i.trace_id = t.id AND i.failure_mode_id = %s)), count(*)
            FROM traces_trace t
            WHERE t.workspace_id = %s AND t.agent = ANY(%s) AND t.started_at >= %s AND t.started_at < %s
            """,
            [mode_id, workspace_id, agents, since, until],
        )
        hits, n = cursor.fetchone()
    return Rate(hits, n)


def skill_impact(*, workspace: Workspace, skill: Skill, window_days: int = 30) -> dict | None:
    """With vs without the skill (same agents, since publication) and before vs after."""
    published_at = (
        AuditEvent.objects.filter(
            workspace=workspace,
            object_type="Skill",
            object_id=str(skill.pk),
            action="skill.approve",
        )  # fmt: skip
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if published_at is None:
        return None
    refs = [skill.name] + [
        f"{skill.name}@{v}" for v in skill.versions.values_list("number", flat=True)
    ]
    agents = _agents_using(workspace, skill, refs)
    if not agents:
        return {"skill": skill, "agents": [], "published_at": published_at}
    window = timedelta(days=window_days)
    # "After" runs to the latest trace, whatever clock skew agents have.
    now = datetime.max.replace(tzinfo=UTC)
    with_skill, without = _cohort_rates(workspace.pk, agents, refs, skill.name, published_at, now)
    before_all = _cohort_rates(
        workspace.pk, agents, refs, skill.name, published_at - window, published_at
    )
    before = Rate(
        before_all[0].successes + before_all[1].successes, before_all[0].n + before_all[1].n
    )
    after_all = _cohort_rates(workspace.pk, agents, refs, skill.name, published_at, now)
    after = Rate(after_all[0].successes + after_all[1].successes, after_all[0].n + after_all[1].n)
    mode_before = _recurrence(
        workspace.pk, skill.source_mode_id, agents, published_at - window, published_at
    )
    mode_after = _recurrence(workspace.pk, skill.source_mode_id, agents, published_at, now)
    return {
        "skill": skill, "agents": agents, "published_at": published_at,
        "with": with_skill, "without": without,
        "cohort_verdict": verdict(without, with_skill),
        "before": before, "after": after, "time_verdict": verdict(before, after),
        "mode_before": mode_before, "mode_after": mode_after,
        "mode_verdict": verdict(mode_before, mode_after, what="recurrence of its failure mode",
                                higher_is_better=False),
    }  # fmt: skip


def _agents_using(workspace: Workspace, skill: Skill, refs: list[str]) -> list[str]:
    """Agents whose traces reported the skill, or whose sessions fetched it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT t.agent FROM traces_trace t
            WHERE t.workspace_id = %s AND (
                t.skills_in_scope && %s::varchar[]
                OR (t.session_id <> '' AND EXISTS (
                    SELECT 1 FROM skills_fetchlog f
                    WHERE f.workspace_id = t.workspace_id AND f.session_id = t.session_id
                      AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(f.skills) s
                                  WHERE s LIKE %s))))
            ORDER BY t.agent
            """,
            [workspace.pk, refs, f"{skill.name}@%"],
        )
        return [row[0] for row in cursor.fetchall()]


def impact_table(*, workspace: Workspace) -> list[dict]:
    skills = Skill.objects.filter(workspace=workspace, status=SkillStatus.PUBLISHED).exclude(
        published_version=None
    )
    return [row for row in (skill_impact(workspace=workspace, skill=s) for s in skills) if row]
