"""Writes for workspaces, members, API keys, PII policy and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from .errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from .models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    ModelSettings,
    PiiPolicy,
    Role,
    Scope,
    Workspace,
)

KEY_PREFIX_BYTES = 6
KEY_SECRET_BYTES = 32
# last_used_at is informational; writing it on every request would turn every
# API read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_secret(full_key: str) -> str:
    return hashlib.sha256(full_key.encode()).hexdigest()


def audit_record(
    *,
    workspace: Workspace,
    actor: User | None,
    action: str,
    obj: Any,
    before: dict | None = None,
    after: dict | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one event to the workspace's audit log."""
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label or (actor.get_username() if actor is not None else "system"),
        action=action,
        object_type=type(obj).__name__,
        object_id=str(obj.pk),
        object_label=str(obj)[:200],
        before=before,
        after=after,
    )


@transaction.atomic
def workspace_create(*, name: str, owner: User, slug: str = "") -> Workspace:
    """Create a workspace with its default PII policy; the owner becomes admin."""
    if not name.strip():
        raise InvalidInput("Give the workspace a name.")
    slug = slug or slugify(name)[:50]
    if not slug:
        raise InvalidInput("Choose an address of letters, digits and dashes.")
    if Workspace.objects.filter(slug=slug).exists():
        raise InvalidInput(f"The address '{slug}' is taken; choose another.")
    workspace = Workspace.objects.create(name=name.strip(), slug=slug)
    PiiPolicy.objects.create(workspace=workspace)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.ADMIN)
    audit_record(workspace=workspace, actor=owner, action="workspace.create", obj=workspace)
    return workspace


@transaction.atomic
def membership_set(
    *, workspace: Workspace, user: User, role: str, actor: User | None
) -> Membership:
    """Add a user to a workspace, or change their role."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    membership, created = Membership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    before = None if created else {"role": membership.role}
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    audit_record(
        workspace=workspace,
        actor=actor,
        action="membership.add" if created else "membership.change",
        obj=membership,
        before=before,
        after={"role": role},
    )
    return membership


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    secret: str  # the full key; shown once, never stored


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    scopes: list[str],
    actor: User | None,
    expires_in_days: int | None = None,
) -> NewApiKey:
    """Create a key and return its full secret, which is never stored. With
    `expires_in_days` the key is refused from then on."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise InvalidInput(f"Unknown scope(s): {', '.join(unknown)}.")
    if not scopes:
        raise InvalidInput("Choose at least one scope.")
    if not name.strip():
        raise InvalidInput("Give the key a name, e.g. the agent that will use it.")
    prefix = secrets.token_hex(KEY_PREFIX_BYTES)
    full_key = f"hm_{prefix}_{secrets.token_urlsafe(KEY_SECRET_BYTES)}"
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name.strip()[:100],
        prefix=prefix,
        secret_hash=hash_secret(full_key),
        scopes=sorted(set(scopes)),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    audit_record(
        workspace=workspace,
        actor=actor,
        action="api_key.create",
        obj=api_key,
        after={"name": api_key.name, "scopes": api_key.scopes, "prefix": prefix},
    )
    return NewApiKey(api_key=api_key, secret=full_key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(workspace=api_key.workspace, actor=actor, action="api_key.revoke", obj=api_key)
    return api_key


def api_key_prefix(raw_key: str) -> str:
    """The lookup prefix of a presented key, or raise if it cannot be one of ours."""
    parts = raw_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "hm" or not parts[1]:
        raise AuthenticationFailed(
            "Malformed API key: expected 'Authorization: Bearer hm_<prefix>_<secret>'."
        )
    return parts[1]


def api_key_authenticate(*, raw_key: str, scope: str | None) -> ApiKey:
    """Resolve a presented key to its ApiKey, or raise with a reason a client can act on."""
    prefix = api_key_prefix(raw_key)
    api_key = ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
    return api_key_verify(api_key=api_key, raw_key=raw_key, scope=scope)


def api_key_verify(*, api_key: ApiKey | None, raw_key: str, scope: str | None) -> ApiKey:
    """Check a looked-up key row against the presented secret, revocation and scope.

    Split from the lookup so a hot path can load the key together with what it
    serves in one query (the skills list does) and still apply these rules.
    """
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_secret(raw_key)):
        raise AuthenticationFailed("Unknown API key. Check the key, or create one in Settings.")
    if api_key.revoked_at is not None:
        raise AuthenticationFailed(
            f"This API key was revoked on {api_key.revoked_at:%Y-%m-%d %H:%M} UTC; create a new one."
        )
    if api_key.is_expired:
        assert api_key.expires_at is not None
        raise AuthenticationFailed(
            f"This API key expired on {api_key.expires_at:%Y-%m-%d %H:%M} UTC; create a new one."
        )
    if scope is not None and scope not in api_key.scopes:
        raise PermissionDenied(
            f"This API key lacks the '{scope}' scope (it has: {', '.join(api_key.scopes) or 'none'})."
        )
    _touch_last_used(api_key)
    return api_key


