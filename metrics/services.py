"""Writes for metrics: keeping the daily rollups current."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from failures.models import NOT_CAUSES, TraceAnalysis
from failures.propagation import runs_like_modes
from failures.selectors import modes_known_only_from_labels
from failures.services import mode_daily_counts_refresh
from traces.models import Trace

from .models import SkillRunLikeness, TrialRunLikeness

# A trace's incidents that name a cause: symptoms, weak leads and errors a run
# recovered from are shown on the run, not counted as failures found; nor is a
# failed check of the outcome (the harness's verdict: what failed, not why).
_CAUSE = "i.kind NOT IN ({}) AND i.stats ->> 'evidence' IS DISTINCT FROM 'check'".format(
    ", ".join(f"'{kind}'" for kind in NOT_CAUSES)
)
# A decided trace whose status was read from its hook session (traces.claude_code
# inferred_status) and that no posted outcome decided since.
INFERRED = """t.status IN ('succeeded', 'failed')
    AND t.metadata -> 'inferred_status' ->> 'status' = t.status
    AND NOT EXISTS (SELECT 1 FROM traces_outcome o WHERE o.trace_id = t.id)"""
# A trace that no time of its own dated: ingest stores its start as its arrival (the
# same statement's now()), and a hook session replayed from a log with no times is
# marked so (a live hook session's start is its arrival too, and is true).
UNDATED = """(t.metadata ? 'dated_by_arrival'
    OR (t.started_at = t.received_at AND NOT t.metadata ? 'hook_session'))"""
_REFRESH_SQL = f"""
    INSERT INTO metrics_dailyrollup (workspace_id, day, agent, traces, succeeded, failed,
                                     unknown, inferred, undated, steps, step_errors, incidents,
                                     tokens, cost_usd)
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date, t.agent, count(*),
           count(*) FILTER (WHERE t.status = 'succeeded'),
           count(*) FILTER (WHERE t.status = 'failed'),
           count(*) FILTER (WHERE t.status NOT IN ('succeeded', 'failed')),
           count(*) FILTER (WHERE {INFERRED}), count(*) FILTER (WHERE {UNDATED}),
           COALESCE(sum(t.step_count - t.span_count), 0),
           COALESCE(sum(t.error_count - t.span_error_count), 0),
           COALESCE(sum(i.n), 0), COALESCE(sum(t.total_tokens), 0), COALESCE(sum(t.cost_usd), 0)
    FROM traces_trace t
    LEFT JOIN LATERAL (SELECT count(*) AS n FROM failures_incident i
                       WHERE i.trace_id = t.id AND {_CAUSE}) i
           ON TRUE
    WHERE {{where}}
    GROUP BY 1, 2, 3
    ON CONFLICT (workspace_id, day, agent) DO UPDATE SET
        traces = EXCLUDED.traces, succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed,
        unknown = EXCLUDED.unknown, inferred = EXCLUDED.inferred, undated = EXCLUDED.undated,
        steps = EXCLUDED.steps,
        step_errors = EXCLUDED.step_errors,
        incidents = EXCLUDED.incidents, tokens = EXCLUDED.tokens, cost_usd = EXCLUDED.cost_usd
"""


# Skills in scope per trace: reported ones, else what the trace's session fetched
# (up to a day after the trace started: agents fetch at start, clocks drift).
_SKILL_SQL = """
    WITH t AS (
        SELECT t.id, t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date AS day, t.agent,
               t.status, t.skills_in_scope, t.session_id, t.started_at
        FROM traces_trace t WHERE {where}
    ), s AS (
        SELECT t.id, split_part(x, '@', 1) AS skill FROM t, unnest(t.skills_in_scope) x
        UNION
        SELECT t.id, split_part(x, '@', 1)
        FROM t
        JOIN skills_fetchlog f ON f.workspace_id = t.workspace_id AND f.session_id = t.session_id
        CROSS JOIN LATERAL jsonb_array_elements_text(f.skills) x
        WHERE cardinality(t.skills_in_scope) = 0 AND t.session_id <> ''
          AND f.created_at <= t.started_at + interval '1 day'
    )
    INSERT INTO metrics_skilldailyrollup (workspace_id, day, agent, skill, traces, succeeded,
                                          failed)
    SELECT t.workspace_id, t.day, t.agent, left(s.skill, 64), count(*),
           count(*) FILTER (WHERE t.status = 'succeeded'),
           count(*) FILTER (WHERE t.status = 'failed')
    FROM t JOIN s ON s.id = t.id
    GROUP BY 1, 2, 3, 4
