from __future__ import annotations

from celery import shared_task

from hivemind_web.celery import TASK_RETRY

from .services import rollups_refresh_for_traces


@shared_task(**TASK_RETRY)
def refresh_rollups(trace_ids: list[int]) -> int:
    """Named so ingest can trigger it without importing metrics."""
    rollups_refresh_for_traces(trace_ids=trace_ids)
    from .services import trials_refresh_for_traces

    trials_refresh_for_traces(trace_ids=trace_ids)
    return len(trace_ids)


@shared_task(
    **TASK_RETRY, soft_time_limit=1200, time_limit=1300,
)  # fmt: skip
def sweep_rollups() -> int:
    """Periodic: rollups of traces whose refresh message was lost."""
    from .services import rollups_sweep

    return rollups_sweep()


@shared_task(**TASK_RETRY)
def refresh_trials(
    workspace_id: int | None = None, changed_modes: list[int] | None = None,
    recheck: bool = True,
) -> int:  # fmt: skip
    """Trial rollups and verdicts, and the runs like a labels-only mode's labelled
    ones that the observational impact of its published skill counts; named so the
    failures app can trigger it after incidents change modes (`changed_modes`: the
    trials and skills of those modes compare every run with a labels-only mode's
    labels again). Also periodic (beat), comparing only the runs not compared yet."""
    from .services import skills_likeness_refresh, trials_refresh

    refreshed = trials_refresh(
        workspace_id=workspace_id, recheck=recheck, changed_modes=changed_modes
    )
    # The observational impact of published skills of labels-only modes, alike.
    skills_likeness_refresh(workspace_id=workspace_id, recheck=recheck, changed_modes=changed_modes)
    return refreshed
