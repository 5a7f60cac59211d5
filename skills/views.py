from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from traces.selectors import failure_mode_get
from workspaces.decorators import workspace_view
from workspaces.errors import DomainError, NotFound
from workspaces.models import Role

from . import selectors
from .models import SkillStatus
from .services import distillation_request


@require_GET
@workspace_view()
def skill_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in SkillStatus.values:
        status = ""
    skills = selectors.skill_list(workspace=request.workspace, status=status)  # type: ignore[attr-defined]
    return render(
        request,
        "skills/list.html",
        {"skills": skills, "status": status, "statuses": SkillStatus.choices},
    )


@require_GET
@workspace_view()
def skill_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        skill = selectors.skill_get(workspace=request.workspace, pk=pk)  # type: ignore[attr-defined]
    except NotFound:
        raise Http404("No such skill.") from None
    versions = list(selectors.skill_versions(skill=skill))
    shown = versions[0] if versions else None
    wanted = request.GET.get("version", "")
    if wanted.isdigit():
        shown = next((v for v in versions if v.number == int(wanted)), shown)
    return render(
        request,
        "skills/detail.html",
        {
            "skill": skill,
            "versions": versions,
            "shown": shown,
            "html": selectors.render_markdown(shown.body) if shown else "",
            "raw": selectors.skill_md(shown) if shown else "",
            "evidence": shown.evidence.select_related("trace")[:20] if shown else [],
        },
    )


@require_POST
@workspace_view(Role.LEAD)
def draft_request(request: HttpRequest, mode_pk: int) -> HttpResponse:
    workspace = request.workspace  # type: ignore[attr-defined]
    try:
        mode = failure_mode_get(workspace=workspace, pk=mode_pk)
        job, created = distillation_request(mode=mode, actor=request.user)
    except NotFound:
        raise Http404("No such failure mode.") from None
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("mode_detail", slug=workspace.slug, pk=mode_pk)
    if request.htmx:
        return render(request, "skills/_job.html", {"job": job, "mode": mode})
    if not created:
        messages.info(request, "A draft for this mode is already in progress.")
    return redirect("mode_detail", slug=workspace.slug, pk=mode_pk)


@require_GET
@workspace_view()
def job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's state, polled by htmx while it is queued or drafting."""
    try:
        job = selectors.job_get(workspace=request.workspace, pk=pk)  # type: ignore[attr-defined]
    except NotFound:
        raise Http404("No such job.") from None
    return render(request, "skills/_job.html", {"job": job, "mode": job.failure_mode})
