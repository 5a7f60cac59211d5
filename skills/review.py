"""Review decisions: approve, edit, reject, retire, roll back (services).

Roles are enforced here, not in templates: leads and admins act, viewers read,
API keys never reach these functions. Every transition is an AuditEvent with
who, from, to, version and reason.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from failures.models import FailureMode
from failures.services import failure_mode_mark_addressed, failure_mode_mark_open
from workspaces.errors import Conflict, InvalidInput
from workspaces.models import Role
from workspaces.selectors import membership_require
from workspaces.services import audit_record

from .models import Authorship, Skill, SkillStatus, SkillVersion, Trial
from .publication import published_set_refresh
from .selectors import skill_source_modes, trial_baseline, trial_exposed_agents
from .skillmd import SkillDoc, validate
from .trials import MIN_PER_ARM, planned_per_arm

# action -> statuses it may start from
ALLOWED_FROM = {
    "approve": {SkillStatus.PROPOSED, SkillStatus.PUBLISHED, SkillStatus.RETIRED},
    "edit": {
        SkillStatus.PROPOSED,
        SkillStatus.PUBLISHED,
        SkillStatus.REJECTED,
        SkillStatus.RETIRED,
    },
    "reject": {SkillStatus.PROPOSED},
    "retire": {SkillStatus.PUBLISHED},
    "rollback": {SkillStatus.PUBLISHED},
    "roll_out": {SkillStatus.PUBLISHED},
    "roll_back_trial": {SkillStatus.PUBLISHED},
    "rename": {
        SkillStatus.PROPOSED,
        SkillStatus.PUBLISHED,
        SkillStatus.REJECTED,
        SkillStatus.RETIRED,
    },
}


PAST = {"approve": "approved", "edit": "edited", "reject": "rejected", "retire": "retired",
        "rollback": "rolled back", "rename": "renamed", "roll_out": "rolled out to everyone",
        "roll_back_trial": "rolled back after its trial"}  # fmt: skip


def _check(skill: Skill, actor: User, action: str) -> None:
    membership_require(workspace=skill.workspace, user=actor, role=Role.LEAD,
                       action=f"{action} skills")  # fmt: skip
    if skill.status not in ALLOWED_FROM[action]:
        raise Conflict(f"A {skill.status} skill cannot be {PAST[action]}.")


def _version(skill: Skill, number: int) -> SkillVersion:
    version = skill.versions.filter(number=number).first()
    if version is None:
        raise InvalidInput(f"{skill.name} has no version {number}.")
    return version


def _audit(skill: Skill, actor: User | None, action: str, before: str, **after: object) -> None:
    # Every transition passes here: keep what agents are served in step with it.
    published_set_refresh(workspace_id=skill.workspace_id)
    audit_record(
        workspace=skill.workspace, actor=actor, action=f"skill.{action}", obj=skill,
        before={"status": before}, after={"status": skill.status, **after},
        actor_label="" if actor else "Hivemind (automatic)",
    )  # fmt: skip


def _end_trial(skill: Skill, reason: str) -> Trial | None:
    """End the skill's running trial, if any (its measurement stops here)."""
    trial = Trial.objects.select_for_update().filter(skill=skill, ended_at=None).first()
    if trial is not None:
        trial.ended_at, trial.end_reason = timezone.now(), reason
        trial.save(update_fields=["ended_at", "end_reason"])
    return trial


def _published(skill: Skill, version: SkillVersion, event: str = "skill.published") -> None:
    from .webhooks import webhook_enqueue

    transaction.on_commit(
        lambda: webhook_enqueue(skill_id=skill.pk, version_id=version.pk, event=event)
    )


