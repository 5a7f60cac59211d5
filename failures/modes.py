"""Lead actions on failure modes (services): rename, merge, split, ignore.

Each is audited, and only leads and admins may act (`membership_require`).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from workspaces.errors import InvalidInput
from workspaces.models import Role, Workspace
from workspaces.selectors import membership_require
from workspaces.services import audit_record

from .models import Assignment, FailureMode, Incident, ModeStatus
from .selectors import failure_mode_get
from .services import failure_modes_refresh, modes_lock


def _require_lead(workspace: Workspace, user: User) -> None:
    membership_require(workspace=workspace, user=user, role=Role.LEAD,
                       action="change failure modes")  # fmt: skip


@transaction.atomic
def failure_mode_rename(
    *, workspace: Workspace, mode_id: int, label: str, actor: User
) -> FailureMode:
    _require_lead(workspace, actor)
    mode = failure_mode_get(workspace=workspace, pk=mode_id)
    label = label.strip()
    if not label or len(label) > 200:
        raise InvalidInput("A label must be 1-200 characters.")
    before = {"label": mode.label}
    mode.label, mode.label_locked = label, True
    mode.save(update_fields=["label", "label_locked", "updated_at"])
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.rename", obj=mode,
        before=before, after={"label": label},
    )  # fmt: skip
    return mode


@transaction.atomic
def failure_mode_merge(
    *, workspace: Workspace, source_id: int, target_id: int, actor: User
) -> FailureMode:
    """Move every incident of `source` into `target`; `source` is kept as merged."""
    _require_lead(workspace, actor)
    if source_id == target_id:
        raise InvalidInput("Choose two different modes to merge.")
    source, target = (
        failure_mode_get(workspace=workspace, pk=source_id),
        failure_mode_get(workspace=workspace, pk=target_id),
    )
    if ModeStatus.MERGED in (source.status, target.status):
        raise InvalidInput("One of these modes was already merged into another.")
    modes_lock(workspace.pk)
    moved = Incident.objects.filter(failure_mode=source).update(failure_mode=target)
    source.status, source.merged_into = ModeStatus.MERGED, target
    source.save(update_fields=["status", "merged_into", "updated_at"])
    failure_modes_refresh(mode_ids=[source.pk, target.pk], relabel=True)
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.merge", obj=source,
        after={"merged_into": target.pk, "incidents_moved": moved},
    )  # fmt: skip
    return target


@transaction.atomic
def failure_mode_split(
    *,
    workspace: Workspace,
    mode_id: int,
    incident_ids: list[int],
    label: str,
    actor: User,
) -> FailureMode:
    """Move chosen incidents of a mode into a new mode; re-clustering keeps them there."""
    _require_lead(workspace, actor)
    mode = failure_mode_get(workspace=workspace, pk=mode_id)
    incidents = Incident.objects.filter(workspace=workspace, failure_mode=mode, pk__in=incident_ids)
    if not incidents.exists():
        raise InvalidInput("Choose at least one incident of this mode to split off.")
    modes_lock(workspace.pk)
    new_mode = FailureMode.objects.create(
        workspace=workspace, label=label.strip()[:200] or f"Split from: {mode.label}"[:200],
        label_locked=bool(label.strip()),
    )  # fmt: skip
    count = incidents.update(failure_mode=new_mode, assigned_by=Assignment.MANUAL)
    failure_modes_refresh(mode_ids=[mode.pk, new_mode.pk], relabel=True)
    audit_record(
        workspace=workspace, actor=actor, action="failure_mode.split", obj=mode,
        after={"new_mode": new_mode.pk, "incidents": count},
    )  # fmt: skip
    return new_mode


@transaction.atomic
def failure_mode_set_status(
    *, workspace: Workspace, mode_id: int, status: str, actor: User
) -> FailureMode:
    """Ignore a mode (no skill will be drafted for it) or open it again."""
    _require_lead(workspace, actor)
    if status not in (ModeStatus.OPEN, ModeStatus.IGNORED):
        raise InvalidInput("A mode can be set to open or ignored.")
    mode = failure_mode_get(workspace=workspace, pk=mode_id)
    if mode.status == ModeStatus.MERGED:
        raise InvalidInput("This mode was merged; act on the mode it was merged into.")
    before = {"status": mode.status}
    mode.status = status
    mode.save(update_fields=["status", "updated_at"])
    audit_record(
        workspace=workspace, actor=actor, action=f"failure_mode.{status}", obj=mode,
        before=before, after={"status": status},
    )  # fmt: skip
    return mode
