"""Writes for skills: distillation jobs and proposed versions."""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from failures.models import FailureMode, ModeStatus
from failures.selectors import mode_incidents_nearest
from hivemind_web.celery import enqueue
from traces.models import Step, Trace
from workspaces.errors import InvalidInput
from workspaces.llm import model_for
from workspaces.models import Role, Workspace
from workspaces.selectors import membership_require
from workspaces.services import audit_record

from . import distill
from .guard import flags_for
from .instructions import instruction_flags, named_tools
from .models import Authorship, DistillationJob, JobState, Skill, SkillStatus, SkillVersion
from .vectors import description_vectors, text_vector

logger = logging.getLogger(__name__)

# Descriptions this similar (cosine) are the same skill: revise, don't duplicate.
DUPLICATE_SIMILARITY = 0.92
# A mode whose last draft found nothing to propose is drafted again once it holds
# this many times the incidents it had then (modes_due_for_distillation).
SKIPPED_GROWTH = 2
# Drafts of one job, when the incidents it cited change under it (_draft_retrying).
DRAFT_ATTEMPTS = 3


def modes_due_for_distillation(*, workspace_id: int) -> list[FailureMode]:
    """Open modes with enough incidents that no live skill covers yet and whose
    evidence changed since they were last drafted. One query.

    - Covered: a proposed or published skill has a version drafted from this
      mode, whichever mode the skill first came from (a draft that was
      de-duplicated onto another mode's skill covers this mode too).
    - Evidence changed: the mode holds more incidents than when its last
      drafting job was queued (or it was never drafted), and more than when its
      last skill was rejected. When that job found nothing to propose ("skip"),
      at least SKIPPED_GROWTH times as many: one more incident of the same kind
      rarely changes that answer, and re-drafting on every batch is what made
      drafting grow faster than the data.
    """
    live = [SkillStatus.PROPOSED, SkillStatus.PUBLISHED]
    covered = SkillVersion.objects.filter(source_mode=OuterRef("pk"), skill__status__in=live)
    last_job = (
        DistillationJob.objects.filter(failure_mode=OuterRef("pk"))
        .exclude(state=JobState.FAILED)
        .order_by("-created_at")
    )
    last_drafted = last_job.values("mode_incidents")[:1]
    last_verdict = last_job.values("verdict")[:1]
    last_rejected = (
        Skill.objects.filter(source_mode=OuterRef("pk"), status=SkillStatus.REJECTED)
        .order_by("-updated_at")
        .values("rejected_at_incidents")[:1]
    )
    return list(
        FailureMode.objects.filter(
            workspace_id=workspace_id,
            status=ModeStatus.OPEN,
            incident_count__gte=settings.HIVEMIND_DISTILL_MIN_INCIDENTS,
        )
        .exclude(skills__status__in=live)
        .exclude(merged_skills__status__in=live)
        .exclude(Exists(covered))
        .annotate(
            rejected_at=Subquery(last_rejected),
            drafted_at=Subquery(last_drafted),
            last_verdict=Coalesce(Subquery(last_verdict), Value("")),
        )
        .filter(Q(rejected_at__isnull=True) | Q(incident_count__gt=F("rejected_at")))
        .filter(
            Q(drafted_at__isnull=True)
            | (Q(last_verdict="skip") & Q(incident_count__gte=F("drafted_at") * SKIPPED_GROWTH))
            | (~Q(last_verdict="skip") & Q(incident_count__gt=F("drafted_at")))
        )
        .distinct()
        .order_by("-incident_count", "pk")
    )


