"""Changes made through Django admin go into the workspace's audit log.

Django admin writes a LogEntry for every add, change and delete it makes (for a
delete, before the object is removed). Each one whose object belongs to a
workspace (a Workspace itself, or anything with a `workspace`) becomes an
AuditEvent `admin.add|change|delete`, with the admin's change message, so
creating a workspace or making oneself admin of another in Django admin is on
that workspace's audit log like any other change.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Workspace

ACTIONS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


def _workspace_of(obj: Any) -> Workspace | None:
    if isinstance(obj, Workspace):
        return obj
    workspace = getattr(obj, "workspace", None)
    return workspace if isinstance(workspace, Workspace) else None


@receiver(post_save, sender=LogEntry, dispatch_uid="hivemind_admin_audit")
def admin_change_audited(sender: Any, instance: LogEntry, created: bool, **_: Any) -> None:
    if not created or instance.content_type is None:
        return
    model = instance.content_type.model_class()  # type: ignore[attr-defined]
    obj = model._default_manager.filter(pk=instance.object_id).first() if model else None
    workspace = _workspace_of(obj)
    if workspace is None:
        return
    from .services import audit_record

    audit_record(
        workspace=workspace, actor=instance.user,  # type: ignore[arg-type]
        action=f"admin.{ACTIONS.get(instance.action_flag, 'change')}",
        obj=obj, after={"model": model.__name__ if model else "",
                        "change": instance.get_change_message()[:500]},
    )  # fmt: skip
