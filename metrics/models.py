from __future__ import annotations

from django.db import models

from workspaces.models import Workspace


class DailyRollup(models.Model):
    """Per workspace × day × agent counts, so charts never scan raw traces.

    Kept current by the ingest and outcome paths (metrics.services.rollups_refresh
    for the days and agents a write touched); `manage.py rebuild_rollups`
    recomputes everything from traces.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent = models.CharField(max_length=200)
    traces = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    # Of succeeded + failed: outcomes read from a hook session (Claude Code, Codex,
    # Cursor: the agent reported none and no outcome was posted), not reported.
    inferred = models.PositiveIntegerField(default=0, db_default=0)
    # Runs nothing in them dated (no start, end or step time; a replayed hook log
    # with no times): counted on the day they arrived (services.UNDATED).
    undated = models.PositiveIntegerField(default=0, db_default=0)
    steps = models.PositiveIntegerField(default=0)
    step_errors = models.PositiveIntegerField(default=0)
    incidents = models.PositiveIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)

    class Meta:
        ordering = ["day", "agent"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "agent"], name="rollup_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.day} {self.agent}"


class SkillDailyRollup(models.Model):
    """Per workspace × day × agent × skill: the traces that had the skill in scope.

    A trace's skills are the ones it reported (`skills_in_scope`), else the ones
    its session fetched from the skills API (the fetch log). Kept with DailyRollup
    (same keys, same refresh), so skill impact is read from rollups only; the
    "without" cohort is the DailyRollup total minus this.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent = models.CharField(max_length=200)
    skill = models.CharField(max_length=64)
    traces = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "agent", "skill"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "skill", "day", "agent"], name="skill_rollup_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.day} {self.agent} {self.skill}"


class SweepMark(models.Model):
    """How far the rollup sweep has read `traces_trace.updated_at`."""

    name = models.CharField(max_length=40, primary_key=True)
    watermark = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.watermark}"


class Snapshot(models.Model):
    """An immutable training export: chosen traces as chat-format JSONL (SFT, with a
    train / held-out split) and preference pairs (DPO: a failed and a succeeded
    attempt at the same task). The filter and the counts are recorded with it;
    nothing ever updates a snapshot (traces.snapshots makes them)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=100, blank=True)
    filters = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    sft_train = models.TextField(blank=True)
    sft_heldout = models.TextField(blank=True)
    dpo_pairs = models.TextField(blank=True)
    created_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "version"], name="snapshot_unique_version")
        ]

    def __str__(self) -> str:
        return f"snapshot v{self.version}"

    FILES = {"sft-train.jsonl": "sft_train", "sft-heldout.jsonl": "sft_heldout",
             "dpo-pairs.jsonl": "dpo_pairs"}  # fmt: skip


class TrialDailyRollup(models.Model):
    """Per trial × day × agent × arm: the traces of assigned sessions, and how many
    succeeded, failed, or hit the skill's failure mode. Recomputed per trial by
    metrics.services.trials_refresh; the trial page reads only these."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    trial = models.ForeignKey("skills.Trial", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent = models.CharField(max_length=200)
    arm = models.CharField(max_length=8)
    traces = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    mode_traces = models.PositiveIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    steps = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["trial", "day", "agent", "arm"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "day", "agent", "arm"], name="trial_rollup_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"trial {self.trial_id} {self.day} {self.agent} {self.arm}"


class TrialRunLikeness(models.Model):
    """Whether a failed run of a trial went wrong like a labelled run of the skill's
    failure modes (`failures.propagation.runs_like_modes`), kept for trials whose
    modes hold only labelled runs: a trial's rollups count these runs as the mode's.
    A run is compared once it is diagnosed (the refresh after an ingest, or the
    periodic one); every run is compared again when the modes' incidents change
    (new labels change the answer). A lead's rejection is read when counting."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    trial = models.ForeignKey("skills.Trial", on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey("traces.Trace", on_delete=models.CASCADE, related_name="+")
    like = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "trace"], name="trial_run_likeness_unique")
        ]

    def __str__(self) -> str:
        return f"trial {self.trial_id} run {self.trace_id}: {'like' if self.like else 'unlike'}"


class SkillRunLikeness(models.Model):
    """Whether a failed run of a published skill's agents (from the impact window
    before its publication on) went wrong like a labelled run of the skill's failure
    mode (`failures.propagation.runs_like_modes`), kept for skills whose mode holds
    only labelled runs: the observational impact (before vs since publication) counts
    these runs as the mode's, as a trial does (TrialRunLikeness). Kept by
    metrics.services.skills_likeness_refresh; a lead's rejection is read when counting."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey("skills.Skill", on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey("traces.Trace", on_delete=models.CASCADE, related_name="+")
    like = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["skill", "trace"], name="skill_run_likeness_unique")
        ]

    def __str__(self) -> str:
        return f"skill {self.skill_id} run {self.trace_id}: {'like' if self.like else 'unlike'}"