"""

_KEYS = "(SELECT * FROM unnest(%s::bigint[], %s::date[], %s::text[]))"
# Two rewrites of one workspace's skill-cohort rollups never interleave: each
# deletes and re-inserts the same keys, and interleaved, the second insert hits a
# duplicate key (pg_advisory_xact_lock key; trials lock their Trial row instead).
SKILL_ROLLUP_LOCK = 0x534B52


def _lock_workspaces(cursor: CursorWrapper, workspace_ids: Iterable[int]) -> None:
    for workspace_id in sorted(set(workspace_ids)):  # one order: no deadlock
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                       [SKILL_ROLLUP_LOCK, workspace_id])  # fmt: skip


def rollups_refresh_for_traces(*, trace_ids: Iterable[int]) -> None:
    """Recompute the rollup rows (day × agent) that these traces fall in."""
    ids = list(trace_ids)
    if not ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT workspace_id, (started_at AT TIME ZONE 'UTC')::date, agent
            FROM traces_trace WHERE id = ANY(%s)
            """,
            [ids],
        )
        keys = cursor.fetchall()
        if not keys:
            return
        _lock_workspaces(cursor, (k[0] for k in keys))
        # Per-key recompute is idempotent: the same write twice gives the same rows.
        where = f"(t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date, t.agent) IN {_KEYS}"
        params = [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]]
        cursor.execute(_REFRESH_SQL.format(where=where), params)
        cursor.execute(
            f"DELETE FROM metrics_skilldailyrollup WHERE (workspace_id, day, agent) IN {_KEYS}",
            params,
        )
        cursor.execute(_SKILL_SQL.format(where=where), params)


def rollups_rebuild(*, workspace_id: int | None = None) -> int:
    """Recompute every rollup (of one workspace, or all) from traces, incidents and
    fetch logs: daily, skill-cohort and per-failure-mode counts: every day from a
    workspace's retention cutoff on, and every earlier day and agent that a stored
    trace falls on (imported runs of last year, kept because retention counts from
    arrival). Earlier days with no stored trace are left alone: their traces were
    purged, and the rollups are what remains of them."""
    from traces.services import retention_cutoff
    from workspaces.models import Workspace

    scopes = [workspace_id] if workspace_id is not None else list(
        Workspace.objects.values_list("pk", flat=True)
    )  # fmt: skip
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for ws in scopes:
            _lock_workspaces(cursor, [ws])
            day = retention_cutoff(workspace_id=ws).date()
            for table in ("metrics_dailyrollup", "metrics_skilldailyrollup"):
                cursor.execute(f"""
                    DELETE FROM {table} WHERE workspace_id = %(ws)s AND (
                        day >= %(day)s OR (day, agent) IN (
                            SELECT DISTINCT (t.started_at AT TIME ZONE 'UTC')::date, t.agent
                            FROM traces_trace t WHERE t.workspace_id = %(ws)s
                              AND (t.started_at AT TIME ZONE 'UTC')::date < %(day)s))
                """, {"ws": ws, "day": day})  # fmt: skip
            where = "t.workspace_id = %s"
            cursor.execute(_REFRESH_SQL.format(where=where), [ws])
            rows += cursor.rowcount
            cursor.execute(_SKILL_SQL.format(where=where), [ws])
            mode_daily_counts_refresh(workspace_id=ws)
    return rows


