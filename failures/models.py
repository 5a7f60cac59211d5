"""Failures: incidents found in traces, and the failure modes they cluster into."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from traces.models import Trace
from workspaces.models import Workspace

# all-MiniLM-L6-v2 produces 384-dimensional vectors (failures/embedding.py).
EMBEDDING_DIMENSIONS = 384


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
    # Who made the label: "" (offline, from the incidents), "claude" or "model" (an
    # OpenAI-compatible server); a model's name is kept by re-clustering and renewed
    # when the mode has doubled.
    label_source = models.CharField(max_length=10, blank=True, default="")
    named_at_incidents = models.PositiveIntegerField(null=True, blank=True)
    keywords = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    centroid = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    incident_count = models.PositiveIntegerField(default=0)
    trace_count = models.PositiveIntegerField(default=0)
    # What the modes table shows beside the counts (failures/stats.py): lift with
    # its interval, also-in-successes, failed traces, tokens and cost, trend.
    stats = models.JSONField(default=dict, blank=True)
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


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ClusterRun(models.Model):
    """One re-clustering of a workspace: asked for, running, or what it found."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="cluster_runs")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)
    incidents = models.PositiveIntegerField(default=0)
    modes = models.PositiveIntegerField(default=0)
    noise = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"clustering of {self.workspace_id} ({self.state})"


class Assignment(models.TextChoices):
    CLUSTER = "cluster", "Clustering"
    NEAREST = "nearest", "Nearest mode on arrival"
    MANUAL = "manual", "A lead"


class IncidentKind(models.TextChoices):
    STEP_ERROR = "step_error", "Step error"
    # Older rows only: a failed trace with no failing step used to get one
    # catch-all incident; the diagnosis replaced it (a failed run where nothing
    # is found is counted as undiagnosed instead).
    TRACE_FAILURE = "trace_failure", "Trace failed"
    DIAGNOSIS = "diagnosis", "Diagnosis"
    # A tool error in a run that succeeded anyway: kept (searchable, on the
    # trace) but never grouped into a failure mode, which is what fails runs.
    RECOVERED = "recovered", "Recovered error"
    # What a failed run showed that is not a cause on its own (it ran far longer
    # than usual, repeated a call, handed off to a person): shown on the trace,
    # never grouped into a failure mode or drafted into a skill.
    SYMPTOM = "symptom", "Symptom"
    # Offline evidence of a kind that labelled runs show is usually wrong
    # (diagnosis/evidence.py): shown on the trace with its measured precision as a
    # lead to check, never a cause, a mode or a skill.
    WEAK = "weak", "Weak lead"


# Incidents that are not causes of a failure: kept out of modes and skills.
NOT_CAUSES = (IncidentKind.RECOVERED, IncidentKind.SYMPTOM, IncidentKind.WEAK)


def standing(kind: str) -> str:
    """What an incident stands for, in the words the APIs answer with: "cause",
    "weak lead" (a lead to check: evidence of its kind is usually wrong, or the
    run's outcome is unknown), "symptom" or "recovered" (the run succeeded)."""
    words: dict[str, str] = {IncidentKind.RECOVERED: "recovered",
                             IncidentKind.SYMPTOM: "symptom", IncidentKind.WEAK: "weak lead"}  # fmt: skip
    return words.get(kind, "cause")


