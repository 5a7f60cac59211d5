from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from failures.selectors import (
    awaiting_diagnosis_count,
    failure_mode_labels,
    failure_mode_list,
)
from skills.trials import HOLDOUT, TREATED
from traces.selectors import trace_agent_list
from workspaces.decorators import workspace_view
from workspaces.errors import DomainError, NotFound
from workspaces.forms import ApiKeyForm
from workspaces.models import Role
from workspaces.requests import WorkspaceRequest

from . import charts
from .benchmark import benchmark_json
from .filters import PRESETS, DashFilter, dash_filter
from .forms import SnapshotForm
from .models import Snapshot
from .selectors import (
    agent_list,
    agent_trends,
    agents_by_first_seen,
    compound_by_agent,
    harmful_trials,
    impact_table,
    last_active_day,
    modes_new,
    overview_get,
    recent_failed_traces,
    review_queue_count,
    snapshot_list,
    success_by_period,
    trial_list,
    trial_result,
    undated_count,
)
from .snapshots import SnapshotFilter, snapshot_create, snapshot_file_response
from .stats import Rate, verdict, wilson


def _filter(request: WorkspaceRequest, default_days: int) -> DashFilter:
    flt = dash_filter(request.GET, default_days=default_days,
                      agents=agent_list(workspace=request.workspace),
                      last_day=last_active_day(workspace=request.workspace))  # fmt: skip
    for problem in flt.problems:
        messages.warning(request, problem)
    return flt