def distillation_request(
    *, mode: FailureMode, actor: User | None = None
) -> tuple[DistillationJob, bool]:
    """Queue drafting for `mode`; reuses a job already queued or drafting."""
    if actor is not None:
        membership_require(workspace=mode.workspace, user=actor, role=Role.LEAD,
                           action="request a skill draft")  # fmt: skip
    active = DistillationJob.objects.filter(
        failure_mode=mode, state__in=[JobState.QUEUED, JobState.DRAFTING]
    ).first()
    if active:
        return active, False
    try:
        with transaction.atomic():
            job = DistillationJob.objects.create(
                workspace=mode.workspace, failure_mode=mode, requested_by=actor,
                mode_incidents=mode.incident_count,
            )  # fmt: skip
    except IntegrityError:  # another request won the race; use its job
        return DistillationJob.objects.get(
            failure_mode=mode, state__in=[JobState.QUEUED, JobState.DRAFTING]
        ), False
    # With the broker down the job stays queued; the sweep resends queued jobs.
    transaction.on_commit(lambda: enqueue("skills.tasks.distill_mode", job.pk))
    return job, True


def distillation_run(*, job_id: int) -> DistillationJob:
    """Draft, validate and store a skill for the job's mode. Idempotent: a job
    that already finished is returned as it is."""
    claimed = DistillationJob.objects.filter(
        pk=job_id, state__in=[JobState.QUEUED, JobState.DRAFTING]
    ).update(state=JobState.DRAFTING, updated_at=timezone.now())  # sweep_jobs reads it
    job = DistillationJob.objects.select_related("failure_mode").get(pk=job_id)
    if not claimed:
        return job
    try:
        version, draft = _draft_retrying(job)
    except distill.DistillError as exc:
        return _finish(job, JobState.FAILED, detail=str(exc))
    except (OperationalError, InterfaceError):
        # The database went away: not the job's fault. It stays "drafting" and the
        # task retries it (then skills.tasks.sweep_jobs resends it) until it runs.
        raise
    except Exception as exc:  # a bug must still end the job visibly, not leave it "drafting"
        logger.exception("distillation job %s failed", job_id)
        return _finish(job, JobState.FAILED, detail=f"Internal error: {type(exc).__name__}")
    done = {"verdict": draft.verdict, "detail": draft.reason, "held_back": draft.held_back}
    if version is None:
        return _finish(job, JobState.DONE, **done)
    return _finish(job, JobState.DONE, version=version, **done)


def _draft_retrying(job: DistillationJob) -> tuple[SkillVersion | None, distill.Draft]:
    """A draft stores its evidence in one transaction; when an incident it cites was
    deleted meanwhile (a re-diagnosis replaced it), the commit fails and nothing is
    stored: draft again from the incidents there are now."""
    for attempt in range(1, DRAFT_ATTEMPTS + 1):
        try:
            return _draft_and_store(job)
        except IntegrityError:
            if attempt == DRAFT_ATTEMPTS:
                raise
            logger.info("distillation job %s: evidence changed while drafting; again", job.pk)
    raise AssertionError("unreachable")


def _finish(job: DistillationJob, state: str, **fields: object) -> DistillationJob:
    for key, value in fields.items():
        setattr(job, key, value)
    job.state = state
    job.save()
    return job


def _draft_and_store(job: DistillationJob) -> tuple[SkillVersion | None, distill.Draft]:
    mode = job.failure_mode
    existing = mode.skills.filter(status__in=[SkillStatus.PROPOSED, SkillStatus.PUBLISHED]).first()
    if existing:
        skip = distill.Draft(
            "skip", f"Mode already has skill '{existing.name}' ({existing.status})."
        )
        return None, skip
    incidents = mode_incidents_nearest(mode=mode, limit=distill.MAX_EVIDENCE)
    if not incidents:
        raise distill.DistillError("This mode has no incidents to learn from.")
    context = distill.Context(mode, incidents, _similar_skills(mode), carried=_carried(mode))
    model = model_for(mode.workspace_id)[0]
    draft = (distill.draft_with_model(context, model) if model is not None
             else distill.draft_offline(context))  # fmt: skip
    if draft.merged_into:
        # Nothing new to propose: the mode joins the skills that already say it.
        for skill in Skill.objects.filter(workspace=mode.workspace, name__in=draft.merged_into):
            skill.merged_modes.add(mode)
        draft.reason = (f"Merged into {', '.join(repr(n) for n in draft.merged_into)}: "
                        f"{'it already gives' if len(draft.merged_into) == 1 else 'they already give'}"
                        " what this mode's evidence supports; this mode is now one of its sources. "
                        + draft.reason)[:4000]  # fmt: skip
    if draft.verdict == "skip" or draft.doc is None:
        return None, draft
    decided = _already_decided(mode, draft)
    if decided:
        return None, distill.Draft("skip", decided, incident_ids=draft.incident_ids,
                                   held_back=draft.held_back)  # fmt: skip
    with transaction.atomic():
        return _store(job, draft, context), draft


