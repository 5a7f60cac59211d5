"""Review decisions: approve, edit, reject, retire, roll back (services).

Roles are enforced here, not in templates: leads and admins act, viewers read,
API keys never reach these functions. Every transition is an AuditEvent with
who, from, to, version and reason.
"""

from __future__ import annotations

import difflib

from django.contrib.auth.models import User
from django.db import transaction

from failures.services import failure_mode_mark_addressed, failure_mode_mark_open
from workspaces.errors import Conflict, InvalidInput
from workspaces.models import Role
from workspaces.selectors import membership_require
from workspaces.services import audit_record

from .models import Authorship, Skill, SkillStatus, SkillVersion
from .publication import published_set_refresh
from .selectors import skill_source_modes
from .skillmd import SkillDoc, validate

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
    "rename": {
        SkillStatus.PROPOSED,
        SkillStatus.PUBLISHED,
        SkillStatus.REJECTED,
        SkillStatus.RETIRED,
    },
}


PAST = {"approve": "approved", "edit": "edited", "reject": "rejected", "retire": "retired",
        "rollback": "rolled back", "rename": "renamed"}  # fmt: skip


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


def _audit(skill: Skill, actor: User, action: str, before: str, **after: object) -> None:
    # Every transition passes here: keep what agents are served in step with it.
    published_set_refresh(workspace_id=skill.workspace_id)
    audit_record(
        workspace=skill.workspace, actor=actor, action=f"skill.{action}", obj=skill,
        before={"status": before}, after={"status": skill.status, **after},
    )  # fmt: skip


def _published(skill: Skill, version: SkillVersion) -> None:
    from .webhooks import webhook_enqueue

    transaction.on_commit(lambda: webhook_enqueue(skill_id=skill.pk, version_id=version.pk))


@transaction.atomic
def skill_approve(*, skill: Skill, number: int, actor: User) -> Skill:
    """Publish version `number`: agents get it on their next fetch."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "approve")
    version = _version(skill, number)
    before = skill.status
    skill.status, skill.published_version = SkillStatus.PUBLISHED, version
    skill.save(update_fields=["status", "published_version", "updated_at"])
    # Every mode a version of this skill was drafted from is addressed by it.
    for mode_id in skill_source_modes(skill=skill):
        failure_mode_mark_addressed(mode_id=mode_id)
    _audit(skill, actor, "approve", before, version=version.number)
    _published(skill, version)
    return skill


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
    evidence = list(previous.evidence.select_related("trace")) if previous else []
    version = SkillVersion.objects.create(
        skill=skill, number=(previous.number + 1) if previous else 1,
        description=description.strip(), body=body.strip(),
        source_mode=previous.source_mode if previous else skill.source_mode,
        authorship=Authorship.USER, author=actor, rationale="Edited by a reviewer.",
        instructions=instructions,
        flags=version_flags(skill.workspace, body + "\n" + description, instructions, evidence,
                            exclude=skill),
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
    skill.status = SkillStatus.RETIRED
    skill.save(update_fields=["status", "updated_at"])
    # Its modes are open again unless another published skill still addresses them.
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
    _audit(skill, actor, "retire", before, reason=reason.strip(),
           version=skill.published_version.number if skill.published_version else None)  # fmt: skip
    return skill


@transaction.atomic
def skill_rollback(*, skill: Skill, number: int, actor: User) -> Skill:
    """Serve an earlier version again."""
    skill = Skill.objects.select_for_update().get(pk=skill.pk)
    _check(skill, actor, "rollback")
    version = _version(skill, number)
    if skill.published_version and version.number >= skill.published_version.number:
        raise InvalidInput("Roll back to a version older than the published one.")
    previous = skill.published_version.number if skill.published_version else None
    skill.published_version = version
    skill.save(update_fields=["published_version", "updated_at"])
    _audit(skill, actor, "rollback", skill.status, version=version.number, from_version=previous)
    _published(skill, version)
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