@require_GET
@workspace_view()
def overview(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    flt = _filter(request, default_days=7)
    before = flt.previous()
    current = overview_get(workspace=workspace, since=flt.since, until=flt.until, agent=flt.agent)
    previous = overview_get(workspace=workspace, since=before.since, until=before.until,
                            agent=flt.agent)  # fmt: skip
    return render(
        request,
        "metrics/overview.html",
        {
            "overview": current,
            "previous": previous,
            # The rate's 95% interval: a week's runs are a sample of what the agents do.
            "success_interval": _percent_interval(
                current.succeeded_7d, current.succeeded_7d + current.failed_7d
            ),
            "success_change": verdict(
                Rate(previous.succeeded_7d, previous.succeeded_7d + previous.failed_7d),
                Rate(current.succeeded_7d, current.succeeded_7d + current.failed_7d),
            ),
            "filter": flt,
            "before_range": before,
            "colours": charts.agent_colours(agents_by_first_seen(workspace=workspace)),
            "presets": PRESETS,
            "agents": agent_list(workspace=workspace),
            "trends": _trends(workspace, flt),
            "new_modes": modes_new(workspace=workspace, since=flt.since, until=flt.until),
            "queue": review_queue_count(workspace=workspace),
            "awaiting_diagnosis": awaiting_diagnosis_count(workspace=workspace),
            "recent_failures": recent_failed_traces(
                workspace=workspace, since=flt.since, until=flt.until, agent=flt.agent
            ),
            "harmful": harmful_trials(workspace=workspace),
            "form": ApiKeyForm(),
        },
    )


def _percent_interval(successes: int, n: int) -> tuple[int, int] | None:
    """A rate's 95% Wilson interval in whole percents (None with no runs)."""
    interval = wilson(successes, n)
    return None if interval is None else (round(100 * interval[0]), round(100 * interval[1]))


def _trends(workspace: Any, flt: DashFilter) -> list:
    """Each agent over the chosen range against the range just before it."""
    before = flt.previous()
    return agent_trends(workspace=workspace, since=flt.since, until=flt.until, agent=flt.agent,
                        before=(before.since, before.until))  # fmt: skip


def _series(request: WorkspaceRequest) -> tuple[DashFilter, str, dict[str, list[dict]]]:
    # Weekly by default: daily counts are small and their intervals wide.
    week = request.GET.get("by") != "day"
    flt = _filter(request, default_days=90 if week else 45)
    series = success_by_period(workspace=request.workspace, since=flt.since, until=flt.until,
                               agent=flt.agent, week=week)  # fmt: skip
    return flt, "week" if week else "day", series


@require_GET
@workspace_view()
def metrics_page(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    flt, unit, series = _series(request)
    colours = charts.agent_colours(agents_by_first_seen(workspace=workspace))
    return render(
        request,
        "metrics/metrics.html",
        {
            "unit": unit,
            "filter": flt,
            "agents": agent_list(workspace=workspace),
            "has_data": any(p["traces"] for points in series.values() for p in points),
            "has_outcomes": any(p["decided"] for points in series.values() for p in points),
            "success_figure": charts.success_rate_figure(
                series, unit=unit, partial=flt.partial, colours=colours
            ),
            "volume_figure": charts.volume_figure(
                series, unit=unit, partial=flt.partial, colours=colours
            ),
            "undated": undated_count(
                workspace=workspace, since=flt.since, until=flt.until, agent=flt.agent
            ),
            "colours": colours,
            "trends": _trends(workspace, flt),
            "previous": flt.previous(),
            "presets": PRESETS,
            "compound": compound_by_agent(
                workspace=workspace, agent=flt.agent, since=flt.since, until=flt.until
            ),  # fmt: skip
            "impact": impact_table(workspace=workspace),
            "trials": [trial_result(trial=t) for t in trial_list(workspace=workspace)],
        },
    )


@require_GET
@workspace_view()
def series_csv(request: WorkspaceRequest) -> HttpResponse:
    """The series behind both charts, as filtered on the page."""
    flt, unit, series = _series(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="success-by-{unit}-{flt.since}-{flt.until}.csv"'
    )
    writer = SafeCsvWriter(response)
    writer.writerow([unit + "_starting_utc", "agent", "traces", "succeeded", "failed",
                     "success_rate", "ci95_low", "ci95_high",
                     "outcomes_read_from_sessions"])  # fmt: skip
    for agent, points in sorted(series.items()):
        for p in points:
            interval = wilson(p["succeeded"], p["decided"])
            writer.writerow([
                p["period"], agent, p["traces"], p["succeeded"], p["decided"] - p["succeeded"],
                f"{p['succeeded'] / p['decided']:.4f}" if p["decided"] else "",
                f"{interval[0]:.4f}" if interval else "", f"{interval[1]:.4f}" if interval else "",
                p["inferred"],
            ])  # fmt: skip
    return response


class SafeCsvWriter:
    """csv.writer that keeps spreadsheets from running cells as formulas: a text
    cell starting with = + - @ tab or CR (an agent or skill name can) gets a
    leading apostrophe, as OWASP recommends; numbers are written as they are."""

    def __init__(self, stream: Any) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)  # "-12.5" is a number, not a formula
        except ValueError:
            return "'" + value
    return value


def _pct(rate: Rate) -> str:
    return "" if rate.value is None else f"{rate.value * 100:.1f}"


@require_GET
@workspace_view()
def impact_csv(request: WorkspaceRequest) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="skill-impact.csv"'
    writer = SafeCsvWriter(response)
    writer.writerow(["skill", "published_at", "agents", "with_rate_pct", "with_n", "without_rate_pct",
                     "without_n", "before_rate_pct", "before_n", "after_rate_pct", "after_n",
                     "mode_per_100_before", "mode_per_100_after", "verdict", "note",
                     "with_without_agents", "before_after_agents"])  # fmt: skip
    for row in impact_table(workspace=request.workspace):
        if not row.get("agents"):
            continue
        if row["shared_with"]:
            success = ["", "", "", "", "", "", "", ""]
            verdicts = [row["mode_verdict"], "observational; success figures identical to "
                        + " ".join(row["shared_with"]) + ", not shown"]  # fmt: skip
        else:
            success = [_pct(row["with"]), row["with"].n, _pct(row["without"]), row["without"].n,
                       _pct(row["before"]), row["before"].n, _pct(row["after"]), row["after"].n]  # fmt: skip
            verdicts = [row["cohort_verdict"], "observational"]
            if row["time_shared_with"]:
                success[4:] = ["", "", "", ""]
                verdicts[1] += ("; before/after success identical to "
                                + " ".join(row["time_shared_with"]) + ", not shown")  # fmt: skip
        if row["mode_by_likeness"]:
            verdicts[1] += "; mode runs: its labelled runs and the runs like them, unconfirmed"
        writer.writerow([
            row["skill"].name, row["published_at"].isoformat(), " ".join(row["agents"]), *success,
            _pct(row["mode_before"]), _pct(row["mode_after"]), *verdicts,
            "" if row["shared_with"] else " ".join(row["cohort_agents"]),
            "" if row["shared_with"] or row["time_shared_with"] else " ".join(row["time_agents"]),
        ])  # fmt: skip
    return response


@require_GET
@workspace_view()
def compound_csv(request: WorkspaceRequest) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="compound-error.csv"'
    writer = SafeCsvWriter(response)
    writer.writerow(["agent", "per_step_success", "typical_steps", "predicted_end_to_end",
                     "observed_end_to_end", "n"])  # fmt: skip
    flt = _filter(request, default_days=30)
    for row in compound_by_agent(workspace=request.workspace, agent=flt.agent,
                                 since=flt.since, until=flt.until):  # fmt: skip
        per_step, predicted = row["per_step"], row["predicted"]
        writer.writerow([row["agent"], "n/a" if per_step is None else f"{per_step:.4f}",
                         f"{row['typical_steps']:.1f}",
                         "n/a" if predicted is None else f"{predicted:.4f}",
                         _pct(row["end_to_end"]), row["end_to_end"].n])  # fmt: skip
    return response


@require_GET
@workspace_view()
def skill_impact_partial(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """The skill page's impact section (served here: skills never imports metrics)."""
    from skills.selectors import skill_get, trial_current

    from .selectors import skill_impact

    skill = skill_get(workspace=request.workspace, pk=pk)
    row = skill_impact(workspace=request.workspace, skill=skill)
    trial = trial_current(skill=skill)
    words = ""
    if trial is not None:
        result = trial_result(trial=trial)
        words = result.verdict_words.lower()
    template = "metrics/_skill_impact.html" if request.htmx else "metrics/skill_impact.html"
    return render(request, template,
                  {"row": row, "skill": skill, "trial": trial, "trial_words": words})  # fmt: skip


@workspace_view()
def snapshot_page(request: WorkspaceRequest) -> HttpResponse:
    """Training snapshots: the list, and (leads) a form to make one."""
    workspace = request.workspace
    form_kwargs = {"agents": trace_agent_list(workspace=workspace),
                   "modes": failure_mode_list(workspace=workspace)}  # fmt: skip
    can_make = request.membership.has_role(Role.LEAD)
    status = 200
    if request.method == "POST":
        if not can_make:
            return render(request, "workspaces/forbidden.html", status=403)
        form = SnapshotForm(request.POST, **form_kwargs)
        if form.is_valid():
            data = form.cleaned_data
            try:
                snapshot = snapshot_create(
                    workspace=workspace, name=data.pop("name"), actor=request.user,
                    filters=SnapshotFilter(**{k: v for k, v in data.items()
                                              if v not in (None, "")}),
                )  # fmt: skip
            except DomainError as exc:
                form.add_error(None, exc.detail)
            else:
                messages.success(request, f"Snapshot v{snapshot.version} made.")
                return redirect("snapshot_list", slug=workspace.slug)
        status = 422
    elif request.method != "GET":
        return HttpResponse(status=405)
    else:
        form = SnapshotForm(**form_kwargs)
    snapshots = list(snapshot_list(workspace=workspace))
    modes = failure_mode_labels(
        workspace=workspace, ids=[s.filters.get("failure_mode") for s in snapshots]
    )
    rows = [(snapshot, _filter_words(snapshot.filters, modes)) for snapshot in snapshots]
    context = {"form": form, "rows": rows, "can_make": can_make, "files": list(Snapshot.FILES)}
    return render(request, "metrics/snapshots.html", context, status=status)


def _filter_words(filters: dict[str, Any], modes: dict[int, str]) -> list[str]:
    """A snapshot's filter as a person reads it: a failure mode by its label."""
    words = []
    for key, value in filters.items():
        if key == "failure_mode":
            label = modes.get(value)
            words.append(f"failure mode: {label}" if label else f"failure mode {value} (deleted)")
        else:
            words.append(f"{key}={value}")
    return words


@require_GET
@workspace_view()
def snapshot_download(request: WorkspaceRequest, version: int, filename: str) -> HttpResponse:
    return snapshot_file_response(workspace=request.workspace, version=version, filename=filename)


@require_GET
@workspace_view()
def skill_trial(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """A skill's trial: treated vs holdout, the verdict, and (leads) the decision."""
    from skills.selectors import skill_get, trial_current

    skill = skill_get(workspace=request.workspace, pk=pk)
    trial = trial_current(skill=skill)
    if trial is None:
        raise NotFound(f"{skill.name} has never been on trial.")
    return render(request, "metrics/trial.html", {
        "skill": skill, "trial": trial, "result": trial_result(trial=trial),
        "on_trial": skill.status == "published" and skill.rollout == "trial",
        "can_act": request.membership.has_role(Role.LEAD),
        "treated": TREATED, "holdout": HOLDOUT,
    })  # fmt: skip


@require_GET
@workspace_view()
def skill_trial_benchmark(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """The trial's result in the Agent Skills `benchmark.json` shape (skill-creator's
    schema): one run per configuration, with_skill = treated arm, without_skill =
    holdout, pass rate = success among traces with a known outcome."""
    from skills.selectors import skill_get, trial_current

    skill = skill_get(workspace=request.workspace, pk=pk)
    trial = trial_current(skill=skill)
    if trial is None:
        raise NotFound(f"{skill.name} has never been on trial.")
    body = benchmark_json(trial_result(trial=trial), skill_name=skill.name)
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{skill.name}-benchmark.json"'
    return response