def _touch_last_used(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    link: str  # shown once to the admin and sent by email; only its hash is stored


INVITE_PREFIX = "inv_"


@transaction.atomic
def invitation_create(*, workspace: Workspace, email: str, role: str, actor: User) -> NewInvitation:
    """Invite someone by email. Nothing says whether an account with that email
    exists: the person accepts from the link, signing in or creating an account.
    A second invitation to the same address replaces the open one."""
    from django.conf import settings
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email
    from django.urls import reverse

    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(f"{email!r} is not an email address.") from None
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    now = timezone.now()
    Invitation.objects.filter(
        workspace=workspace, email__iexact=email, accepted_at=None, revoked_at=None
    ).update(revoked_at=now)
    secret = INVITE_PREFIX + secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        workspace=workspace, email=email, role=role, secret_hash=hash_secret(secret),
        invited_by=actor, expires_at=now + timedelta(days=settings.HIVEMIND_INVITE_DAYS),
    )  # fmt: skip
    audit_record(workspace=workspace, actor=actor, action="invitation.create", obj=invitation,
                 after={"email": email, "role": role})  # fmt: skip
    link = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + reverse("invitation", args=[secret])
    return NewInvitation(invitation=invitation, link=link)


def invitation_send(*, new: NewInvitation) -> None:
    """Email the link (Django's configured backend: the console unless SMTP is set)."""
    from django.conf import settings
    from django.core.mail import send_mail

    invitation = new.invitation
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An admin"
    send_mail(
        subject=f"You are invited to {invitation.workspace.name} on Hivemind",
        message=(
            f"{inviter} invites you to the workspace {invitation.workspace.name} on Hivemind "
            f"as {invitation.get_role_display().lower()}.\n\n"
            f"Open this link to accept (it works once, for "
            f"{settings.HIVEMIND_INVITE_DAYS} days):\n{new.link}\n\n"
            "If you did not expect this, ignore it: nothing happens until the link is used."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_by_secret(*, secret: str) -> Invitation:
    """The open invitation this link names; NotFound for a wrong, used, revoked or
    expired link (one message for all, so a link reveals nothing)."""
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(secret_hash=hash_secret(secret))
        .first()
    )
    if invitation is None or not invitation.is_open:
        raise NotFound(
            "This invitation link is not valid: it was already used, withdrawn, or it "
            "expired. Ask the workspace admin for a new one."
        )
    return invitation


@transaction.atomic
def invitation_accept(*, secret: str, user: User) -> Membership:
    """The signed-in `user` accepts: they become a member with the invited role (a
    member already keeps the higher of the two roles)."""
    invitation = invitation_by_secret(secret=secret)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:  # accepted by a concurrent request
        raise NotFound("This invitation link was already used.")
    existing = Membership.objects.filter(workspace=invitation.workspace, user=user).first()
    role = invitation.role
    if existing is not None and existing.has_role(role):
        role = existing.role
    membership = membership_set(workspace=invitation.workspace, user=user, role=role,
                                actor=user)  # fmt: skip
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(workspace=invitation.workspace, actor=user, action="invitation.accept",
                 obj=invitation, after={"email": invitation.email, "role": role})  # fmt: skip
    return membership


@transaction.atomic
def invitation_revoke(*, workspace: Workspace, pk: int, actor: User) -> Invitation:
    invitation = Invitation.objects.filter(workspace=workspace, pk=pk).first()
    if invitation is None:
        raise NotFound("No such invitation in this workspace.")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(workspace=workspace, actor=actor, action="invitation.revoke",
                     obj=invitation, before={"email": invitation.email})  # fmt: skip
    return invitation


def _admins_left(workspace: Workspace, excluding: Membership) -> int:
    # Locked: two admins demoting each other at once must not leave none.
    admins = Membership.objects.select_for_update().filter(workspace=workspace, role=Role.ADMIN)
    return len(admins.exclude(pk=excluding.pk).values_list("pk", flat=True))


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: User) -> Membership:
    if (
        membership.role == Role.ADMIN
        and role != Role.ADMIN
        and not _admins_left(membership.workspace, membership)
    ):
        raise Conflict("A workspace needs at least one admin; make someone else admin first.")
    return membership_set(workspace=membership.workspace, user=membership.user, role=role,
                          actor=actor)  # fmt: skip


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    if membership.role == Role.ADMIN and not _admins_left(membership.workspace, membership):
        raise Conflict("A workspace needs at least one admin; make someone else admin first.")
    audit_record(
        workspace=membership.workspace, actor=actor, action="membership.remove", obj=membership,
        before={"user": membership.user.get_username(), "role": membership.role},
    )  # fmt: skip
    membership.delete()


