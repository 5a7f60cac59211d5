from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Workspace(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    # Stop serving a skill on trial as soon as its interval says it hurts.
    pause_harmful_skills = models.BooleanField(default=False, db_default=False)
    # Pages show times in this zone (an IANA name); rollups stay by UTC day.
    time_zone = models.CharField(max_length=64, default="UTC", db_default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    LEAD = "lead", "Lead"
    VIEWER = "viewer", "Viewer"


# Higher rank can do everything a lower rank can.
ROLE_RANK = {Role.VIEWER: 0, Role.LEAD: 1, Role.ADMIN: 2}


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    # Alerts (new failure modes, jumps, harmful skills) by email; leads and admins.
    email_alerts = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class Scope(models.TextChoices):
    INGEST = "ingest", "Send traces (ingest)"
    SKILLS_READ = "skills:read", "Read published skills (skills:read)"
    EXPORT = "export", "Make and download training snapshots (export)"
    FAILURES_READ = "failures:read", "Search incidents and failure modes (failures:read)"
    FAILURES_WRITE = "failures:write", "Label failed runs (failures:write)"


class ApiKey(models.Model):
    """A workspace's API key. Only a SHA-256 of the secret is stored.

    The full key is `hm_<prefix>_<secret>`; the prefix is stored in clear so a key
    can be found by it and recognised in lists. Keys are 256-bit random values, so
    a fast hash is enough: there is nothing to brute-force as with passwords.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Optional: after this the key is refused (401), like a revoked one.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"hm_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()


class PiiPolicy(models.Model):
    """What the redaction engine removes before a workspace's traces are stored."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="pii_policy")
    capture_enabled = models.BooleanField(
        default=True, help_text="When off, the ingest endpoints refuse traces (403)."
    )
    redact_emails = models.BooleanField(default=True)
    redact_phone_numbers = models.BooleanField(default=True)
    redact_credit_cards = models.BooleanField(default=True)
    redact_ip_addresses = models.BooleanField(default=True)
    redact_national_ids = models.BooleanField(default=True)
    redact_secrets = models.BooleanField(
        default=True, help_text="API keys, tokens, JWTs, Bearer values, private keys."
    )
    custom_patterns = models.JSONField(
        default=list,
        blank=True,
        help_text='Extra rules: a list of {"name": "ORDER_ID", "pattern": "ORD-\\\\d+"}.',
    )
    retention_days = models.PositiveIntegerField(
        default=90, help_text="Traces older than this are purged; rollups are kept."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PII policy"
        verbose_name_plural = "PII policies"

    def __str__(self) -> str:
        return f"PII policy of {self.workspace}"


class AuditEvent(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as text too, so the log still says who acted after a user is deleted.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    object_label = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Serves the audit-log page: newest events of one workspace first.
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_ws_created")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type}:{self.object_id}"


class RateWindow(models.Model):
    """A fixed-window request counter shared by every process (PostgreSQL is the one
    store all web workers see; no broker or cache is needed). Keys look like
    `ingest:key:<id>` or `login:<username>:<ip>`; old windows are swept."""

    key = models.CharField(max_length=300)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="rate_window_unique")
        ]
        indexes = [models.Index(fields=["window_start"], name="rate_window_start")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.count}"


class KnownAddress(models.Model):
    """An address a user logged in from successfully (hashed). Failed attempts from
    elsewhere cannot lock the user out of logging in from here."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address_hash = models.CharField(max_length=64)
    last_login_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "address_hash"], name="known_address_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} from {self.address_hash[:8]}…"


class Invitation(models.Model):
    """An invitation to join a workspace, sent by email. Only a SHA-256 of the
    link's secret is stored; the person who opens the link accepts it (signing in,
    or creating an account), so nobody is added to a workspace without consent and
    the admin who invites learns nothing about which accounts exist."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    secret_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.workspace}"

    @property
    def is_open(self) -> bool:
        from django.utils import timezone

        return (
            self.accepted_at is None and self.revoked_at is None
            and self.expires_at > timezone.now()
        )  # fmt: skip


class Provider(models.TextChoices):
    DEFAULT = "default", "As the server is configured"
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "An OpenAI-compatible server"
    OFFLINE = "offline", "No model (offline)"


class ModelSettings(models.Model):
    """Which model a workspace's diagnosis, mode names and drafts use (workspaces/llm.py):
    the server's default (environment), Anthropic, an OpenAI-compatible
    chat-completions server of the team's own (vLLM, Ollama, llama.cpp, LM Studio, a
    gateway), or none. The API key is stored encrypted and never shown again."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="model_settings"
    )
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.DEFAULT)
    base_url = models.CharField(max_length=500, blank=True)
    model = models.CharField(max_length=200, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    # USD per million tokens; null: unknown (a local model), and costs show as unknown.
    price_in = models.FloatField(null=True, blank=True)
    price_out = models.FloatField(null=True, blank=True)
    # Spending limit per calendar month (UTC), in USD; null: none.
    monthly_budget_usd = models.FloatField(null=True, blank=True)
    # The last connection check (Settings → Model → Check): its time and outcome.
    checked_at = models.DateTimeField(null=True, blank=True)
    check_ok = models.BooleanField(default=False)
    check_detail = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"model settings of {self.workspace_id}"


class ModelUsage(models.Model):
    """What a workspace's model calls cost, per UTC day and purpose: the budget's meter."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    purpose = models.CharField(max_length=20)  # diagnosis, naming, drafting, check
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(default=0)
    # Calls whose cost is unknown (no price for the model).
    unpriced_calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "purpose"], name="model_usage_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"model usage of {self.workspace_id} on {self.day}"
