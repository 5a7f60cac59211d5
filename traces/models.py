from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from pgvector.django import HnswIndex, VectorField

from workspaces.models import Workspace

# all-MiniLM-L6-v2 produces 384-dimensional vectors (traces/embeddings.py).
EMBEDDING_DIMENSIONS = 384


class TraceStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown"


class StepKind(models.TextChoices):
    USER_PROMPT = "user_prompt", "User prompt"
    LLM_CALL = "llm_call", "LLM call"
    TOOL_CALL = "tool_call", "Tool call"
    TOOL_RESULT = "tool_result", "Tool result"
    ASSISTANT_MESSAGE = "assistant_message", "Assistant message"
    ERROR = "error", "Error"


class Trace(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="traces")
    external_id = models.CharField(max_length=200)
    agent = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    task = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=TraceStatus.choices, default=TraceStatus.UNKNOWN
    )
    reward = models.FloatField(null=True, blank=True)
    # When the agent started the trace; the receive time when it did not say.
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # As the agent reported them: "name@version" or "name". The skills and
    # metrics apps resolve these; traces never imports skills.
    skills_in_scope = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    step_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    redaction_counts = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Retries upsert on this instead of duplicating a trace.
            models.UniqueConstraint(
                fields=["workspace", "external_id"], name="trace_unique_external_id"
            )
        ]
        indexes = [
            # The traces list: a workspace's newest traces, optionally by agent.
            models.Index(fields=["workspace", "-started_at"], name="trace_ws_started"),
            models.Index(fields=["workspace", "agent", "-started_at"], name="trace_ws_agent"),
            # Skill-cohort queries: "traces that had skill X in scope".
            GinIndex(fields=["skills_in_scope"], name="trace_skills_gin"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def redaction_total(self) -> int:
        return sum(self.redaction_counts.values())


class Step(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=StepKind.choices)
    name = models.CharField(max_length=200, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["trace", "index"]
        constraints = [
            # Steps are matched by index on re-ingest, never duplicated.
            models.UniqueConstraint(fields=["trace", "index"], name="step_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.trace_id}#{self.index} {self.kind}"

    @property
    def is_error(self) -> bool:
        return bool(self.error) or self.kind == StepKind.ERROR


class Outcome(models.Model):
    """A verdict on a trace (status, reward, scores), possibly before the trace exists.

    Joined to traces by external_id; applied when the trace arrives if it is not
    there yet. The latest outcome decides the trace's status and reward.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="outcomes")
    external_id = models.CharField(max_length=200)
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="outcomes"
    )
    status = models.CharField(max_length=10, choices=TraceStatus.choices, blank=True)
    reward = models.FloatField(null=True, blank=True)
    scores = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            # Pending outcomes are looked up by external_id when a trace arrives.
            models.Index(fields=["workspace", "external_id"], name="outcome_ws_external"),
        ]

    def __str__(self) -> str:
        return f"outcome of {self.external_id}: {self.status or '-'}"


class ModeStatus(models.TextChoices):
    OPEN = "open", "Open"
    ADDRESSED = "addressed", "Addressed by a skill"
    IGNORED = "ignored", "Ignored"
    MERGED = "merged", "Merged"


class FailureMode(models.Model):
    """A recurring kind of failure: a cluster of incidents with similar signatures.

    Ids are kept across re-clustering (traces/clustering.py matches new clusters
    to existing modes), so skills, links and history stay attached.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="failure_modes")
    label = models.CharField(max_length=200)
    # Set when a lead renames the mode: re-labelling then leaves the label alone.
    label_locked = models.BooleanField(default=False)
    keywords = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    centroid = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    incident_count = models.PositiveIntegerField(default=0)
    trace_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ModeStatus.choices, default=ModeStatus.OPEN)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-incident_count", "id"]
        indexes = [models.Index(fields=["workspace", "status"], name="mode_ws_status")]

    def __str__(self) -> str:
        return self.label


class ClusterRun(models.Model):
    """One re-clustering of a workspace: when, how long, what it found."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="cluster_runs")
    started_at = models.DateTimeField()
    seconds = models.FloatField()
    incidents = models.PositiveIntegerField()
    modes = models.PositiveIntegerField()
    noise = models.PositiveIntegerField()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"clustering of {self.workspace_id} at {self.started_at:%Y-%m-%d %H:%M}"


class Assignment(models.TextChoices):
    CLUSTER = "cluster", "Clustering"
    NEAREST = "nearest", "Nearest mode on arrival"
    MANUAL = "manual", "A lead"


class IncidentKind(models.TextChoices):
    STEP_ERROR = "step_error", "Step error"
    TRACE_FAILURE = "trace_failure", "Trace failed"


# step_index of the incident that stands for a whole failed trace.
TRACE_LEVEL_INDEX = -1


class Incident(models.Model):
    """One failure inside a trace, with the signature text that gets embedded."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="incidents")
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="incidents")
    step_index = models.IntegerField(help_text="-1: the trace's final failure")
    kind = models.CharField(max_length=20, choices=IncidentKind.choices)
    tool = models.CharField(max_length=200, blank=True)
    error_text = models.TextField(blank=True)
    signature = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)
    failure_mode = models.ForeignKey(
        FailureMode, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    # How it got its mode; "manual" assignments are never undone by re-clustering.
    assigned_by = models.CharField(max_length=10, choices=Assignment.choices, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "step_index"], name="incident_unique_step")
        ]
        indexes = [
            models.Index(fields=["workspace", "-occurred_at"], name="incident_ws_occurred"),
            models.Index(fields=["failure_mode", "-occurred_at"], name="incident_mode_occurred"),
            # The embedding sweep: incidents still waiting for a vector.
            models.Index(
                fields=["workspace"],
                name="incident_unembedded",
                condition=models.Q(embedded_at=None),
            ),
            # Nearest-neighbour search over signatures (incident_search uses
            # CosineDistance, so the opclass is vector_cosine_ops).
            # m=24/ef_construction=128: at 1M vectors, m=16/64 could not reach
            # recall@10 0.95 under 20 ms p95 at any ef_search (bench/RESULTS.md).
            HnswIndex(
                name="incident_embedding_hnsw",
                fields=["embedding"],
                m=24,
                ef_construction=128,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} in {self.trace_id} at {self.step_index}"


class ModeDailyCount(models.Model):
    """Incidents of a failure mode per day × agent (and the traces they hit): the
    rollup behind every per-mode trend, so charts never scan incidents.

    Lives beside FailureMode (not in metrics) because every change of incident
    assignments already goes through `failure_modes_refresh`, which rewrites the
    rows of the modes it touched in the same transaction; metrics reads it.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    failure_mode = models.ForeignKey(FailureMode, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    agent = models.CharField(max_length=200)
    incidents = models.PositiveIntegerField(default=0)
    traces = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(
                fields=["failure_mode", "day", "agent"], name="mode_daily_unique_key"
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="mode_daily_ws_day")]

    def __str__(self) -> str:
        return f"{self.failure_mode_id} {self.day} {self.agent}: {self.incidents}"


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