def rollups_sweep(*, overlap_seconds: int = 600, batch: int = 20_000) -> int:
    """Refresh the rollups of traces changed or diagnosed since the last sweep (minus
    an overlap, for transactions that committed late). Catches refreshes whose task
    message was lost while the broker was down, and incidents written by a path
    that recounts nothing itself (a re-diagnosis, a label); refreshing twice is
    harmless (idempotent)."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import SweepMark

    mark = SweepMark.objects.filter(name="rollups").first()
    since = (mark.watermark if mark else timezone.now() - timedelta(days=2)) - timedelta(
        seconds=overlap_seconds
    )
    refreshed, newest = 0, None
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id, max(at) FROM (
                SELECT id, updated_at AS at FROM traces_trace WHERE updated_at >= %s
                UNION ALL
                SELECT trace_id, analysed_at FROM failures_traceanalysis WHERE analysed_at >= %s
            ) changed GROUP BY id ORDER BY 2
            """,
            [since, since],
        )
        rows = cursor.fetchall()
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        rollups_refresh_for_traces(trace_ids=[r[0] for r in chunk])
        refreshed += len(chunk)
        newest = chunk[-1][1]
    if newest is not None:
        SweepMark.objects.update_or_create(name="rollups", defaults={"watermark": newest})
    return refreshed


# --- trials ----------------------------------------------------------------------------

# A trial's traces: those of its assigned sessions, from an hour before the
# session's assignment (agents fetch at start; clocks drift) until the trial ended.
_TRIAL_SQL = """
    INSERT INTO metrics_trialdailyrollup (workspace_id, trial_id, day, agent, arm, traces,
                                          succeeded, failed, mode_traces, tokens, seconds,
                                          steps, errors)
    SELECT t.workspace_id, a.trial_id, (t.started_at AT TIME ZONE 'UTC')::date, t.agent, a.arm,
           count(*), count(*) FILTER (WHERE t.status = 'succeeded'),
           count(*) FILTER (WHERE t.status = 'failed'),
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM failures_incident i
                                          WHERE i.trace_id = t.id
                                            AND i.failure_mode_id = ANY(%(modes)s))
                                  OR (EXISTS (SELECT 1 FROM metrics_trialrunlikeness l
                                              WHERE l.trial_id = a.trial_id
                                                AND l.trace_id = t.id AND l.like)
                                      -- a lead's "not the same failure" counts at once
                                      AND NOT EXISTS (
                                          SELECT 1 FROM failures_labelcandidate c
                                          JOIN failures_runlabel r ON r.id = c.label_id
                                          WHERE c.trace_id = t.id AND c.state = 'rejected'
                                            AND r.failure_mode_id = ANY(%(modes)s)))),
           COALESCE(sum(t.total_tokens), 0),
           COALESCE(sum(EXTRACT(EPOCH FROM (t.ended_at - t.started_at)))
                    FILTER (WHERE t.ended_at IS NOT NULL), 0),
           COALESCE(sum(t.step_count - t.span_count), 0),
           COALESCE(sum(t.error_count - t.span_error_count), 0)
    FROM skills_trialassignment a
    JOIN traces_trace t ON t.workspace_id = a.workspace_id AND t.session_id = a.session_id
    WHERE a.trial_id = %(trial)s AND t.started_at >= a.created_at - interval '1 hour'
      AND (%(ended)s::timestamptz IS NULL OR t.started_at <= %(ended)s::timestamptz)
    GROUP BY 1, 2, 3, 4, 5
"""

# The trial's failed runs (the same traces as above), for `runs_like_modes`.
_TRIAL_FAILED_SQL = """
    SELECT DISTINCT t.id
    FROM skills_trialassignment a
    JOIN traces_trace t ON t.workspace_id = a.workspace_id AND t.session_id = a.session_id
    WHERE a.trial_id = %(trial)s AND t.started_at >= a.created_at - interval '1 hour'
      AND (%(ended)s::timestamptz IS NULL OR t.started_at <= %(ended)s::timestamptz)
      AND t.status = 'failed'
"""