@transaction.atomic
def skill_approve(
    *, skill: Skill, number: int, actor: User, rollout: str = "all",
    holdout_share: float = 0.5, min_change: float = 0.5,
) -> Skill:  # fmt: skip
    """Publish version `number`: agents get it on their next fetch; to everyone
    (`rollout="all"`), or as a trial that holds a random `holdout_share` of
    sessions out, planned to detect a cut of `min_change` in its failure mode."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "approve")
    version = _version(skill, number)
    if rollout not in ("all", "trial"):
        raise InvalidInput("Roll out to everyone ('all') or as a trial ('trial').")
    if rollout == "trial" and not 0.05 <= holdout_share <= 0.95:
        raise InvalidInput("The held-out share must be between 5% and 95%.")
    if rollout == "trial" and not 0.05 <= min_change <= 1.0:
        raise InvalidInput("The smallest change worth detecting must be between 5% and 100%.")
    before = skill.status
    ended = _end_trial(
        skill, f"v{version.number} approved ({'trial' if rollout == 'trial' else 'everyone'})"
    )
    skill.status, skill.published_version, skill.rollout = SkillStatus.PUBLISHED, version, rollout
    skill.save(update_fields=["status", "published_version", "rollout", "updated_at"])
    # Every mode a version of this skill was drafted from is addressed by it.
    for mode_id in skill_source_modes(skill=skill):
        failure_mode_mark_addressed(mode_id=mode_id)
    extra: dict[str, object] = {"rollout": rollout}
    if rollout == "trial":
        trial = _trial_start(skill, version, actor, holdout_share, min_change)
        extra.update(trial=trial.pk, holdout_share=holdout_share,
                     planned_per_arm=trial.planned_per_arm)  # fmt: skip
    if ended is not None:
        extra["ended_trial"] = ended.pk
    _audit(skill, actor, "approve", before, version=version.number, **extra)
    _published(skill, version)
    return skill


def _trial_start(
    skill: Skill, version: SkillVersion, actor: User, holdout_share: float, min_change: float
) -> Trial:
    baseline, success = trial_baseline(skill=skill)
    planned = (
        planned_per_arm(baseline=baseline, min_change=min_change, holdout_share=holdout_share)
        if baseline
        else MIN_PER_ARM
    )
    return Trial.objects.create(
        workspace=skill.workspace, skill=skill, version=version, holdout_share=holdout_share,
        baseline_rate=baseline, baseline_success=success, min_change=min_change,
        planned_per_arm=planned, started_by=actor,
        agents=trial_exposed_agents(skill=skill),
    )  # fmt: skip


@transaction.atomic
def skill_roll_out(*, skill: Skill, actor: User) -> Skill:
    """End the skill's trial and serve it to every agent."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "roll_out")
    if skill.rollout != "trial":
        raise Conflict("This skill is not on trial: every agent already receives it.")
    trial = _end_trial(skill, "rolled out to everyone")
    skill.rollout = "all"
    skill.save(update_fields=["rollout", "updated_at"])
    _audit(skill, actor, "roll_out", skill.status, trial=trial.pk if trial else None,
           version=skill.published_version.number if skill.published_version else None,
           verdict=trial.verdict if trial else "")  # fmt: skip
    if skill.published_version is not None:
        _published(skill, skill.published_version, "skill.retired")
    return skill


