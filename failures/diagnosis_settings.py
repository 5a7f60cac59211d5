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
from .diagnosis.evidence import DEFAULT_MIN_PRECISION
from .models import DiagnosisSettings


def parse_tools(text: str) -> list[str]:
    """Tool names, one per line or separated by commas; at most 500 of 200 characters."""
    names = [n.strip() for line in text.splitlines() for n in line.split(",")]
    names = [n for n in names if n]
    too_long = next((n for n in names if len(n) > 200), None)
    if too_long is not None:
        raise InvalidInput(f"A tool name is at most 200 characters: {too_long[:60]}…")
    if len(names) > 500:
        raise InvalidInput("At most 500 tool names.")
    return sorted(set(names))


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
    write_tools_text: str = "",
    read_tools_text: str = "",
    min_precision: float | None = None,
) -> DiagnosisSettings:
    categories, errors = taxonomy.parse_text(categories_text)
    if errors:
        raise InvalidInput(" ".join(errors[:5]))
    if default_threshold is not None and not math.isfinite(default_threshold):
        raise InvalidInput("The default reward threshold must be a number.")
    thresholds = parse_thresholds(thresholds_text)
    if min_precision is None:
        min_precision = DEFAULT_MIN_PRECISION
    if not math.isfinite(min_precision) or not 0.0 <= min_precision <= 1.0:
        raise InvalidInput("The minimum precision is a share between 0 and 1, such as 0.5.")
    write_tools, read_tools = parse_tools(write_tools_text), parse_tools(read_tools_text)
    both = sorted(set(write_tools) & set(read_tools))
    if both:
        raise InvalidInput(f"A tool cannot both change state and only read: {', '.join(both[:5])}.")
    rows = [{"key": c.key, "label": c.label, "description": c.description} for c in categories]
    before = DiagnosisSettings.objects.filter(workspace=workspace).first()
    old = _summary(before) if before else None
    settings_row, _ = DiagnosisSettings.objects.update_or_create(
        workspace=workspace,
        defaults={
            "categories": [] if rows == taxonomy.default_rows() else rows,
            "default_reward_threshold": default_threshold,
            "reward_thresholds": thresholds,
            "write_tools": write_tools,
            "read_tools": read_tools,
            "min_precision": min_precision,
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
        "write_tools": row.write_tools,
        "read_tools": row.read_tools,
        "min_precision": row.min_precision,
    }