def trial_rollups_refresh(
    *, trial_id: int, recheck: bool = True, changed_modes: list[int] | None = None
) -> None:
    """Recompute one trial's rollup rows (idempotent). For modes that hold only
    labelled runs, the runs like them are compared first: the runs not compared
    yet, or every run of the trial again with `recheck` (given `changed_modes`:
    when one of the trial's modes is among them)."""
    from skills.models import Trial
    from skills.selectors import skill_source_modes

    with transaction.atomic(), connection.cursor() as cursor:
        # The trial's row, locked: two refreshes of one trial (the worker's sweep and
        # a refresh after an ingest) take turns; interleaved, the second insert hit
        # a duplicate key.
        trial = (
            Trial.objects.select_for_update(of=("self",)).select_related("skill").get(pk=trial_id)
        )
        modes = skill_source_modes(skill=trial.skill)
        params = {"trial": trial_id, "ended": trial.ended_at, "modes": modes}
        if changed_modes is not None:
            recheck = recheck and bool(set(modes) & set(changed_modes))
        if modes_known_only_from_labels(workspace_id=trial.workspace_id, mode_ids=modes):
            _trial_likeness_refresh(cursor, trial, modes, params, recheck=recheck)
        else:
            TrialRunLikeness.objects.filter(trial_id=trial_id).delete()
        cursor.execute("DELETE FROM metrics_trialdailyrollup WHERE trial_id = %s", [trial_id])
        cursor.execute(_TRIAL_SQL, params)


def _trial_likeness_refresh(
    cursor: CursorWrapper, trial: Any, modes: list[int], params: dict[str, Any], *, recheck: bool
) -> None:
    """New runs join a mode of labelled runs only once someone labels them: its
    failures in the arms are the diagnosed failed runs like its labelled ones."""
    cursor.execute(_TRIAL_FAILED_SQL, params)
    failed = [row[0] for row in cursor.fetchall()]
    _compare_runs(TrialRunLikeness, {"trial_id": trial.pk}, trial.workspace_id, modes, failed,
                  recheck=recheck)  # fmt: skip


def _compare_runs(
    model: Any, key: dict[str, int],
    workspace_id: int, modes: list[int], failed: Any, *, recheck: bool,
) -> None:  # fmt: skip
    """Compare the failed runs (`failed`: ids, or a query of them) not compared yet
    (`recheck`: all of them again) with the labelled runs of `modes`, and keep each
    answer in `model` (TrialRunLikeness or SkillRunLikeness) under `key`. A run not
    diagnosed yet waits: it is compared once it is. The database picks the runs to
    compare, so a refresh reads only those, however many were compared before."""
    checks = model.objects.filter(**key)
    if recheck:
        checks.delete()
    todo = sorted(
        TraceAnalysis.objects.filter(trace_id__in=failed)
        .exclude(trace_id__in=checks.values("trace_id"))
        .values_list("trace_id", flat=True)
    )
    if not todo:
        return
    like = runs_like_modes(workspace_id=workspace_id, mode_ids=modes, trace_ids=todo)
    model.objects.bulk_create(
        [model(workspace_id=workspace_id, trace_id=t, like=t in like, **key) for t in todo],
        ignore_conflicts=True,
    )


