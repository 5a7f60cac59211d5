from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from failures.charts import incidents_per_day_figure
from failures.selectors import daily_incident_counts, failure_mode_get
from workspaces.decorators import workspace_view
from workspaces.errors import InvalidInput
from workspaces.llm import model_for
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from . import review, selectors
from .forms import WebhookForm
from .instructions import instruction_changes
from .models import Skill, SkillStatus, SkillVersion
from .services import distillation_request
from .webhooks import webhook_get, webhook_save, webhook_test


@require_GET
@workspace_view()
def skill_list(request: WorkspaceRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in SkillStatus.values:
        status = ""
    skills = selectors.skill_list(workspace=request.workspace, status=status)
    held_back, undrafted = selectors.undrafted_modes(workspace=request.workspace)
    return render(
        request,
        "skills/list.html",
        {
            "skills": skills,
            "status": status,
            "statuses": SkillStatus.choices,
            "harmful": selectors.harmful_skills(workspace=request.workspace),
            "held_back": held_back,
            "undrafted": undrafted,
        },  # fmt: skip
    )


@require_GET
@workspace_view()
def skill_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    skill = selectors.skill_get(workspace=request.workspace, pk=pk)
    versions = list(selectors.skill_versions(skill=skill))
    # By default, what agents receive; else the newest version.
    served = skill.published_version if skill.status == SkillStatus.PUBLISHED else None
    shown = next((v for v in versions if served and v.pk == served.pk), None)
    shown = shown or (versions[0] if versions else None)
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
            "served": served,
            "retired_at": selectors.skill_retired_at(skill=skill),
            "trial": selectors.trial_current(skill=skill),
            "html": selectors.render_markdown(shown.body) if shown else "",
            "raw": selectors.skill_md(shown) if shown else "",
            "evidence": shown.evidence.select_related("trace")[:20] if shown else [],
            "diff": _diff(versions, shown),
            "changes": _changes(versions, shown),
            "audit": selectors.skill_audit(skill=skill),
            "in_scope": selectors.traces_with_skill(skill=skill),
            "can_act": request.membership.has_role(Role.LEAD),
            "mode_figure": _mode_figure(skill),
        },
    )


def _mode_figure(skill: Skill) -> dict[str, Any] | None:
    """The source mode's incidents per day, so a reviewer sees how much it matters."""
    if skill.source_mode_id is None:
        return None
    counts = daily_incident_counts(
        workspace=skill.workspace, mode_ids=[skill.source_mode_id], days=60
    )
    return incidents_per_day_figure(
        counts[skill.source_mode_id],
        last_day=timezone.now().date(),
        title="Source failure mode:<br>incidents per day, last 60 days",
    )


def _changes(versions: list[SkillVersion], shown: SkillVersion | None) -> list[dict[str, Any]]:
    """Instructions added, edited and removed since the version before `shown`."""
    if shown is None:
        return []
    older = next((v for v in versions if v.number == shown.number - 1), None)
    if older is None or not (older.instructions or shown.instructions):
        return []
    return instruction_changes(older.instructions, shown.instructions)


def _diff(versions: list[SkillVersion], shown: SkillVersion | None) -> str:
    if shown is None:
        return ""
    older = next((v for v in versions if v.number == shown.number - 1), None)
    return review.version_diff(older, shown) if older else ""


@require_POST
@workspace_view(Role.LEAD)
def draft_request(request: WorkspaceRequest, mode_pk: int) -> HttpResponse:
    workspace = request.workspace
    mode = failure_mode_get(workspace=workspace, pk=mode_pk)
    job, created = distillation_request(mode=mode, actor=request.user)
    if request.htmx:
        return render(request, "skills/_job.html", {"job": job, "mode": mode})
    if not created:
        messages.info(request, "A draft for this mode is already in progress.")
    return redirect("mode_detail", slug=workspace.slug, pk=mode_pk)