class IncidentSource(models.TextChoices):
    ERROR = "error", "A recorded error"
    OFFLINE = "offline", "Offline diagnosis"
    CLAUDE = "claude", "Claude"
    # A model on an OpenAI-compatible server (workspaces/llm.py).
    MODEL = "model", "A model"
    # A person's label (failures/labels.py), or a candidate a person confirmed:
    # shown first, never overwritten or removed by a re-diagnosis.
    HUMAN = "human", "A person"


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
    # What went wrong, in one sentence (the diagnosis): what gets embedded.
    description = models.TextField(blank=True)
    category = models.CharField(max_length=80, blank=True)
    evidence_steps = ArrayField(models.IntegerField(), default=list, blank=True)
    source = models.CharField(
        max_length=10, choices=IncidentSource.choices, default=IncidentSource.ERROR
    )
    confidence = models.FloatField(default=1.0)
    # How the diagnosis weighed it: failure rate with/without the signal, the
    # share of successful runs that also show it, neighbours that agreed...
    stats = models.JSONField(default=dict, blank=True)
    signature = models.TextField()
    # Full-text search reads this stored vector through a GIN index (failures/search.py),
    # instead of building one per incident per query.
    search_vector = models.GeneratedField(
        expression=SearchVector("signature", "error_text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # SHA-256 of the text that is embedded: identical texts share one vector (and
    # so always one mode), whichever batch embedded them.
    embedding_key = models.CharField(max_length=64, blank=True, default="", db_default="")
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
            # Reusing the vector of a text embedded before (embedding.py); the
            # incidents of a text for search, read from the index alone (with `id`).
            models.Index(fields=["workspace", "embedding_key", "id"], name="incident_ws_text_id"),
            GinIndex(fields=["search_vector"], name="incident_search_vector_gin"),
            # A workspace's incidents by id (search reads its newest matches in
            # slices of ids): without it, the lowest id of a workspace created after
            # another was found by walking every incident of the older one.
            models.Index(fields=["workspace", "id"], name="incident_ws_id"),
            # The embedding sweep: incidents still waiting for a vector.
            models.Index(
                fields=["workspace"],
                name="incident_unembedded",
                condition=models.Q(embedded_at=None),
            ),
            # No vector index here: search measures distances over IncidentText (one
            # row per text, its own HNSW index), and a mode's typical incidents are
            # measured exactly among its own. An HNSW index over every incident was
            # read by nothing and cost each embedded incident an insertion into its
            # graph (m=24, ef_construction=128): 14 of 23 s of embedding at 8,000
            # runs (bench/RESULTS.md, "Measurements behind the product's constants").
        ]

    def __str__(self) -> str:
        return f"{self.kind} in {self.trace_id} at {self.step_index}"


class IncidentText(models.Model):
    """One row per distinct embedded text of a workspace's incidents (their
    `embedding_key`), with its vector. Incident search measures distances here,
    once per text, then reads the incidents of the nearest texts: a failure that
    repeats a thousand times is one vector here, where an index over every
    incident would hold a thousand identical ones (which an HNSW graph navigates
    badly) and a search would measure each."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="incident_text_unique")
        ]
        indexes = [
            HnswIndex(
                name="incident_text_hnsw",
                fields=["embedding"],
                m=24,
                ef_construction=128,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"text {self.key[:12]} of workspace {self.workspace_id}"


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


class DiagnosisState(models.TextChoices):
    DIAGNOSED = "diagnosed", "Diagnosed"
    UNDIAGNOSED = "undiagnosed", "Failed, nothing specific found"
    NOT_FAILED = "not_failed", "Did not fail"
    ERROR = "error", "Diagnosis failed"


class TraceAnalysis(models.Model):
    """A trace's diagnosis: the facts read from it, and what was concluded.

    A trace whose `updated_at` moved past `trace_updated_at` (re-sent steps, a late
    outcome) is looked at again; only a changed `content_hash` (steps, status,
    reward, task, scores) is diagnosed again. The periodic sweep finds traces
    whose analysis message was lost, failed traces diagnosed against a much
    smaller baseline than their agent has now, and runs an older offline
    diagnoser judged.
    """

    trace = models.OneToOneField(
        Trace, on_delete=models.CASCADE, primary_key=True, related_name="analysis"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    trace_updated_at = models.DateTimeField()
    analysed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64, blank=True)
    agent = models.CharField(max_length=200, blank=True)
    # succeeded / failed (as the diagnosis judged it: status, reward threshold,
    # negative score) / unknown: what the agent's baseline counts.
    verdict = models.CharField(max_length=10, blank=True)
    signals = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    tools = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    state = models.CharField(max_length=12, choices=DiagnosisState.choices, blank=True)
    diagnoser = models.CharField(max_length=10, blank=True)
    detail = models.TextField(blank=True)
    baseline_runs = models.PositiveIntegerField(default=0)
    # sha1 of the trace's task key (or its normalised task text): runs of one task.
    task_key = models.CharField(max_length=40, blank=True, default="", db_default="")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    # Null: the model has no price (a local server), so the cost is unknown.
    cost_usd = models.FloatField(default=0, null=True)
    # The offline diagnoser that wrote it (mining.DIAGNOSER_VERSION): after an
    # upgrade the sweep diagnoses the runs an older one judged again, newest first.
    diagnoser_version = models.CharField(max_length=20, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "agent", "verdict"], name="analysis_ws_agent"),
            # Offline analyses by an older diagnoser (mining._older_diagnoser):
            # found as the two ranges around the current version.
            models.Index(
                fields=["diagnoser_version", "-trace"],
                name="analysis_diagnoser_version",
                condition=models.Q(diagnoser__in=["offline", ""]),
            ),
            # An agent's latest runs (its baseline, mining.PROFILE_RUNS), newest first.
            models.Index(fields=["workspace", "agent", "-trace"], name="analysis_ws_agent_latest"),
            models.Index(fields=["workspace", "state"], name="analysis_ws_state"),
            models.Index(fields=["workspace", "task_key", "verdict"], name="analysis_ws_task"),
            # An agent's failed runs diagnosed against a baseline it has outgrown
            # (mining._queue_outgrown), found without reading its other runs.
            models.Index(
                fields=["workspace", "agent", "baseline_runs"],
                name="analysis_ws_agent_outgrown",
                condition=models.Q(verdict="failed", diagnoser="offline"),
            ),
        ]

    def __str__(self) -> str:
        return f"analysis of {self.trace_id} at {self.analysed_at:%Y-%m-%d %H:%M}"


class PendingAnalysis(models.Model):
    """A trace waiting to be diagnosed. Each analysis task queues its traces here
    and the one process that holds the workspace's analysis lock diagnoses them
    in chunks (mining.traces_analyse_queued): traces that arrive while it works
    are diagnosed together, each agent's baseline read once per chunk instead of
    once per ingest request. `version` grows when a queued trace is queued again
    (re-sent while waiting), so the holder never drops a newer request."""

    trace = models.OneToOneField(Trace, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"], name="pending_analysis_ws")]

    def __str__(self) -> str:
        return f"trace {self.trace_id} waiting for analysis"


class DiagnosisSettings(models.Model):
    """A workspace's diagnosis settings: its failure categories and when a
    reward counts as a failure (per agent, else the default)."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="diagnosis_settings"
    )
    # [{"key", "label", "description"}]; empty means the shipped default (taxonomy.py).
    categories = models.JSONField(default=list, blank=True)
    # A trace whose reward is below the threshold failed, whatever its status says.
    default_reward_threshold = models.FloatField(null=True, blank=True)
    reward_thresholds = models.JSONField(default=dict, blank=True)  # {agent: threshold}
    # Tool names that change state, and names that only read, overriding what their
    # names suggest (same-task contrast compares state-changing calls).
    write_tools = models.JSONField(default=list, blank=True, db_default=[])
    read_tools = models.JSONField(default=list, blank=True, db_default=[])
    # An offline incident whose kind of evidence labelled runs show is right less
    # often than this on them is only a weak lead (diagnosis/evidence.py).
    min_precision = models.FloatField(default=0.5, db_default=0.5)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"diagnosis settings of {self.workspace_id}"