@transaction.atomic
def pii_policy_update(*, workspace: Workspace, changes: dict[str, Any], actor: User) -> PiiPolicy:
    """Change the workspace's PII policy (switches, custom patterns, retention, capture)."""
    from .redaction import validate_custom_pattern

    for rule in changes.get("custom_patterns", []):
        error = validate_custom_pattern(rule.get("pattern", ""))
        if error:
            raise InvalidInput(f"Pattern {rule.get('name', '')!r}: {error}")
    if "retention_days" in changes and not 1 <= int(changes["retention_days"]) <= 3650:
        raise InvalidInput("Retention must be between 1 and 3650 days.")
    policy, _ = PiiPolicy.objects.select_for_update().get_or_create(workspace=workspace)
    before = {name: getattr(policy, name) for name in changes}
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()
    after = {name: getattr(policy, name) for name in changes}
    changed = {k: v for k, v in after.items() if before[k] != v}
    if changed:
        audit_record(
            workspace=workspace, actor=actor, action="pii_policy.change", obj=policy,
            before={k: before[k] for k in changed}, after=changed,
        )  # fmt: skip
    return policy


@transaction.atomic
def workspace_time_zone_set(*, workspace: Workspace, time_zone: str, actor: User) -> None:
    """The zone the workspace's pages show times in (an IANA name, e.g. Europe/Paris)."""
    from zoneinfo import available_timezones

    time_zone = time_zone.strip()
    if time_zone not in available_timezones() and time_zone != "UTC":
        raise InvalidInput(f"“{time_zone[:64]}” is not a time zone name; use one like "
                           "Europe/Paris or America/New_York.")  # fmt: skip
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    before = workspace.time_zone
    workspace.time_zone = time_zone
    workspace.save(update_fields=["time_zone"])
    audit_record(workspace=workspace, actor=actor, action="workspace.time_zone", obj=workspace,
                 before={"time_zone": before}, after={"time_zone": time_zone})  # fmt: skip


@transaction.atomic
def workspace_trial_settings_save(
    *, workspace: Workspace, pause_harmful: bool, actor: User
) -> None:
    """Whether a skill on trial stops being served as soon as its trial shows harm."""
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    before = workspace.pause_harmful_skills
    workspace.pause_harmful_skills = pause_harmful
    workspace.save(update_fields=["pause_harmful_skills"])
    audit_record(workspace=workspace, actor=actor, action="workspace.trial_settings",
                 obj=workspace, before={"pause_harmful_skills": before},
                 after={"pause_harmful_skills": pause_harmful})  # fmt: skip


def membership_email_alerts_set(*, membership: Membership, on: bool, actor: User) -> None:
    """Whether this lead or admin gets the workspace's alerts by email."""
    before = membership.email_alerts
    Membership.objects.filter(pk=membership.pk).update(email_alerts=on)
    audit_record(workspace=membership.workspace, actor=actor, action="membership.email_alerts",
                 obj=membership, before={"email_alerts": before}, after={"email_alerts": on})  # fmt: skip


