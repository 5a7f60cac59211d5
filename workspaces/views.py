from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .decorators import workspace_view
from .errors import DomainError, NotFound
from .forms import ApiKeyForm
from .models import Role
from .selectors import api_key_get, api_key_list, membership_list, workspace_list_for_user
from .services import api_key_create, api_key_revoke


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
def settings_page(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    return render(
        request,
        "workspaces/settings.html",
        {
            "members": membership_list(workspace=workspace),
            "api_keys": api_key_list(workspace=workspace),
            "form": ApiKeyForm(),
        },
    )


@require_POST
@workspace_view(Role.ADMIN)
def api_key_new(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    form = ApiKeyForm(request.POST)
    new_key = None
    if form.is_valid():
        try:
            new_key = api_key_create(
                workspace=workspace,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                actor=request.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.detail)
    context = {
        "new_key": new_key,
        "curl": first_trace_curl(secret=new_key.secret) if new_key else "",
        "form": form,
    }
    if request.htmx:
        return render(request, "workspaces/_new_key.html", context, status=200 if new_key else 422)
    context |= {
        "members": membership_list(workspace=workspace),
        "api_keys": api_key_list(workspace=workspace),
    }
    return render(request, "workspaces/settings.html", context, status=200 if new_key else 422)


@require_POST
@workspace_view(Role.ADMIN)
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    try:
        api_key = api_key_get(workspace=workspace, pk=pk)
    except NotFound:
        raise Http404("No such API key.") from None
    api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, f"Revoked {api_key.name}. Agents using it now get 401.")
    return redirect(reverse("settings", kwargs={"slug": workspace.slug}) + "#api-keys")
