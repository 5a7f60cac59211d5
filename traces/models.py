from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Cast, Left

from workspaces.models import Workspace

# Characters of each text a search vector reads (a trace's task; a step's input,
# output and error): words past them are not found by trace search.
SEARCH_CHARS = 20_000


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
    # A span a framework makes for its own structure (an agent run, a graph node, a
    # chain, a loop's turn), which holds the agent's calls but is not one of them.
    SPAN = "span", "Framework step"


class Trace(models.Model):
    # No index of its own: every index of the table leads with the workspace.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="traces", db_index=False
    )
    external_id = models.CharField(max_length=200)
    agent = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    task = models.TextField(blank=True)
    # Runs of the same task share it (a benchmark's task id, a ticket type…): the
    # diagnosis compares a failed run with successful runs of its task. Empty: the
    # normalised task text stands in.
    task_key = models.CharField(max_length=200, blank=True, default="", db_default="")
    # Named checks of the outcome, as a harness reported them: [{"name", "passed",
    # "detail"}] (tau2's db_match, a test suite's tests, any named assertion).
    checks = models.JSONField(default=list, blank=True, db_default=[])
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
    # Of those, the framework steps (kind "span": an agent's, a chain's or a graph
    # node's span, which groups the calls inside it) and how many of them carry an
    # error (mostly one a call inside raised, recorded again on each span around
    # it). Per-step success counts calls only: steps minus these.
    span_count = models.PositiveIntegerField(default=0, db_default=0)
    span_error_count = models.PositiveIntegerField(default=0, db_default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    redaction_counts = models.JSONField(default=dict, blank=True)
    # The counts per part ("trace", and each step index): a trace sent in pieces
    # sums its parts (traces/ingest.py), so a re-sent piece is not counted twice.
    redaction_parts = models.JSONField(default=dict, blank=True, db_default={})
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A digest of the trace as it was last sent (services.content_digest): the
    # same trace sent again is answered `unchanged` and neither written nor
    # analysed again. Empty for traces written before it, or by other paths.
    content_digest = models.CharField(max_length=32, blank=True, default="", db_default="")
    # The words of its task and its ids. Trace search reads them through TraceWords
    # (one GIN index over runs) and checks a phrase here run by run, so this column
    # needs no index of its own.
    search_vector = models.GeneratedField(
        expression=SearchVector(
            Left("task", SEARCH_CHARS), "external_id", "session_id", config="simple"
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

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
            # Trial attribution: "the traces of this session".
            models.Index(fields=["workspace", "session_id"], name="trace_ws_session"),
            # Skill-cohort queries: "traces that had skill X in scope".
            GinIndex(fields=["skills_in_scope"], name="trace_skills_gin"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def redaction_total(self) -> int:
        return sum(self.redaction_counts.values())


class Step(models.Model):
    # No index of its own: step_unique_index (trace, index) leads with it, and a
    # second index on every step row cost each ingested step another insertion.
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="steps", db_index=False)
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=StepKind.choices)
    name = models.CharField(max_length=200, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(null=True, blank=True)
    # The step this one ran inside (a subagent's calls, a child span).
    parent_index = models.PositiveIntegerField(null=True, blank=True)
    # The words of a step: its tool, input, output and error, the first SEARCH_CHARS
    # characters of each. Trace search finds runs by TraceWords (all their steps'
    # words) and checks a phrase against these, step by step.
    search_vector = models.GeneratedField(
        expression=SearchVector(
            "name",
            Left(Cast("input", models.TextField()), SEARCH_CHARS),
            Left(Cast("output", models.TextField()), SEARCH_CHARS),
            Left("error", SEARCH_CHARS),
            config="simple",
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

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

    @property
    def by_simulated_user(self) -> bool:
        """A simulated user's own tool call (tau2's phone), named `user.<tool>` by the
        importers: not the agent's."""
        return self.name.startswith(SIMULATED_USER_PREFIX)


# How the importers name a simulated user's own tool calls (tau2 telecom: the phone).
SIMULATED_USER_PREFIX = "user."


class TraceWords(models.Model):
    """Every word of one run, for the trace list's search: its task and ids and each
    step's tool, input, output and error (their search vectors' lexemes, without
    positions). One GIN index over runs finds a word's runs without reading its
    steps; the narrow row (the words are stored out of line) lets the newest
    matches be sorted without visiting the traces.

    Kept by triggers in the database (migration 0014): every statement that writes
    traces or steps (the set-based ingest, OTLP, transcripts, the ORM) rewrites the
    rows of the runs it touched, so no writer can leave it stale. The text is
    capped at about 500 KB a run (steps after that add nothing)."""

    trace = models.OneToOneField(
        Trace, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    started_at = models.DateTimeField()
    words = SearchVectorField()

    class Meta:
        indexes = [
            GinIndex(fields=["words"], name="trace_words_gin"),
            # The newest matches of a common word: runs walked newest first.
            models.Index(
                fields=["workspace", "-started_at", "-trace"], name="trace_words_ws_started"
            ),
        ]

    def __str__(self) -> str:
        return f"words of trace {self.trace_id}"


class StepKey(models.Model):
    """The step a server-made key names in a hook session (`claude_code`): a tool
    call ("tool:" and a hash of its id), a subagent or an event. A hook event looks
    up its own key, so the event costs the same at the session's 10th call as at
    its 2,000th; a transcript merged into the session rewrites them
    (`transcripts.py`)."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=64)
    index = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "key"], name="step_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} {self.key} → {self.index}"


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
    checks = models.JSONField(default=list, blank=True, db_default=[])
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


class SavedView(models.Model):
    """A named set of trace-list filters, one person's own in one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="saved_views")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_trace_views"
    )
    name = models.CharField(max_length=80)
    # The filters as a query string, rebuilt from the filter form's valid fields only.
    query = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user", "name"], name="traces_saved_view_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name