@require_GET
@workspace_view()
def job_status(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """The job's state, polled by htmx while it is queued or drafting."""
    job = selectors.job_get(workspace=request.workspace, pk=pk)
    return render(request, "skills/_job.html", {"job": job, "mode": job.failure_mode})


def _review_action(
    request: WorkspaceRequest, pk: int, action: Callable[[Skill], str]
) -> HttpResponse:
    """Run one review decision; a refused one (role, state) is shown by the
    DomainErrorMiddleware on the skill's page."""
    skill = selectors.skill_get(workspace=request.workspace, pk=pk)
    messages.success(request, action(skill))
    return redirect("skill_detail", slug=request.workspace.slug, pk=pk)


def _number(request: WorkspaceRequest) -> int:
    value = request.POST.get("version", "")
    return int(value) if value.isdigit() else 0


def _percent(request: WorkspaceRequest, field: str, default: float) -> float:
    """A percentage form field as a fraction; anything unreadable is refused."""
    raw = request.POST.get(field, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a number of percent.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{field.replace('_', ' ')} must be a number of percent.")
    return value / 100


@require_POST
@workspace_view()
def skill_approve_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    rollout = request.POST.get("rollout", "all")

    def act(skill: Skill) -> str:
        skill = review.skill_approve(
            skill=skill, number=_number(request), actor=request.user, rollout=rollout,
            holdout_share=_percent(request, "holdout_percent", 0.5),
            min_change=_percent(request, "min_change_percent", 0.5),
        )  # fmt: skip
        if rollout == "trial":
            trial = selectors.trial_current(skill=skill)
            assert trial is not None
            return (
                f"Published v{_number(request)} as a trial: {round(trial.holdout_share * 100)}% "
                f"of sessions are held out; about {trial.planned_per_arm} traces per arm are "
                "planned."
            )
        return f"Published v{_number(request)}: agents receive it on their next fetch."

    return _review_action(request, pk, act)


@require_POST
@workspace_view()
def skill_roll_out_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    skill = selectors.skill_get(workspace=request.workspace, pk=pk)
    review.skill_roll_out(skill=skill, actor=request.user)
    messages.success(request, "Rolled out: every agent receives it on its next fetch.")
    return redirect("skill_trial", slug=request.workspace.slug, pk=pk)


@require_POST
@workspace_view()
def skill_roll_back_trial_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    skill = selectors.skill_get(workspace=request.workspace, pk=pk)
    review.skill_roll_back_trial(skill=skill, actor=request.user,
                                 reason=request.POST.get("reason", "").strip())  # fmt: skip
    messages.success(
        request, "Withdrawn: no agent receives it any more; its failure mode is open again."
    )
    return redirect("skill_trial", slug=request.workspace.slug, pk=pk)


@require_POST
@workspace_view()
def skill_edit_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    skill = selectors.skill_get(workspace=request.workspace, pk=pk)
    version = review.skill_edit(
        skill=skill, description=request.POST.get("description", ""),
        body=request.POST.get("body", ""), actor=request.user,
    )  # fmt: skip
    messages.success(
        request, f"Saved as v{version.number}. Review the diff below, then approve it."
    )
    # The page shows what agents receive by default; after an edit, the new version.
    url = reverse("skill_detail", kwargs={"slug": request.workspace.slug, "pk": pk})
    return redirect(f"{url}?version={version.number}")


@require_POST
@workspace_view()
def skill_rename_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    def act(skill: Skill) -> str:
        version = review.skill_rename(skill=skill, name=request.POST.get("name", ""),
                                      actor=request.user)  # fmt: skip
        return (
            f"Renamed to {version.skill.name} (v{version.number}). The old name now "
            "redirects; agents' folders follow on their next pull."
        )

    return _review_action(request, pk, act)


@require_POST
@workspace_view()
def skill_reject_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    def act(skill: Skill) -> str:
        review.skill_reject(skill=skill, reason=request.POST.get("reason", ""), actor=request.user)
        return "Rejected. The mode is not drafted again until new incidents arrive."

    return _review_action(request, pk, act)


@require_POST
@workspace_view()
def skill_retire_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    def act(skill: Skill) -> str:
        review.skill_retire(skill=skill, reason=request.POST.get("reason", ""), actor=request.user)
        return "Retired: agents stop receiving it on their next fetch."

    return _review_action(request, pk, act)


@require_POST
@workspace_view()
def skill_rollback_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    def act(skill: Skill) -> str:
        review.skill_rollback(skill=skill, number=_number(request), actor=request.user)
        return f"Agents now receive v{_number(request)} again."

    return _review_action(request, pk, act)


@workspace_view(Role.ADMIN)
def webhook_settings(request: WorkspaceRequest) -> HttpResponse:
    """The workspace's publish webhook (URL and secret) and its recent deliveries."""
    workspace = request.workspace
    endpoint = webhook_get(workspace=workspace)
    form = WebhookForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and request.POST.get("action") == "test":
        webhook_test(workspace=workspace, actor=request.user)
        messages.success(
            request, "Test sent: its delivery is listed below (refresh to see it land)."
        )
        return redirect("webhook_settings", slug=workspace.slug)
    if request.method == "POST" and form.is_valid():
        webhook_save(workspace=workspace, form=form, actor=request.user)
        messages.success(request, "Webhook saved. Every alert is POSTed there, signed.")
        return redirect("webhook_settings", slug=workspace.slug)
    deliveries = endpoint.deliveries.all()[:50] if endpoint else []
    return render(request, "skills/webhook.html", {"form": form, "deliveries": deliveries,
                                                   "endpoint": endpoint},
                  status=400 if form.errors else 200)  # fmt: skip


@require_GET
@workspace_view()
def mode_skill_panel(request: WorkspaceRequest, mode_pk: int) -> HttpResponse:
    """The skills of one failure mode, its latest drafting job and (for leads) the
    Draft button: the partial the mode page loads, since modes live below skills."""
    mode = failure_mode_get(workspace=request.workspace, pk=mode_pk)
    skills = list(selectors.skill_list_for_mode(mode=mode))
    return render(
        request,
        "skills/_mode_panel.html",
        {
            "mode": mode,
            "skills": skills,
            # A proposal or a published skill already answers the mode: no second draft.
            "can_draft": not any(
                s.status in (SkillStatus.PROPOSED, SkillStatus.PUBLISHED) for s in skills
            ),
            "latest_job": selectors.latest_job(mode=mode),
            "on_trial": mode.pk
            in selectors.modes_on_trial_only(
                workspace=request.workspace, by_mode={mode.pk: skills}
            ),
            "can_act": request.membership.has_role(Role.LEAD),
            "drafter": model_for(request.workspace.pk)[0],
        },
    )


@require_GET
@workspace_view()
def mode_skill_cells(request: WorkspaceRequest) -> HttpResponse:
    """The Skill column of the failure-mode list, as out-of-band swaps (one per mode)."""
    by_mode = selectors.skill_names_by_mode(workspace=request.workspace)
    on_trial = selectors.modes_on_trial_only(workspace=request.workspace, by_mode=by_mode)
    return render(request, "skills/_mode_cells.html", {"by_mode": by_mode, "on_trial": on_trial})