@transaction.atomic
def skill_roll_back_trial(*, skill: Skill, actor: User | None, reason: str = "",
                          automatic: bool = False) -> Skill:  # fmt: skip
    """Stop serving a skill on trial (to either arm): it is retired, its failure
    modes open again. `automatic` is the workspace's pause-on-harm setting."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    if automatic:
        if skill.status != SkillStatus.PUBLISHED:
            return skill
    else:
        assert actor is not None
        _check(skill, actor, "roll_back_trial")
    if skill.rollout != "trial":
        raise Conflict("This skill is not on trial; retire it instead.")
    trial = _end_trial(skill, reason or "rolled back")
    before = skill.status
    skill.status, skill.rollout = SkillStatus.RETIRED, "all"
    skill.save(update_fields=["status", "rollout", "updated_at"])
    _reopen_modes(skill)
    _audit(skill, actor, "pause" if automatic else "roll_back_trial", before,
           reason=reason, trial=trial.pk if trial else None,
           version=skill.published_version.number if skill.published_version else None,
           verdict=trial.verdict if trial else "")  # fmt: skip
    return skill


def _reopen_modes(skill: Skill) -> None:
    """Its modes are open again unless another published skill still addresses them."""
    still_covered = set(
        SkillVersion.objects.filter(
            skill__workspace=skill.workspace, skill__status=SkillStatus.PUBLISHED
        )
        .exclude(skill=skill)
        .values_list("source_mode_id", flat=True)
    )
    for mode_id in skill_source_modes(skill=skill):
        if mode_id not in still_covered:
            failure_mode_mark_open(mode_id=mode_id)


def _check_lines(mode: FailureMode | None, instructions: list[dict[str, Any]]) -> list[str]:
    """A lead's new or edited lines get what drafted ones have: the backtest, where
    the line is one the backtest can read from calls, and the safety rules as flags.
    Fills each such instruction's `backtest`; returns the flags."""
    from failures.contrast import mode_backtest, success_share

    from .distill import NEEDED_SHARE
    from .instructions import checkable

    flags = []
    for item in instructions:
        if not (item.get("kind") == "human" or item.get("edited_by")):
            continue
        tools = _TOOL_NAMES.findall(item["text"])
        for tool in tools:
            if tool.startswith("user."):
                flags.append(f"Instruction {item['id']} is about `{tool}`, the simulated "
                             "user's tool, not one the agent calls.")  # fmt: skip
        form = checkable(item["text"])
        if form is None or mode is None:
            item["backtest"] = {"verdict": "untestable", "reason": (
                "not a line the backtest can read from calls (it reads “Before calling `T`, "
                "call `O`”, “Call `T` before you finish”, “Do not call `T`”)"
                if mode is not None else "this skill has no failure mode to test it on")}  # fmt: skip
            continue
        kind, tool, other = form
        item["backtest"] = mode_backtest(mode=mode, kind=kind, tool=tool, other=other)
        if kind == "unexpected":
            did, n = success_share(mode=mode, tool=tool)
            if n and did / n >= NEEDED_SHARE:
                flags.append(f"Instruction {item['id']} forbids `{tool}`, which {did} of {n} "
                             f"successful runs of these agents call ({round(100 * did / n)}%).")  # fmt: skip
        if item["backtest"].get("verdict") in {"failed", "hard_tasks"}:
            flags.append(f"Instruction {item['id']} did not hold on the backtest: "
                         f"{item['backtest']['reason']}.")  # fmt: skip
    return flags


_TOOL_NAMES = re.compile(r"`([A-Za-z_][\w.\-]*)`")


