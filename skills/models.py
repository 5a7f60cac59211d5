from __future__ import annotations

from django.conf import settings
from django.db import models

from failures.models import FailureMode, Incident
from workspaces.models import Workspace


class SkillStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    PUBLISHED = "published", "Published"
    REJECTED = "rejected", "Rejected"
    RETIRED = "retired", "Retired"


class Skill(models.Model):
    """A named skill in a workspace. Agents only ever get `published_version`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=SkillStatus.choices, default=SkillStatus.PROPOSED
    )
    source_mode = models.ForeignKey(
        FailureMode, null=True, blank=True, on_delete=models.SET_NULL, related_name="skills"
    )
    published_version = models.ForeignKey(
        "SkillVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "all": every agent gets the published version; "trial": only the treated
    # arm of its trial (skills.trials.arm_for), the holdout never.
    rollout = models.CharField(
        max_length=5, choices=[("all", "Everyone"), ("trial", "Trial")], default="all"
    )
    # The mode's incident count when the skill was rejected: the mode is drafted
    # again only once new incidents arrive.
    rejected_at_incidents = models.PositiveIntegerField(null=True, blank=True)
    # Other modes whose drafts would only have repeated this skill's instructions:
    # they are among its sources (skills/selectors.py skill_source_modes).
    merged_modes = models.ManyToManyField(FailureMode, blank=True, related_name="merged_skills")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="skill_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def latest_version(self) -> SkillVersion | None:
        # Uses prefetched versions when the query prefetched them (list pages do).
        cached = getattr(self, "_prefetched_objects_cache", {}).get("versions")
        if cached is not None:
            return max(cached, key=lambda v: v.number, default=None)
        return self.versions.order_by("-number").first()

    @property
    def current_trial(self) -> Trial | None:
        """The latest trial (prefetched on list pages)."""
        cached = getattr(self, "_prefetched_objects_cache", {}).get("trials")
        if cached is not None:
            return max(cached, key=lambda t: t.started_at, default=None)
        return self.trials.order_by("-started_at").first()

    @property
    def harmful(self) -> bool:
        """Served on trial while its trial reads "hurts": flagged on the pages."""
        trial = self.current_trial
        return (self.status == SkillStatus.PUBLISHED and self.rollout == "trial"
                and trial is not None and trial.verdict == "hurts")  # fmt: skip


class Authorship(models.TextChoices):
    USER = "user", "A person"
    LLM = "llm", "A model"
    OFFLINE = "offline", "Drafted offline"


class SkillVersion(models.Model):
    """One immutable text of a skill."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    description = models.CharField(max_length=1024)
    body = models.TextField()
    source_mode = models.ForeignKey(
        FailureMode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evidence = models.ManyToManyField(Incident, blank=True, related_name="skill_versions")
    authorship = models.CharField(max_length=10, choices=Authorship.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0, null=True)  # null: the model has no price
    # Reviewer warnings: URLs, commands or credentials the incidents do not contain.
    flags = models.JSONField(default=list, blank=True)
    # Itemised: [{"id", "section", "text", "because", "counts", "kind"}]
    # (skills/instructions.py); empty for versions from before instructions.
    instructions = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["skill", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["skill", "number"], name="skillversion_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.skill.name}@{self.number}"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    DRAFTING = "drafting", "Drafting"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DistillationJob(models.Model):
    """One request to draft a skill from a failure mode, and how it went."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    failure_mode = models.ForeignKey(
        FailureMode, on_delete=models.CASCADE, related_name="distillation_jobs"
    )
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    verdict = models.CharField(max_length=10, blank=True)  # new / revise / skip
    detail = models.TextField(blank=True)
    version = models.ForeignKey(
        SkillVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The mode's incident count when the job was queued: the loop drafts a mode
    # again only once its evidence grew past this.
    mode_incidents = models.PositiveIntegerField(default=0)
    # Instructions the gate kept from the lead, each {"text", "reason"} (mode page).
    held_back = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one job in flight per mode: a second click reuses it.
            models.UniqueConstraint(
                fields=["failure_mode"],
                condition=models.Q(state__in=["queued", "drafting"]),
                name="distill_one_active_per_mode",
            )
        ]

    def __str__(self) -> str:
        return f"distill mode {self.failure_mode_id}: {self.state}"


class FetchLog(models.Model):
    """Which skills an agent fetched, so metrics can attribute its traces."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        "workspaces.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=20)
    skills = models.JSONField(default=list)  # ["name@version", ...]
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Attribution: "which skills did this session fetch?"
            models.Index(fields=["workspace", "session_id"], name="fetchlog_ws_session"),
        ]

    def __str__(self) -> str:
        return f"{self.agent or 'agent'} fetched {len(self.skills)} skills"


