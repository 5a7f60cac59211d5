"""Reads for skills. Every query is scoped to one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import markdown as md
import nh3
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from failures.models import FailureMode, ModeDailyCount, ModeStatus
from traces.models import Trace
from workspaces.errors import NotFound
from workspaces.models import Workspace

from .models import DistillationJob, Skill, SkillStatus, SkillVersion, Trial
from .skillmd import SkillDoc, render


@dataclass(frozen=True)
class Published:
    """A published skill and the version agents get."""

    skill: Skill
    version: SkillVersion

    @property
    def ref(self) -> str:
        return f"{self.skill.name}@{self.version.number}"


def published_skill_list(
    *, workspace_id: int, name: str = "", with_body: bool = True
) -> list[Published]:
    """What agents are served: published skills with their published version, by
    name. The one query behind the skills API, the published set the poll is
    answered from, and the metrics' impact table."""
    qs = (
        Skill.objects.filter(workspace_id=workspace_id, status=SkillStatus.PUBLISHED)
        .exclude(published_version=None)
        .select_related("published_version")
        .order_by("name")
    )
    if name:
        qs = qs.filter(name=name)
    if not with_body:
        # Lists never show bodies; not loading them keeps a 50-skill request cheap.
        qs = qs.defer("published_version__body")
    return [Published(s, s.published_version) for s in qs if s.published_version is not None]


def skill_list(*, workspace: Workspace, status: str = "") -> QuerySet[Skill]:
    qs = (
        Skill.objects.filter(workspace=workspace)
        .select_related("source_mode", "published_version")
        .prefetch_related("versions", "trials")
    )
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("status", "name")


def skill_get(*, workspace: Workspace, pk: int) -> Skill:
    skill = Skill.objects.filter(workspace=workspace, pk=pk).first()
    if skill is None:
        raise NotFound("No such skill in this workspace.")
    return skill


def skill_source_modes(*, skill: Skill) -> list[int]:
    """The failure modes this skill answers: where it came from, and every mode a
    version of it was drafted from (drafts de-duplicated onto it included)."""
    ids = set(skill.versions.exclude(source_mode=None).values_list("source_mode_id", flat=True))
    if skill.source_mode_id is not None:
        ids.add(skill.source_mode_id)
    ids.update(skill.merged_modes.values_list("pk", flat=True))
    return sorted(i for i in ids if i is not None)


def skill_versions(*, skill: Skill) -> QuerySet[SkillVersion]:
    return skill.versions.select_related("author").order_by("-number")


def skill_md(version: SkillVersion) -> str:
    """The SKILL.md file of a version, as agents receive it."""
    return render(SkillDoc(version.skill.name, version.description, version.body))


def render_markdown(text: str) -> str:
    """Markdown to HTML, sanitised: drafts come from LLMs fed with agent output."""
    html = md.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    return nh3.clean(html, link_rel="noopener noreferrer nofollow")


def skill_list_for_mode(*, mode: FailureMode) -> QuerySet[Skill]:
    """Skills that answer this failure mode: drafted from it, a version drafted from
    it (a draft de-duplicated onto another mode's skill), or merged into."""
    return (
        Skill.objects.filter(workspace=mode.workspace)
        .filter(Q(source_mode=mode) | Q(merged_modes=mode) | Q(versions__source_mode=mode))
        .distinct()
        .order_by("name")
    )


def skill_names_by_mode(*, workspace: Workspace) -> dict[int, list[Skill]]:
    """Failure mode id -> the skills that answer it, as `skill_list_for_mode` says
    (the mode list's Skill column: the same skills as the mode page)."""
    by_mode: dict[int, list[Skill]] = {}
    skills = (
        Skill.objects.filter(workspace=workspace)
        .prefetch_related("merged_modes", "versions")
        .order_by("name")
    )
    for skill in skills:
        modes = {skill.source_mode_id, *(m.pk for m in skill.merged_modes.all()),
                 *(v.source_mode_id for v in skill.versions.all())}  # fmt: skip
        for mode_id in sorted(m for m in modes if m is not None):
            by_mode.setdefault(mode_id, []).append(skill)
    return by_mode


def modes_on_trial_only(*, workspace: Workspace, by_mode: dict[int, list[Skill]]) -> set[int]:
    """Modes marked addressed whose published skills are all on trial: a trial
    serves the skill to part of the sessions only, so the pages say "On trial"
    until it is rolled out to everyone."""
    trial_only = {
        mode_id
        for mode_id, skills in by_mode.items()
        if any(s.status == SkillStatus.PUBLISHED and s.rollout == "trial" for s in skills)
        and not any(s.status == SkillStatus.PUBLISHED and s.rollout != "trial" for s in skills)
    }
    return set(
        FailureMode.objects.filter(
            workspace=workspace, pk__in=trial_only, status=ModeStatus.ADDRESSED
        ).values_list("pk", flat=True)
    )


