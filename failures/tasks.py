"""Thin Celery tasks for the failures stage: take ids, call a service, own the
retry policy. All are idempotent: mining upserts, embedding only touches
incidents without a vector, and re-clustering the same incidents gives the same
modes.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from hivemind_web.celery import TASK_RETRY, enqueue
from workspaces.llm import model_for
from workspaces.models import Workspace

from . import embedding, mining, naming, policy, propagation, services


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def analyse_traces(workspace_id: int, trace_ids: list[int]) -> int:
    """Diagnose newly stored (or changed) traces, with any others of the workspace
    waiting (one process at a time per workspace); embed the incidents of each chunk,
    and recount the rollups (causes found) and running trials of its runs: the
    ingest's recount ran before they were diagnosed."""

    def after_chunk(ids: list[int]) -> None:
        embed_incidents.delay(workspace_id)
        propagate_labels_to_runs.delay(workspace_id, ids)
        enqueue("metrics.tasks.refresh_rollups", ids)

    return mining.traces_analyse_queued(
        workspace_id=workspace_id, trace_ids=trace_ids, after_chunk=after_chunk
    )


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def embed_incidents(workspace_id: int) -> int:
    """Embed new incidents of one workspace; re-cluster if enough wait without a mode."""
    embedded = embedding.incidents_embed(workspace_id=workspace_id)
    formed = services.incidents_form_modes(workspace_id=workspace_id) if embedded else []
    if services.recluster_due(workspace_id=workspace_id):
        # Reuses a pending run: 1,000 ingests ask once, not 1,000 times.
        services.cluster_run_request(workspace_id=workspace_id, actor=None)
    elif embedded or formed:
        # Nearest-mode joins, or a new mode, may have taken a mode over the drafting
        # threshold.
        if formed and model_for(workspace_id)[0] is not None:
            name_modes.delay(workspace_id)
        enqueue("skills.tasks.distill_due", workspace_id)
    return len(embedded)


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def propagate_label(label_id: int) -> int:
    """Offer the failed runs that look like a new label as "same failure?" candidates."""
    return propagation.propagate(label_id=label_id)


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def propagate_labels_to_runs(workspace_id: int, trace_ids: list[int]) -> int:
    """Offer newly diagnosed failed runs that look like a labelled run as that
    label's "same failure?" candidates."""
    return propagation.propagate_to_runs(workspace_id=workspace_id, trace_ids=trace_ids)


@shared_task(**TASK_RETRY, soft_time_limit=1800, time_limit=1900)
def recluster_workspace(workspace_id: int, run_id: int | None = None) -> int:
    if run_id is not None and not services.cluster_run_claim(
        workspace_id=workspace_id, run_id=run_id
    ):
        return 0  # another message for this run took it
    modes = services.failure_modes_recluster(workspace_id=workspace_id, run_id=run_id).modes
    embedding.incident_texts_prune(workspace_id=workspace_id)
    if services.recluster_due(workspace_id=workspace_id):
        # Incidents embedded while this run clustered: the embedding that asked for
        # this run is done and will not ask again, so ask now rather than leave them
        # for the next sweep (minutes later).
        services.cluster_run_request(workspace_id=workspace_id, actor=None)
    if model_for(workspace_id)[0] is not None:
        name_modes.delay(workspace_id)
    # Drafting is the skills app's stage: by name, since failures never imports skills.
    enqueue("skills.tasks.distill_due", workspace_id)
    return modes


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def name_modes(workspace_id: int) -> int:
    """The workspace's model names modes that are new or have doubled."""
    return naming.failure_modes_name(workspace_id=workspace_id)


@shared_task(**TASK_RETRY, soft_time_limit=3000, time_limit=3300)
def sweep_unfinished() -> int:
    """Catch up on work a lost message or a down broker left behind: traces not
    analysed since they last changed, incidents still without a vector, and
    re-clusterings still queued after 5 minutes (a lead's click while the broker
    was away would otherwise wait, "Queued", until the run counts as lost)."""
    for workspace_id, run_id in services.cluster_runs_lost(older_than=timedelta(minutes=5)):
        recluster_workspace.delay(workspace_id, run_id)
    due = mining.traces_due_for_analysis()
    for workspace_id, trace_ids in due.items():
        analyse_traces.delay(workspace_id, trace_ids)
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        if workspace_id not in due:
            embed_incidents.delay(workspace_id)
    return sum(len(ids) for ids in due.values())


@shared_task(**TASK_RETRY, soft_time_limit=3000, time_limit=3300)
def recluster_all() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        services.cluster_run_request(workspace_id=workspace_id, actor=None)


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def refresh_modes(workspace_id: int) -> int:
    """Recount a workspace's modes after incidents went away in bulk (retention),
    and drop the texts search no longer needs."""
    embedding.incident_texts_prune(workspace_id=workspace_id)
    return services.modes_refresh_workspace(workspace_id=workspace_id)


@shared_task(**TASK_RETRY, soft_time_limit=600, time_limit=660)
def draft_policy_rules(policy_id: int, actor_id: int | None = None) -> int:
    """The model drafts an agent's policy rules (a lead asked, on the policy page)."""
    return policy.rules_draft_for(policy_id=policy_id, actor_id=actor_id)


@shared_task(**TASK_RETRY, soft_time_limit=3600, time_limit=3700)
def recheck_policy(policy_id: int) -> int:
    """An agent's failed runs, checked again against its rules as they now stand."""
    return mining.policy_recheck(policy_id=policy_id)