def identifier_redact(*, workspace_id: int, value: str) -> str:
    """An identifier a client names outside a trace (an agent or session header, an
    MCP tool's session id) as storage may hold it: what the workspace's policy
    removes, built-in kinds and the admin's own patterns alike, becomes a stable
    pseudonym (so the same session keeps its trial arm and its fetch-log rows)."""
    from collections import Counter

    from .redaction import redactor_for_policy
    from .textsafety import clean_text

    value = clean_text(value)
    if not value:
        return value
    policy, _ = PiiPolicy.objects.get_or_create(workspace_id=workspace_id)
    return redactor_for_policy(policy).identifier(value, Counter())


@transaction.atomic
def model_settings_save(
    *,
    workspace: Workspace,
    actor: User,
    provider: str,
    base_url: str = "",
    model: str = "",
    api_key: str = "",
    clear_key: bool = False,
    price_in: float | None = None,
    price_out: float | None = None,
    monthly_budget_usd: float | None = None,
) -> ModelSettings:
    """Choose the workspace's model (workspaces/llm.py). An empty `api_key` keeps the
    stored one; the key never reaches the audit log, only whether it changed."""
    from django.conf import settings as django_settings

    from .llm import key_encrypt
    from .models import Provider

    if provider not in Provider.values:
        raise InvalidInput(f"“{provider[:40]}” is not a model choice.")
    base_url, model = base_url.strip(), model.strip()
    if base_url and not base_url.lower().startswith(("http://", "https://")):
        raise InvalidInput("The base URL must start with http:// or https://.")
    for name, value in (("price in", price_in), ("price out", price_out),
                        ("monthly budget", monthly_budget_usd)):  # fmt: skip
        if value is not None and value < 0:
            raise InvalidInput(f"The {name} cannot be negative.")
    found, _ = ModelSettings.objects.select_for_update().get_or_create(workspace=workspace)
    has_key = bool(api_key.strip()) or (bool(found.api_key_encrypted) and not clear_key)
    if provider == Provider.OPENAI and not (base_url and model):
        raise InvalidInput("An OpenAI-compatible server needs its base URL (ending in /v1, "
                           "e.g. http://127.0.0.1:11434/v1) and a model name.")  # fmt: skip
    if provider == Provider.ANTHROPIC and not has_key and not django_settings.ANTHROPIC_API_KEY:
        raise InvalidInput("Anthropic needs an API key (the server has none in its "
                           "environment).")  # fmt: skip
    fields = ("provider", "base_url", "model", "price_in", "price_out", "monthly_budget_usd")
    before = {name: getattr(found, name) for name in fields}
    had_key = bool(found.api_key_encrypted)
    found.provider, found.base_url, found.model = provider, base_url, model
    found.price_in, found.price_out = price_in, price_out
    found.monthly_budget_usd = monthly_budget_usd
    key_change = ""
    if api_key.strip():
        found.api_key_encrypted = key_encrypt(api_key.strip())
        key_change = "replaced" if had_key else "set"
    elif clear_key and found.api_key_encrypted:
        found.api_key_encrypted = ""
        key_change = "removed"
    # A changed connection has not been checked yet.
    if any(before[name] != getattr(found, name) for name in ("provider", "base_url", "model")) or (
        key_change
    ):
        found.checked_at, found.check_ok, found.check_detail = None, False, ""
    found.save()
    after = {name: getattr(found, name) for name in fields}
    changed = {k: v for k, v in after.items() if before[k] != v}
    if changed or key_change:
        audit_record(
            workspace=workspace, actor=actor, action="model_settings.change", obj=found,
            before={k: before[k] for k in changed},
            after={**changed, **({"api_key": key_change} if key_change else {})},
        )  # fmt: skip
    return found


def model_settings_check(*, workspace: Workspace, actor: User) -> tuple[bool, str]:
    """Ask the workspace's model one small tool-forced question and keep the outcome."""
    from .llm import configured_model, connection_check

    config, reason = configured_model(workspace.pk)
    ok, detail = (False, reason) if config is None else connection_check(config, workspace.pk)
    found, _ = ModelSettings.objects.get_or_create(workspace=workspace)
    found.checked_at, found.check_ok, found.check_detail = timezone.now(), ok, detail[:2000]
    found.save(update_fields=["checked_at", "check_ok", "check_detail", "updated_at"])
    audit_record(workspace=workspace, actor=actor, action="model_settings.check", obj=found,
                 after={"ok": ok})  # fmt: skip
    return ok, detail