def _already_decided(mode: FailureMode, draft: distill.Draft) -> str:
    """Why this draft must not reach a lead again ("" when it may): a lead rejected
    a draft of this mode with the same instructions (the evidence has not changed
    what it says). Instructions a live skill already gives never get this far:
    the drafter holds them back (`_carried`)."""
    ids = {str(i.get("id")) for i in draft.instructions if i.get("id")}
    if not ids:
        return ""
    rejected = (
        Skill.objects.filter(source_mode=mode, status=SkillStatus.REJECTED)
        .order_by("-updated_at")
        .first()
    )
    if rejected is not None and rejected.latest_version is not None:
        before = {str(i.get("id")) for i in rejected.latest_version.instructions or []}
        if ids <= before:
            return (
                f"Not proposed again: the evidence still gives the instructions of the draft "
                f"'{rejected.name}' a lead rejected. A new draft comes only when the evidence "
                "changes what it says; Ignore this mode to stop drafts."
            )
    return ""


def _carried(mode: FailureMode) -> dict[str, str]:
    """Instruction id -> the live skill that gives it (a second skill must not)."""
    carried: dict[str, str] = {}
    for version in _latest_versions(mode.workspace):
        if version.skill.status in (SkillStatus.PROPOSED, SkillStatus.PUBLISHED):
            for item in version.instructions or []:
                if item.get("id"):
                    carried.setdefault(str(item["id"]), version.skill.name)
    return carried


def _similar_skills(mode: FailureMode, limit: int = 3) -> list[dict[str, str]]:
    versions = _latest_versions(mode.workspace)
    if not versions or mode.centroid is None:
        return []
    vectors = description_vectors([(v.pk, v.description) for v in versions])
    # The mode centroid lives in the signature space; the label is comparable text.
    order = np.argsort(-(vectors @ text_vector(mode.label)))[:limit]
    return [{"name": versions[i].skill.name, "description": versions[i].description} for i in order]


def _duplicate_of(workspace: Workspace, description: str) -> Skill | None:
    versions = _latest_versions(workspace)
    if not versions:
        return None
    sims = description_vectors([(v.pk, v.description) for v in versions]) @ text_vector(description)
    best = int(np.argmax(sims))
    return versions[best].skill if sims[best] >= DUPLICATE_SIMILARITY else None


def _latest_versions(workspace: Workspace) -> list[SkillVersion]:
    """The newest version of every skill not rejected (what a new draft is compared to)."""
    skills = (
        Skill.objects.filter(workspace=workspace)
        .exclude(status=SkillStatus.REJECTED)
        .prefetch_related("versions")
    )
    return [s.latest_version for s in skills if s.latest_version is not None]