class SkipReason(models.TextChoices):
    NOT_A_FAILURE = "not_failure", "Not a failure"
    ENVIRONMENT = "environment", "The environment, not the agent"
    CANT_TELL = "cant_tell", "Can't tell"


class RunLabel(models.Model):
    """A person's judgement of one failed run (failures/labels.py): the step that
    went wrong (or the run as a whole), a category and one sentence, optionally
    the fix; or a skip with its reason. A label becomes a human-sourced incident
    in the failure mode its sentence names; an evaluation harness can send one
    through the API."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="labels")
    step_index = models.IntegerField(help_text="-1: the run as a whole")
    category = models.CharField(max_length=80, blank=True)
    sentence = models.CharField(max_length=300, blank=True)
    fix = models.CharField(max_length=300, blank=True)
    skip_reason = models.CharField(max_length=12, choices=SkipReason.choices, blank=True)
    incident = models.OneToOneField(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="label"
    )
    failure_mode = models.ForeignKey(
        FailureMode, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels"
    )
    # Set on a label made by confirming a candidate of another label.
    confirmed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="confirmed"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    # Who, in words: a user name, or "API key <name>" for a harness's label.
    author_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "step_index"], name="label_unique_step")
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="label_ws_created")]

    def __str__(self) -> str:
        return f"label of {self.trace_id} at {self.step_index}"


class CandidateState(models.TextChoices):
    OFFERED = "offered", "Same failure?"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"


class LabelCandidate(models.Model):
    """A failed run that may have failed the way a label says (failures/
    propagation.py), with its matching step, until a lead confirms or rejects it.
    A rejected run is not offered again for any label of the same mode."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    label = models.ForeignKey(RunLabel, on_delete=models.CASCADE, related_name="candidates")
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+")
    step_index = models.IntegerField()
    score = models.FloatField()
    similarity = models.FloatField(default=0)
    reasons = models.JSONField(default=list, blank=True)
    state = models.CharField(
        max_length=10, choices=CandidateState.choices, default=CandidateState.OFFERED
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["label", "trace"], name="candidate_unique_trace")
        ]
        indexes = [models.Index(fields=["workspace", "state"], name="candidate_ws_state")]

    def __str__(self) -> str:
        return f"candidate {self.trace_id} for label {self.label_id} ({self.state})"


class AgentPolicy(models.Model):
    """An agent's written policy (its system prompt, or what a lead pasted) and the
    version of its rule set (failures/policy.py): each change to a rule bumps it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    agent = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    # The last drafting of rules by the model: when, and what went wrong if it failed.
    drafted_at = models.DateTimeField(null=True, blank=True)
    draft_detail = models.TextField(blank=True)
    drafting = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "agent"], name="agent_policy_unique")
        ]

    def __str__(self) -> str:
        return f"policy of {self.agent}"


class RuleStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PolicyRule(models.Model):
    """One checkable rule of an agent's policy ("cancel only a pending order"): drafted
    by the model or written by a lead; only approved rules are checked."""

    policy = models.ForeignKey(AgentPolicy, on_delete=models.CASCADE, related_name="rules")
    number = models.PositiveIntegerField()  # R1, R2…: stable within the policy
    text = models.CharField(max_length=500)
    # The tools it concerns; empty: any state-changing call.
    tools = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    status = models.CharField(max_length=10, choices=RuleStatus.choices,
                              default=RuleStatus.PROPOSED)  # fmt: skip
    source = models.CharField(max_length=10, default="model")  # model, claude, lead
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_rule_number_unique")
        ]

    def __str__(self) -> str:
        return f"R{self.number}: {self.text[:60]}"