def trials_refresh(
    *, workspace_id: int | None = None, recheck: bool = True,
    changed_modes: list[int] | None = None,
) -> int:  # fmt: skip
    """Refresh the rollups and verdicts of running trials (of one workspace, or all);
    end a trial that reached its planned size; pause a skill that hurts where the
    workspace asked for it. Returns how many trials were refreshed. Without
    `recheck`, only runs not compared yet are compared with a labels-only mode's
    labelled runs (after an ingest, and the periodic refresh); with it every run is
    (after the modes' incidents change, which is when their labels do: given
    `changed_modes`, only for the trials of those modes)."""
    from django.utils import timezone

    from skills.models import Trial
    from skills.review import skill_roll_back_trial

    from .selectors import trial_result

    trials = Trial.objects.filter(ended_at=None).select_related("skill", "workspace")
    if workspace_id is not None:
        trials = trials.filter(workspace_id=workspace_id)
    count = 0
    for trial in trials:
        trial_rollups_refresh(trial_id=trial.pk, recheck=recheck, changed_modes=changed_modes)
        result = trial_result(trial=trial)
        trial.verdict, trial.verdict_at = result.verdict, timezone.now()
        fields = ["verdict", "verdict_at"]
        if result.reached:
            trial.ended_at, trial.end_reason = timezone.now(), "planned size reached"
            fields += ["ended_at", "end_reason"]
        trial.save(update_fields=fields)
        if result.verdict == "hurts" and trial.workspace.pause_harmful_skills:
            skill_roll_back_trial(
                skill=trial.skill, actor=None, automatic=True,
                reason="Paused automatically: its trial shows it hurts (workspace setting).",
            )  # fmt: skip
        count += 1
    return count


def trials_refresh_for_traces(*, trace_ids: list[int]) -> None:
    """After new traces: refresh the running trials of their workspaces, if any."""
    from skills.models import Trial

    workspaces = set(
        Trial.objects.filter(
            ended_at=None,
            workspace_id__in=Trace.objects.filter(pk__in=trace_ids).values("workspace_id"),
        ).values_list("workspace_id", flat=True)
    )
    for workspace_id in sorted(workspaces):
        trials_refresh(workspace_id=workspace_id, recheck=False)


# --- published skills of labels-only modes ----------------------------------------------


def skills_likeness_refresh(
    *, workspace_id: int | None = None, recheck: bool = False,
    changed_modes: list[int] | None = None,
) -> int:  # fmt: skip
    """For each published skill whose failure mode holds only labelled runs (of one
    workspace, or all): compare its agents' failed runs, from the impact window
    before its publication on, with the mode's labelled runs, so the observational
    impact can count the mode's recurrence before and after (metrics.selectors.
    skill_impacts). Only runs not compared yet, unless `recheck` (given
    `changed_modes`: for the skills of those modes only). Other skills' answers are
    dropped. Returns how many skills were compared."""
    from datetime import timedelta

    from skills.models import Skill, SkillStatus

    from .models import SkillDailyRollup
    from .selectors import IMPACT_WINDOW_DAYS, skill_publication_times

    skills = Skill.objects.filter(status=SkillStatus.PUBLISHED).exclude(published_version=None)
    if workspace_id is not None:
        skills = skills.filter(workspace_id=workspace_id)
    by_workspace: dict[int, list[Any]] = {}
    for skill in skills.order_by("pk"):
        by_workspace.setdefault(skill.workspace_id, []).append(skill)
    kept: list[int] = []
    for ws_id, ws_skills in by_workspace.items():
        published = skill_publication_times(workspace_id=ws_id, skills=ws_skills)
        for skill in ws_skills:
            mode = skill.source_mode_id
            if (
                skill.pk not in published
                or mode is None
                or not modes_known_only_from_labels(workspace_id=ws_id, mode_ids=[mode])
            ):
                continue
            kept.append(skill.pk)
            again = recheck and (changed_modes is None or mode in changed_modes)
            agents = list(
                SkillDailyRollup.objects.filter(workspace_id=ws_id, skill=skill.name)
                .values_list("agent", flat=True).order_by("agent").distinct()
            )  # fmt: skip
            since = published[skill.pk] - timedelta(days=IMPACT_WINDOW_DAYS + 1)
            failed = Trace.objects.filter(
                workspace_id=ws_id, agent__in=agents, status="failed", started_at__gte=since
            ).values("pk")
            _compare_runs(SkillRunLikeness, {"skill_id": skill.pk}, ws_id, [mode], failed,
                          recheck=again)  # fmt: skip
    stale = SkillRunLikeness.objects.exclude(skill_id__in=kept)
    if workspace_id is not None:
        stale = stale.filter(workspace_id=workspace_id)
    stale.delete()
    return len(kept)