def _store(job: DistillationJob, draft: distill.Draft, context: distill.Context) -> SkillVersion:
    workspace, mode, doc = job.workspace, job.failure_mode, draft.doc
    assert doc is not None
    skill = None
    if draft.verdict == "revise":
        skill = Skill.objects.filter(workspace=workspace, name=draft.revise_skill).first()
    skill = skill or _duplicate_of(workspace, doc.description)
    if skill is None:
        skill = Skill.objects.filter(workspace=workspace, name=doc.name).first()
        if skill is not None and skill.source_mode_id != mode.pk:
            doc = distill.SkillDoc(_free_name(workspace, doc.name), doc.description, doc.body)
            skill = None
    if skill is None:
        skill = Skill.objects.create(workspace=workspace, name=doc.name, source_mode=mode)
    elif skill.status in (SkillStatus.REJECTED, SkillStatus.RETIRED):
        skill.status = SkillStatus.PROPOSED
        skill.save(update_fields=["status", "updated_at"])
    evidence = [
        i for i in context.incidents if i.pk in set(draft.incident_ids)
    ] or context.incidents
    version = SkillVersion.objects.create(
        skill=skill,
        number=(skill.versions.count() + 1),
        description=doc.description,
        body=doc.body,
        source_mode=mode,
        authorship=Authorship.LLM if draft.model else Authorship.OFFLINE,
        model=draft.model,
        input_tokens=draft.input_tokens,
        output_tokens=draft.output_tokens,
        cost_usd=draft.cost_usd if draft.model else 0.0,
        flags=version_flags(workspace, doc.body + "\n" + doc.description, draft.instructions,
                            context.incidents, exclude=None),
        instructions=draft.instructions,
        rationale=draft.reason,
    )  # fmt: skip
    version.evidence.set(evidence)
    audit_record(
        workspace=workspace, actor=job.requested_by, action="skill.propose", obj=skill,
        after={"version": version.number, "authorship": version.authorship, "mode": mode.pk},
        actor_label="" if job.requested_by else "distiller",
    )  # fmt: skip
    return version


def version_flags(
    workspace: Workspace,
    text: str,
    instructions: list[dict],
    incidents: list,
    exclude: Skill | None,
) -> list[str]:
    """Every reviewer flag for a version, drafted or edited (skills/guard.py,
    skills/instructions.py)."""
    texts = [f"{i.tool}\n{i.error_text}\n{i.trace.task}" for i in incidents]
    skills = Skill.objects.filter(workspace=workspace, status=SkillStatus.PUBLISHED)
    if exclude is not None:
        skills = skills.exclude(pk=exclude.pk)
    published = [
        (s.name, s.published_version.instructions)
        for s in skills.select_related("published_version")
        if s.published_version is not None
    ]
    agents = {i.trace.agent for i in incidents}
    called = tools_called(workspace, agents, named_tools(instructions))
    return flags_for(text, texts) + instruction_flags(instructions, texts, published, called)


# How many of an agent's newest runs `tools_called` reads: enough to have seen every
# tool an agent uses, bounded however many runs the workspace holds.
RECENT_RUNS = 1000


def tools_called(workspace: Workspace, agents: set[str], names: set[str]) -> set[str]:
    """Of `names`, those a step of one of `agents`' newest runs (RECENT_RUNS each) is
    named: tools the agents really have."""
    if not names or not agents:
        return set()
    called: set[str] = set()
    for agent in sorted(agents):
        recent = Trace.objects.filter(workspace=workspace, agent=agent).order_by("-started_at")
        called |= set(
            Step.objects.filter(
                trace_id__in=recent.values("pk")[:RECENT_RUNS], name__in=sorted(names - called)
            )
            .values_list("name", flat=True)
            .distinct()
        )
        if called == names:
            break
    return called


def _free_name(workspace: Workspace, name: str) -> str:
    for n in range(2, 100):
        candidate = f"{name[:60]}-{n}"
        if not Skill.objects.filter(workspace=workspace, name=candidate).exists():
            return candidate
    raise InvalidInput("Could not find a free skill name.")


def distill_due(*, workspace_id: int) -> list[DistillationJob]:
    """Queue drafting for every mode that crossed the threshold."""
    return [
        distillation_request(mode=mode)[0]
        for mode in modes_due_for_distillation(workspace_id=workspace_id)
    ]
