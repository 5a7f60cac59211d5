"""Writes for a workspace's diagnosis settings (a service): its failure
categories and the reward below which a run counts as failed."""

from __future__ import annotations

import math

from django.contrib.auth.models import User
from django.db import transaction

from workspaces.errors import InvalidInput
from workspaces.models import Workspace
from workspaces.services import audit_record

from . import taxonomy
from .models import DiagnosisSettings


def parse_thresholds(text: str) -> dict[str, float]:
    """`agent = 0.8` per line; a message naming the line for anything else."""
    found: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        agent, sep, value = line.rpartition("=")
        try:
            threshold = float(value)
        except ValueError:
            threshold = math.nan
        if not sep or not agent.strip() or not math.isfinite(threshold):
            raise InvalidInput(f"Reward thresholds, line {number}: write `agent name = 0.8`.")
        found[agent.strip()[:200]] = threshold
    return found


@transaction.atomic
def diagnosis_settings_save(
    *,
    workspace: Workspace,
    categories_text: str,
    default_threshold: float | None,
    thresholds_text: str,
    actor: User,
) -> DiagnosisSettings:
    categories, errors = taxonomy.parse_text(categories_text)
    if errors:
        raise InvalidInput(" ".join(errors[:5]))
    if default_threshold is not None and not math.isfinite(default_threshold):
        raise InvalidInput("The default reward threshold must be a number.")
    thresholds = parse_thresholds(thresholds_text)
    rows = [{"key": c.key, "label": c.label, "description": c.description} for c in categories]
    before = DiagnosisSettings.objects.filter(workspace=workspace).first()
    old = _summary(before) if before else None
    settings_row, _ = DiagnosisSettings.objects.update_or_create(
        workspace=workspace,
        defaults={
            "categories": [] if rows == taxonomy.default_rows() else rows,
            "default_reward_threshold": default_threshold,
            "reward_thresholds": thresholds,
        },
    )
    audit_record(
        workspace=workspace, actor=actor, action="diagnosis.settings_changed",
        obj=settings_row, before=old, after=_summary(settings_row),
    )  # fmt: skip
    return settings_row


def _summary(row: DiagnosisSettings) -> dict:
    return {
        "categories": [c["key"] for c in row.categories] or "default",
        "default_reward_threshold": row.default_reward_threshold,
        "reward_thresholds": row.reward_thresholds,
    }
