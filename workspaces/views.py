from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from zoneinfo import available_timezones

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import ratelimit
from .decorators import workspace_view
from .errors import DomainError
from .forms import (
    ApiKeyForm,
    AuditFilterForm,
    InviteSignupForm,
    MemberAddForm,
    ModelSettingsForm,
    PiiPolicyForm,
    RoleForm,
    WorkspaceCreateForm,
)
from .llm import configured_model
from .logins import (
    client_key,
    login_device_hash,
    login_device_known,
    login_device_remember,
    login_device_token,
)
from .models import Role, Workspace
from .redaction import POLICY_SWITCHES, redaction_preview
from .requests import WorkspaceRequest
from .selectors import (
    api_key_get,
    api_key_list,
    audit_event_search,
    audit_facets,
    invitation_list_open,
    membership_get_by_pk,
    membership_list,
    model_meter,
    model_settings_get,
    pii_policy_get,
    workspace_list_for_user,
)
from .services import (
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_by_secret,
    invitation_create,
    invitation_revoke,
    invitation_send,
    membership_change_role,
    membership_email_alerts_set,
    membership_remove,
    model_settings_check,
    model_settings_save,
    pii_policy_update,
    workspace_create,
    workspace_time_zone_set,
    workspace_trial_settings_save,
)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the workspace they used last, else their first one."""
    workspaces = workspace_list_for_user(user=request.user)
    last = request.session.get("workspace_slug")
    chosen = workspaces.filter(slug=last).first() or workspaces.first()
    if chosen is None:
        return render(request, "workspaces/no_workspace.html")
    return redirect("overview", slug=chosen.slug)


def key_example(*, secret: str, scopes: list[str]) -> tuple[str, str]:
    """A first command that this key is allowed to run, and what it does."""
    base = settings.HIVEMIND_PUBLIC_URL.rstrip("/")
    auth = f'-H "Authorization: Bearer {secret}"'
    if "ingest" in scopes:
        return "Send a first trace with it:", first_trace_curl(secret=secret)
    if "skills:read" in scopes:
        return "Fetch the published skills with it:", f"curl -sS {base}/api/v1/skills \\\n  {auth}"
    if "failures:read" in scopes:
        return ("Search the failures with it:",
                f'curl -sS "{base}/api/v1/incidents/search?q=timeout" \\\n  {auth}')  # fmt: skip
    return (
        "Check it (which workspace, which scopes):",
        f"curl -sS {base}/api/v1/whoami \\\n  {auth}",
    )


def first_trace_curl(*, secret: str) -> str:
    """A shell command that sends one small trace with `secret`."""
    url = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/traces"
    body = (
        '{"traces": [{"external_id": "hello-1", "agent": "my-agent", '
        '"task": "Say hello", "status": "succeeded", '
        '"steps": [{"kind": "user_prompt", "input": "Say hello"}, '
        '{"kind": "assistant_message", "output": "Hello!"}]}]}'
    )
    return (
        f"curl -sS -X POST {url} \\\n"
        f'  -H "Authorization: Bearer {secret}" \\\n'
        f'  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )


@require_GET
@workspace_view(Role.ADMIN)
def settings_page(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    return render(request, "workspaces/settings.html", _settings_context(workspace))


@require_POST
@workspace_view(Role.ADMIN)
def api_key_new(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = ApiKeyForm(request.POST)
    new_key = None
    if form.is_valid():
        try:
            new_key = api_key_create(
                workspace=workspace,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                actor=request.user,
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except DomainError as exc:
            form.add_error(None, exc.detail)
    label, curl = (
        key_example(secret=new_key.secret, scopes=new_key.api_key.scopes) if new_key else ("", "")
    )
    context: dict[str, Any] = {"new_key": new_key, "curl": curl, "curl_label": label, "form": form}
    if request.htmx:
        # The keys table is refreshed too (out of band): the new key is listed at once.
        context["api_keys"] = api_key_list(workspace=workspace) if new_key else None
        return render(request, "workspaces/_new_key.html", context, status=200 if new_key else 422)
    context = _settings_context(workspace, **context)
    return render(request, "workspaces/settings.html", context, status=200 if new_key else 422)


@require_POST
@workspace_view(Role.ADMIN)
def api_key_revoke_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    workspace = request.workspace
    api_key = api_key_get(workspace=workspace, pk=pk)
    api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, f"Revoked {api_key.name}. Agents using it now get 401.")
    return redirect(reverse("settings", kwargs={"slug": workspace.slug}) + "#api-keys")


ZONES = sorted(available_timezones())


def _settings_context(workspace: Workspace, **extra: Any) -> dict[str, Any]:
    policy = pii_policy_get(workspace=workspace)
    return {
        "members": membership_list(workspace=workspace),
        "invitations": invitation_list_open(workspace=workspace),
        "email_is_console": "console" in settings.EMAIL_BACKEND,
        "api_keys": api_key_list(workspace=workspace),
        "form": ApiKeyForm(),
        "member_form": MemberAddForm(),
        "roles": Role.choices,
        "policy": policy,
        "policy_form": PiiPolicyForm.for_policy(policy),
        "zones": ZONES,
        "model_form": ModelSettingsForm.for_settings(model_settings_get(workspace=workspace)),
        "model_settings": model_settings_get(workspace=workspace),
        "meter": model_meter(workspace=workspace),
        **extra,
    }


def _back(workspace: Workspace, anchor: str) -> HttpResponse:
    return redirect(reverse("settings", kwargs={"slug": workspace.slug}) + anchor)


@require_POST
@workspace_view(Role.ADMIN)
def member_add(request: WorkspaceRequest) -> HttpResponse:
    """Invite by email. The answer is the same whether or not the address has an
    account here: the person joins by accepting the emailed link."""
    workspace = request.workspace
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            new = invitation_create(
                workspace=workspace, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"], actor=request.user,
            )  # fmt: skip
        except DomainError as exc:
            form.add_error("email", exc.detail)
        else:
            invitation_send(new=new)
            messages.success(
                request,
                f"Invitation sent to {new.invitation.email} as "
                f"{new.invitation.get_role_display().lower()}. They join when they open the "
                f"link (valid {settings.HIVEMIND_INVITE_DAYS} days); until then they are listed "
                "under pending invitations.",
            )
            return _back(workspace, "#members")
    context = _settings_context(workspace, member_form=form)
    return render(request, "workspaces/settings.html", context, status=422)


@require_POST
@workspace_view(Role.ADMIN)
def invitation_revoke_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    invitation = invitation_revoke(workspace=request.workspace, pk=pk, actor=request.user)
    messages.success(request, f"Withdrew the invitation to {invitation.email}.")
    return _back(request.workspace, "#members")


def invitation_page(request: HttpRequest, secret: str) -> HttpResponse:
    """The emailed link: shows who invites to what; a signed-in person accepts, a
    newcomer creates an account (the invited address becomes its email)."""
    try:
        invitation = invitation_by_secret(secret=secret)
    except DomainError as exc:
        return render(request, "workspaces/invitation.html", {"invalid": exc.detail}, status=404)
    signup = InviteSignupForm()
    if request.method == "POST":
        if request.user.is_authenticated:
            membership = invitation_accept(secret=secret, user=request.user)
            messages.success(request, f"You joined {invitation.workspace.name}.")
            return redirect("overview", slug=membership.workspace.slug)
        signup = InviteSignupForm(request.POST)
        if signup.is_valid():
            with transaction.atomic():
                user = signup.save(commit=False)
                user.email = invitation.email
                user.save()
                membership = invitation_accept(secret=secret, user=user)
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome. You joined {invitation.workspace.name}.")
            return redirect("overview", slug=membership.workspace.slug)
    context = {"invitation": invitation, "signup": signup}
    return render(request, "workspaces/invitation.html", context,
                  status=422 if signup.errors else 200)  # fmt: skip


@require_POST
@workspace_view(Role.ADMIN)
def member_role(request: WorkspaceRequest, pk: int) -> HttpResponse:
    workspace = request.workspace
    membership = membership_get_by_pk(workspace=workspace, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose admin, lead or viewer.")
        return _back(workspace, "#members")
    # A refused change (the last admin) comes back as a message on the members list
    # (DomainErrorMiddleware, via the form's `next`).
    membership_change_role(membership=membership, role=form.cleaned_data["role"],
                           actor=request.user)  # fmt: skip
    messages.success(
        request, f"{membership.user.get_username()} is now {form.cleaned_data['role']}."
    )
    return _back(workspace, "#members")


@require_POST
@workspace_view(Role.ADMIN)
def member_remove(request: WorkspaceRequest, pk: int) -> HttpResponse:
    workspace = request.workspace
    membership = membership_get_by_pk(workspace=workspace, pk=pk)
    membership_remove(membership=membership, actor=request.user)
    messages.success(request, f"Removed {membership.user.get_username()} from {workspace.name}.")
    return _back(workspace, "#members")


@require_POST
@workspace_view(Role.ADMIN)
def pii_policy_save(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = PiiPolicyForm(request.POST)
    if form.is_valid():
        old_days = pii_policy_get(workspace=workspace).retention_days
        new_days = form.cleaned_data["retention_days"]
        if new_days < old_days and request.POST.get("confirm_retention") != str(new_days):
            # Cutting retention deletes data: say what, and ask once more.
            cutoff = timezone.now() - timedelta(days=new_days)
            context = _settings_context(workspace, policy_form=form, retention_warning={
                "old": old_days, "new": new_days, "cutoff": cutoff})  # fmt: skip
            return render(request, "workspaces/settings.html", context, status=409)
        try:
            pii_policy_update(workspace=workspace, changes=form.changes(), actor=request.user)
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(
                request, "PII policy saved. It applies to traces received from now on."
            )
            return _back(workspace, "#pii")
    context = _settings_context(workspace, policy_form=form)
    return render(request, "workspaces/settings.html", context, status=422)


@require_POST
@workspace_view(Role.ADMIN)
def pii_policy_try(request: WorkspaceRequest) -> HttpResponse:
    """Live preview: what the sample text becomes under the policy as edited (not saved)."""
    form = PiiPolicyForm(request.POST)
    sample = request.POST.get("sample", "")[:5000]
    context = {"sample": sample, "redacted": "", "counts": {}, "error": ""}
    form.is_valid()
    if "custom_patterns" in form.errors:
        context["error"] = " ".join(str(e) for e in form.errors["custom_patterns"])
    else:
        context["redacted"], context["counts"] = redaction_preview(
            sample,
            enabled={name: bool(form.cleaned_data.get(name)) for name in POLICY_SWITCHES},
            custom_patterns=form.cleaned_data.get("custom_patterns") or [],
        )
    return render(request, "workspaces/_pii_try.html", context)


@require_GET
@workspace_view(Role.ADMIN)
def audit_log(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_event_search(workspace=workspace, **{k: v for k, v in filters.items() if v})
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(),
               **audit_facets(workspace=workspace)}  # fmt: skip
    template = "workspaces/_audit_rows.html" if request.htmx else "workspaces/audit.html"
    return render(request, template, context)


LOGIN_WINDOW = 15 * 60


class ThrottledLoginMixin:
    """Login attempts limited per account, per client and per known browser
    (HIVEMIND_LOGIN_ATTEMPTS in 15 minutes; a client address gets five times that,
    so one office behind a NAT is not locked out by one person).

    From a browser the user has logged in from before (a signed device cookie,
    workspaces/logins.py), only that user-and-browser pair is limited: someone
    guessing elsewhere, from another address or the same one, cannot lock the
    owner out. From anywhere else the account is limited, with Retry-After
    saying when to try again (no CAPTCHA). Each attempt is counted *before* the
    password is checked, with one atomic upsert per key, so concurrent attempts
    cannot get past the limit; a success clears its counters. Used by the app's
    login and Django admin's.
    """

    request: HttpRequest

    def _username(self) -> str:
        return self.request.POST.get("username", "").strip().lower()[:150]

    def _keys(self) -> list[tuple[str, int]]:
        limit = settings.HIVEMIND_LOGIN_ATTEMPTS
        username, token = self._username(), login_device_token(self.request)
        if login_device_known(username=username, token=token):
            return [(f"login:device:{username}:{login_device_hash(token)[:24]}", limit)]
        return [(f"login:user:{username}", limit),
                (f"login:client:{client_key(self.request)}", limit * 5)]  # fmt: skip

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        verdicts = [ratelimit.hit(key, limit=limit, window=LOGIN_WINDOW)
                    for key, limit in self._keys()]  # fmt: skip
        if not all(v.allowed for v in verdicts):
            wait = max(v.retry_after for v in verdicts)
            response = render(request, "registration/login.html", {
                "form": self.get_form(), "locked_minutes": max(1, (wait + 59) // 60),  # type: ignore[attr-defined]
                "next": request.POST.get("next", ""),
            }, status=429)  # fmt: skip
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)  # type: ignore[misc]

    def form_valid(self, form: Any) -> HttpResponse:
        keys = self._keys()
        response: HttpResponse = super().form_valid(form)  # type: ignore[misc]
        for key, _ in keys:
            ratelimit.forget(key, window=LOGIN_WINDOW)
        login_device_remember(user=form.get_user(), request=self.request, response=response)
        return response


class LoginView(ThrottledLoginMixin, auth_views.LoginView):
    redirect_authenticated_user = True


class AdminLoginView(ThrottledLoginMixin, auth_views.LoginView):
    """Django admin's login (staff only, its own page), throttled like the app's."""

    form_class = AdminAuthenticationForm
    template_name = "admin/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from django.contrib import admin

        return {**super().get_context_data(**kwargs), **admin.site.each_context(self.request),
                "title": "Log in", "site_header": admin.site.site_header}  # fmt: skip


@require_POST
@workspace_view(Role.ADMIN)
def model_settings_save_view(request: WorkspaceRequest) -> HttpResponse:
    """Save the workspace's model; when the connection changed, check it at once, so
    a server that cannot answer (or cannot call tools) says so on this page."""
    workspace = request.workspace
    form = ModelSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            saved = model_settings_save(
                workspace=workspace, actor=request.user, provider=data["provider"],
                base_url=data["base_url"], model=data["model"], api_key=data["api_key"],
                clear_key=data["clear_key"], price_in=data["price_in"],
                price_out=data["price_out"], monthly_budget_usd=data["monthly_budget_usd"],
            )  # fmt: skip
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            if saved.checked_at is None and configured_model(workspace.pk)[0] is not None:
                ok, detail = model_settings_check(workspace=workspace, actor=request.user)
                (messages.success if ok else messages.error)(
                    request, f"Model settings saved. {'' if ok else 'Check failed: '}{detail}"
                )
            else:
                messages.success(request, "Model settings saved.")
            return _back(workspace, "#model")
    context = _settings_context(workspace, model_form=form)
    return render(request, "workspaces/settings.html", context, status=422)


@require_POST
@workspace_view(Role.ADMIN)
def model_settings_check_view(request: WorkspaceRequest) -> HttpResponse:
    ok, detail = model_settings_check(workspace=request.workspace, actor=request.user)
    (messages.success if ok else messages.error)(request, detail)
    return _back(request.workspace, "#model")


@require_POST
@workspace_view(Role.ADMIN)
def trial_settings_save(request: WorkspaceRequest) -> HttpResponse:
    pause = request.POST.get("pause_harmful_skills") == "on"
    workspace_trial_settings_save(workspace=request.workspace, pause_harmful=pause,
                                  actor=request.user)  # fmt: skip
    messages.success(
        request,
        "Skills whose trial shows harm are now paused automatically." if pause
        else "Skills whose trial shows harm are flagged, not paused: a lead decides.",
    )  # fmt: skip
    return redirect(reverse("settings", kwargs={"slug": request.workspace.slug}) + "#trials")


@require_POST
@workspace_view(Role.ADMIN)
def time_zone_save(request: WorkspaceRequest) -> HttpResponse:
    # A bad name comes back as a message on the settings page (DomainErrorMiddleware).
    workspace_time_zone_set(workspace=request.workspace, actor=request.user,
                            time_zone=request.POST.get("time_zone", ""))  # fmt: skip
    messages.success(
        request, f"Times are now shown in {request.POST.get('time_zone', '').strip()}."
    )
    return redirect(reverse("settings", kwargs={"slug": request.workspace.slug}) + "#workspace")


@require_GET
@workspace_view()
def my_settings(request: WorkspaceRequest) -> HttpResponse:
    """What a member who is not an admin can set: their alert emails and password."""
    return render(request, "workspaces/my_settings.html")


@require_POST
@workspace_view(Role.LEAD)
def email_alerts_save(request: WorkspaceRequest) -> HttpResponse:
    on = request.POST.get("email_alerts") == "on"
    membership_email_alerts_set(membership=request.membership, on=on, actor=request.user)
    messages.success(request, "You will get alerts by email." if on else "Alert emails are off.")
    target = "settings" if request.membership.role == Role.ADMIN else "my_settings"
    return redirect(reverse(target, kwargs={"slug": request.workspace.slug}) + "#alerts")


RESET_WINDOW = 3600


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset (the same answer whether or not the address has an
    account), with a plain-text email and the link's lifetime on the page.

    Throttled: HIVEMIND_RESET_MAILS_PER_ADDRESS mails an hour to one address
    (beyond it the page answers as usual and sends nothing, so it tells no one
    whether the address has an account) and HIVEMIND_RESET_REQUESTS_PER_CLIENT
    requests an hour from one client (beyond it 429 with Retry-After)."""

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    extra_context = {"timeout_days": settings.PASSWORD_RESET_TIMEOUT // 86400}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        verdict = ratelimit.hit(f"reset:client:{client_key(request)}",
                                limit=settings.HIVEMIND_RESET_REQUESTS_PER_CLIENT,
                                window=RESET_WINDOW)  # fmt: skip
        if not verdict.allowed:
            response = render(request, "registration/password_reset_form.html", {
                "form": self.get_form(), "locked_minutes": max(1, (verdict.retry_after + 59) // 60),
                **self.extra_context,
            }, status=429)  # fmt: skip
            response["Retry-After"] = str(verdict.retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        address = form.cleaned_data["email"].strip().lower()
        digest = hashlib.sha256(f"reset:{address}".encode()).hexdigest()[:24]
        verdict = ratelimit.hit(f"reset:address:{digest}",
                                limit=settings.HIVEMIND_RESET_MAILS_PER_ADDRESS,
                                window=RESET_WINDOW)  # fmt: skip
        if not verdict.allowed:
            return redirect(self.get_success_url())  # the usual answer, no mail
        return super().form_valid(form)


@login_required
def workspace_new(request: HttpRequest) -> HttpResponse:
    """Any signed-in user can create a workspace and becomes its admin, unless
    HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY limits it to staff."""
    if settings.HIVEMIND_WORKSPACE_CREATE_STAFF_ONLY and not request.user.is_staff:
        return render(request, "workspaces/workspace_new.html", {"refused": True}, status=403)
    form = WorkspaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = workspace_create(
                name=form.cleaned_data["name"], slug=form.cleaned_data["slug"],
                owner=request.user,  # type: ignore[arg-type]
            )  # fmt: skip
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"Workspace {workspace.name} created; you are its admin.")
            return redirect("overview", slug=workspace.slug)
    return render(request, "workspaces/workspace_new.html", {"form": form},
                  status=400 if form.errors else 200)  # fmt: skip
