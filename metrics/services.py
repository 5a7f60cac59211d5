"""Writes for metrics: keeping the daily rollups current."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

_REFRESH_SQL = """
    INSERT INTO metrics_dailyrollup (workspace_id, day, agent, traces, succeeded, failed,
                                     unknown, steps, step_errors, tokens, cost_usd)
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date, t.agent, count(*),
           count(*) FILTER (WHERE t.status = 'succeeded'),
           count(*) FILTER (WHERE t.status = 'failed'),
           count(*) FILTER (WHERE t.status NOT IN ('succeeded', 'failed')),
           COALESCE(sum(t.step_count), 0), COALESCE(sum(t.error_count), 0),
           COALESCE(sum(t.total_tokens), 0), COALESCE(sum(t.cost_usd), 0)
    FROM traces_trace t
    WHERE {where}
    GROUP BY 1, 2, 3
    ON CONFLICT (workspace_id, day, agent) DO UPDATE SET
        traces = EXCLUDED.traces, succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed,
        unknown = EXCLUDED.unknown, steps = EXCLUDED.steps, step_errors = EXCLUDED.step_errors,
        tokens = EXCLUDED.tokens, cost_usd = EXCLUDED.cost_usd
"""


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
        # Per-key recompute is idempotent: the same write twice gives the same rows.
        where = (
            "(t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date, t.agent) IN "
            "(SELECT * FROM unnest(%s::bigint[], %s::date[], %s::text[]))"
        )
        cursor.execute(
            _REFRESH_SQL.format(where=where),
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
        )


def rollups_rebuild(*, workspace_id: int | None = None) -> int:
    """Recompute every rollup (of one workspace, or all) from the traces."""
    with transaction.atomic(), connection.cursor() as cursor:
        if workspace_id is None:
            cursor.execute("DELETE FROM metrics_dailyrollup")
            cursor.execute(_REFRESH_SQL.format(where="TRUE"))
        else:
            cursor.execute(
                "DELETE FROM metrics_dailyrollup WHERE workspace_id = %s", [workspace_id]
            )
            cursor.execute(_REFRESH_SQL.format(where="t.workspace_id = %s"), [workspace_id])
        return cursor.rowcount