@transaction.atomic
def skill_edit(*, skill: Skill, description: str, body: str, actor: User) -> SkillVersion:
    """Save an edited text as a new version (never changes an old one)."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "edit")
    errors = validate(SkillDoc(skill.name, description, body), require_sections=False)
    if errors:
        raise InvalidInput("; ".join(errors))
    from .instructions import read_back
    from .services import version_flags

    previous = skill.latest_version
    instructions = read_back(body, previous.instructions if previous else [],
                             actor.get_username())  # fmt: skip
    mode = previous.source_mode if previous else skill.source_mode
    safety = _check_lines(mode, instructions)
    evidence = list(previous.evidence.select_related("trace")) if previous else []
    version = SkillVersion.objects.create(
        skill=skill, number=(previous.number + 1) if previous else 1,
        description=description.strip(), body=body.strip(),
        source_mode=previous.source_mode if previous else skill.source_mode,
        authorship=Authorship.USER, author=actor, rationale="Edited by a reviewer.",
        instructions=instructions,
        flags=safety + version_flags(skill.workspace, body + "\n" + description, instructions,
                                     evidence, exclude=skill),
    )  # fmt: skip
    if previous:
        version.evidence.set(evidence)
    before = skill.status
    if skill.status in (SkillStatus.REJECTED, SkillStatus.RETIRED):
        skill.status = SkillStatus.PROPOSED
    skill.save(update_fields=["status", "updated_at"])
    _audit(skill, actor, "edit", before, version=version.number)
    return version


@transaction.atomic
def skill_rename(*, skill: Skill, name: str, actor: User) -> SkillVersion:
    """Rename: a new version (same text, the new name), the old name kept as an
    alias the skills API answers with 301 (410 once the skill is not published).
    Agents' folders follow on their next pull (`hivemind_client skills pull`
    removes the folder it wrote under the old name)."""
    from .models import SkillAlias

    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "rename")
    name, old = name.strip(), skill.name
    previous = skill.latest_version
    errors = validate(SkillDoc(name, previous.description if previous else "x", "x"),
                      require_sections=False)  # fmt: skip
    if errors:
        raise InvalidInput("; ".join(errors))
    if name == old:
        raise InvalidInput(f"The skill is already named {name!r}.")
    taken = Skill.objects.filter(workspace=skill.workspace, name=name).exclude(pk=skill.pk)
    alias = SkillAlias.objects.filter(workspace=skill.workspace, name=name).first()
    if taken.exists() or (alias is not None and alias.skill_id != skill.pk):
        raise Conflict(f"The name {name!r} is taken (by a skill, or as a former name of one).")
    if alias is not None:
        alias.delete()  # renamed back to a former name
    SkillAlias.objects.create(workspace=skill.workspace, name=old, skill=skill)
    skill.name = name
    skill.save(update_fields=["name", "updated_at"])
    version = SkillVersion.objects.create(
        skill=skill, number=(previous.number + 1) if previous else 1,
        description=previous.description if previous else "", body=previous.body if previous else "",
        source_mode=previous.source_mode if previous else skill.source_mode,
        authorship=Authorship.USER, author=actor, rationale=f"Renamed from {old} to {name}.",
        instructions=previous.instructions if previous else [],
        flags=previous.flags if previous else [],
    )  # fmt: skip
    if previous:
        version.evidence.set(previous.evidence.all())
    _audit(skill, actor, "rename", skill.status, version=version.number, from_name=old,
           to_name=name)  # fmt: skip
    return version


@transaction.atomic
def skill_reject(*, skill: Skill, reason: str, actor: User) -> Skill:
    """Reject a proposal; its mode is not drafted again until new incidents arrive."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "reject")
    if not reason.strip():
        raise InvalidInput("Say why the skill is rejected; the reason is kept in the audit log.")
    before = skill.status
    skill.status = SkillStatus.REJECTED
    skill.rejected_at_incidents = skill.source_mode.incident_count if skill.source_mode else None
    skill.save(update_fields=["status", "rejected_at_incidents", "updated_at"])
    _audit(skill, actor, "reject", before, reason=reason.strip(),
           version=skill.latest_version.number if skill.latest_version else None)  # fmt: skip
    return skill


@transaction.atomic
def skill_retire(*, skill: Skill, reason: str, actor: User) -> Skill:
    """Stop serving a published skill to agents."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "retire")
    before = skill.status
    _end_trial(skill, "retired")
    skill.status, skill.rollout = SkillStatus.RETIRED, "all"
    skill.save(update_fields=["status", "rollout", "updated_at"])
    _reopen_modes(skill)
    _audit(skill, actor, "retire", before, reason=reason.strip(),
           version=skill.published_version.number if skill.published_version else None)  # fmt: skip
    if skill.published_version is not None:
        _published(skill, skill.published_version, "skill.retired")
    return skill


@transaction.atomic
def skill_rollback(*, skill: Skill, number: int, actor: User) -> Skill:
    """Serve an earlier version again."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "rollback")
    version = _version(skill, number)
    if skill.rollout == "trial":
        raise Conflict("This skill is on trial: roll it out to everyone or withdraw it first.")
    if skill.published_version and version.number >= skill.published_version.number:
        raise InvalidInput("Choose a version older than the one agents receive to serve again.")
    previous = skill.published_version.number if skill.published_version else None
    skill.published_version = version
    skill.save(update_fields=["published_version", "updated_at"])
    _audit(skill, actor, "rollback", skill.status, version=version.number, from_version=previous)
    _published(skill, version, "skill.rolled_back")
    return skill


def version_diff(old: SkillVersion | None, new: SkillVersion) -> str:
    """Side-by-side HTML diff of two versions' texts (content is escaped)."""
    before = (f"{old.description}\n\n{old.body}" if old else "").splitlines()
    after = f"{new.description}\n\n{new.body}".splitlines()
    return difflib.HtmlDiff(wrapcolumn=70).make_table(
        before,
        after,
        f"v{old.number}" if old else "(none)",
        f"v{new.number}",
        context=True,
        numlines=2,
    )