class WebhookEndpoint(models.Model):
    """Where a workspace wants to hear about publications."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="webhook")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    # "json": the signed event object; "slack": a Slack-compatible {"text": ...}.
    format = models.CharField(max_length=10, default="json", db_default="json",
                              choices=[("json", "JSON event"), ("slack", "Slack-compatible text")])  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    state = models.CharField(max_length=10, default="pending")  # pending / delivered / failed
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id}: {self.state}"


class PublishedSet(models.Model):
    """What `GET /api/v1/skills` answers for a workspace, kept by every review
    transition (skills.publication). Agents poll the list on every run: the key
    check, this row and the response come from one query."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="published_skills"
    )
    etag = models.CharField(max_length=34)
    items = models.JSONField(default=list)  # the API's SkillOut objects, by name
    first_page = models.TextField()  # the JSON body of the unparameterised list, as served
    refs = models.JSONField(default=list)  # ["name@version", ...] for the fetch log
    # Skills on trial: [{"name", "skill_id", "trial_id", "version_id", "holdout"}];
    # when any, the set depends on the session and the views answer.
    trials = models.JSONField(default=list)
    refreshed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.etag}"


class SkillAlias(models.Model):
    """A name a skill had before a rename: the skills API answers it with 301 to
    the new name while the skill is published, else 410."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="skillalias_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.skill_id}"


class Trial(models.Model):
    """A randomised trial of one published skill version: a share of sessions is
    held out (skills.trials). Measurement runs from `started_at` until the planned
    size is reached or a lead decides (`ended_at`); until a decision the split
    stays, so a session keeps seeing the same set."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="trials")
    version = models.ForeignKey(SkillVersion, on_delete=models.CASCADE, related_name="+")
    holdout_share = models.FloatField(default=0.5)
    # Planning inputs: the failure mode's share of traces among the exposed agents
    # before the trial, and the smallest relative cut worth detecting.
    baseline_rate = models.FloatField(null=True, blank=True)
    baseline_success = models.FloatField(null=True, blank=True)  # same agents, same 30 days
    min_change = models.FloatField(default=0.5)
    planned_per_arm = models.PositiveIntegerField()
    # The agents its failure modes had occurred in when it started: the effect is
    # measured on their traces (skills.selectors.trial_exposed_agents).
    agents = models.JSONField(default=list)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)
    # Kept by metrics.services.trials_refresh, so pages below metrics can flag it.
    verdict = models.CharField(max_length=30, blank=True)
    verdict_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["skill"], condition=models.Q(ended_at=None), name="trial_one_running"
            )
        ]

    def __str__(self) -> str:
        return f"trial of {self.skill_id} v{self.version_id}"

    @property
    def running(self) -> bool:
        return self.ended_at is None


class TrialAssignment(models.Model):
    """A session's arm in a trial, recorded when the session first asked for skills."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="assignments")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    session_id = models.CharField(max_length=200)
    arm = models.CharField(max_length=8)  # treated / holdout
    version = models.ForeignKey(SkillVersion, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "session_id"], name="assignment_unique")
        ]
        indexes = [models.Index(fields=["workspace", "session_id"], name="assignment_ws_session")]

    def __str__(self) -> str:
        return f"{self.session_id} → {self.arm}"


class AlertSent(models.Model):
    """An alert already sent (skills/alerts.py): each is sent once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="alert_sent_once")]

    def __str__(self) -> str:
        return self.key
