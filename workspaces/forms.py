from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import PiiPolicy, Provider, Role, Scope
from .redaction import POLICY_SWITCHES, validate_custom_pattern


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Who will use it, e.g. 'checkout-agent (prod)'.",
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.INGEST, Scope.SKILLS_READ],
    )
    expires_in_days = forms.TypedChoiceField(
        label="Expires", required=False, coerce=int, empty_value=None,
        choices=[("", "Never"), (30, "In 30 days"), (90, "In 90 days"), (365, "In a year")],
    )  # fmt: skip


class MemberAddForm(forms.Form):
    email = forms.EmailField(
        label="Email", max_length=254,
        help_text="They get a link to join (signing in, or creating an account).",
    )  # fmt: skip
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _parse_patterns(text: str) -> list[dict[str, str]]:
    """One rule per line: `NAME: regex`."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, pattern = line.partition(":")
        if not sep or not name.strip() or not pattern.strip():
            raise forms.ValidationError(
                f"Line {number}: write each rule as NAME: regex, e.g. ORDER_ID: ORD-\\d+"
            )
        error = validate_custom_pattern(pattern.strip())
        if error:
            raise forms.ValidationError(f"Line {number} ({name.strip()}): {error}")
        rules.append({"name": name.strip(), "pattern": pattern.strip()})
    return rules


class PiiPolicyForm(forms.Form):
    capture_enabled = forms.BooleanField(
        required=False, label="Accept traces",
        help_text="Off: the ingest endpoints refuse traces with 403.",
    )  # fmt: skip
    redact_emails = forms.BooleanField(required=False, label=POLICY_SWITCHES["redact_emails"])
    redact_phone_numbers = forms.BooleanField(
        required=False, label=POLICY_SWITCHES["redact_phone_numbers"]
    )
    redact_credit_cards = forms.BooleanField(
        required=False, label=POLICY_SWITCHES["redact_credit_cards"]
    )
    redact_ip_addresses = forms.BooleanField(
        required=False, label=POLICY_SWITCHES["redact_ip_addresses"]
    )
    redact_national_ids = forms.BooleanField(
        required=False, label=POLICY_SWITCHES["redact_national_ids"]
    )
    redact_secrets = forms.BooleanField(required=False, label=POLICY_SWITCHES["redact_secrets"])
    custom_patterns = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        label="Custom patterns", help_text="One per line: NAME: regex (e.g. ORDER_ID: ORD-\\d+). RE2 syntax: no "
                  "look-around or back-references, so no pattern can stall ingest.",
    )  # fmt: skip
    retention_days = forms.IntegerField(
        min_value=1, max_value=3650, label="Keep traces for (days)",
        help_text="Counted from when a trace reached Hivemind (imported history too): older "
                  "traces, steps and incidents are purged daily; charts keep their rollups.",
    )  # fmt: skip
    sample = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)

    @classmethod
    def for_policy(cls, policy: PiiPolicy) -> PiiPolicyForm:
        initial = {name: getattr(policy, name) for name in POLICY_FIELDS}
        initial["custom_patterns"] = "\n".join(
            f"{r['name']}: {r['pattern']}" for r in policy.custom_patterns
        )
        return cls(initial=initial)

    def clean_custom_patterns(self) -> list[dict[str, str]]:
        return _parse_patterns(self.cleaned_data.get("custom_patterns") or "")

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in POLICY_FIELDS}


POLICY_FIELDS = ("capture_enabled", *POLICY_SWITCHES, "custom_patterns", "retention_days")


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=60)
    object_type = forms.CharField(required=False, max_length=60, label="Object")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class InviteSignupForm(UserCreationForm):
    """A new account for someone accepting an invitation (email comes from it)."""


class WorkspaceCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name",
                           help_text="Your team or product, e.g. “Checkout agents”.")  # fmt: skip
    slug = forms.SlugField(max_length=50, required=False, label="Address (optional)",
                           help_text="Lower-case letters, digits and dashes; made from the name "
                                     "when empty. It appears in links: /w/<address>/.")  # fmt: skip


class ModelSettingsForm(forms.Form):
    """Settings → Model: which model the workspace's diagnosis, names and drafts use."""

    provider = forms.ChoiceField(choices=Provider.choices, label="Model", widget=forms.RadioSelect)
    base_url = forms.CharField(
        required=False, max_length=500, label="Base URL",
        help_text="OpenAI-compatible: the server's /v1 URL, e.g. http://127.0.0.1:11434/v1 "
                  "(Ollama) or http://vllm:8000/v1. Anthropic: leave empty.",
    )  # fmt: skip
    model = forms.CharField(required=False, max_length=200, label="Model name",
                            help_text="e.g. claude-haiku-4-5, llama3.1:8b, Qwen/Qwen2.5-7B-Instruct.")  # fmt: skip
    api_key = forms.CharField(
        required=False, max_length=500, label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: stored encrypted, never shown again. Empty keeps the stored "
                  "key; a local server may need none.",
    )  # fmt: skip
    clear_key = forms.BooleanField(required=False, label="Remove the stored key")
    price_in = forms.FloatField(
        required=False, min_value=0, label="Price in (USD per million tokens)"
    )
    price_out = forms.FloatField(
        required=False, min_value=0, label="Price out (USD per million tokens)"
    )
    monthly_budget_usd = forms.FloatField(
        required=False, min_value=0, label="Monthly budget (USD)",
        help_text="Beyond it, runs are diagnosed offline until the month ends. Empty: no limit.",
    )  # fmt: skip

    @classmethod
    def for_settings(cls, found: Any) -> ModelSettingsForm:
        if found is None:
            return cls(initial={"provider": Provider.DEFAULT})
        return cls(initial={
            "provider": found.provider, "base_url": found.base_url, "model": found.model,
            "price_in": found.price_in, "price_out": found.price_out,
            "monthly_budget_usd": found.monthly_budget_usd,
        })  # fmt: skip