def undrafted_modes(*, workspace: Workspace) -> tuple[list[FailureMode], list[FailureMode]]:
    """Open modes whose last draft did not reach review, most incidents first: those
    held back (none of its instructions held up on runs it was not drafted from, or
    each was unsafe), and those where nothing could be drafted (the evidence grounds
    no instruction; each says why as `last_detail`). A mode a re-cluster emptied is
    not among them, as it is not on the Failure modes page."""
    from django.db.models import OuterRef, Subquery

    last = DistillationJob.objects.filter(failure_mode=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    modes: list[FailureMode] = list(
        FailureMode.objects.filter(
            workspace=workspace, status=ModeStatus.OPEN, incident_count__gt=0
        )
        .annotate(last_verdict=Subquery(last.values("verdict")[:1]),
                  last_detail=Subquery(last.values("detail")[:1]))
        .filter(last_verdict="skip")
        .order_by("-incident_count", "pk")
    )  # fmt: skip
    held_back = [m for m in modes if (getattr(m, "last_detail", "") or "").startswith("Held back")]
    return held_back, [m for m in modes if m not in held_back]


def latest_job(*, mode: FailureMode) -> DistillationJob | None:
    return mode.distillation_jobs.select_related("version__skill").order_by("-created_at").first()


def job_get(*, workspace: Workspace, pk: int) -> DistillationJob:
    job = DistillationJob.objects.filter(workspace=workspace, pk=pk).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def skill_audit(*, skill: Skill) -> QuerySet:
    from workspaces.models import AuditEvent

    return AuditEvent.objects.filter(
        workspace=skill.workspace, object_type="Skill", object_id=str(skill.pk)
    ).order_by("-created_at")


def skill_retired_at(*, skill: Skill) -> Any:
    """When a retired skill stopped being served (its last retire event)."""
    if skill.status != "retired":
        return None
    event = skill_audit(skill=skill).filter(action="skill.retire").first()
    return event.created_at if event else skill.updated_at


def traces_with_skill(*, skill: Skill, limit: int = 20) -> QuerySet:
    """Traces that reported this skill in scope (by name or name@version)."""
    from django.db.models import Q

    from traces.models import Trace

    refs = [skill.name] + [f"{skill.name}@{v.number}" for v in skill.versions.all()]
    return (
        Trace.objects.filter(workspace=skill.workspace)
        .filter(Q(skills_in_scope__overlap=refs))
        .order_by("-started_at")[:limit]
    )


def trial_exposed_agents(*, skill: Skill) -> list[str]:
    """The agents a skill's failure modes have occurred in: its trial's effect is
    measured on their traces (elsewhere the skill has nothing to act on)."""
    return sorted(
        ModeDailyCount.objects.filter(failure_mode_id__in=skill_source_modes(skill=skill))
        .values_list("agent", flat=True)
        .distinct()
    )


def trial_baseline(*, skill: Skill, days: int = 30) -> tuple[float | None, float | None]:
    """Over the last `days` days, the share of the exposed agents' traces that hit
    the skill's failure modes (what a trial is planned on) and their success rate
    (None without traces)."""
    since = timezone.now() - timedelta(days=days)
    agents = trial_exposed_agents(skill=skill)
    counts = Trace.objects.filter(
        workspace_id=skill.workspace_id, agent__in=agents, started_at__gte=since
    ).aggregate(n=Count("id"), ok=Count("id", filter=Q(status="succeeded")),
                bad=Count("id", filter=Q(status="failed")))  # fmt: skip
    traces = counts["n"]
    if not traces:
        return None, None
    decided = counts["ok"] + counts["bad"]
    hits = (
        ModeDailyCount.objects.filter(
            failure_mode_id__in=skill_source_modes(skill=skill),
            agent__in=agents,
            day__gte=since.date(),
        ).aggregate(n=Sum("traces"))["n"]  # fmt: skip
        or 0
    )
    return min(hits / traces, 1.0), (counts["ok"] / decided if decided else None)


def trial_current(*, skill: Skill) -> Trial | None:
    """The skill's latest trial (running, or the one whose split is still served)."""
    return Trial.objects.filter(skill=skill).order_by("-started_at").first()


def harmful_skills(*, workspace: Workspace) -> list[Skill]:
    """Skills served on trial whose latest trial reads "hurts" (flagged in the queue)."""
    skills = Skill.objects.filter(workspace=workspace, status=SkillStatus.PUBLISHED,
                                  rollout="trial").prefetch_related("trials")  # fmt: skip
    return [s for s in skills if s.harmful]
