"""The daily rollups count, of their succeeded and failed runs, those whose
outcome was read from a hook session rather than reported (`inferred`), so the
Overview can say how much of a success rate is the product's reading. Counts the
stored days whose traces are still there; days whose traces were purged keep 0."""

from django.db import migrations, models

RECOUNT_SQL = """
UPDATE metrics_dailyrollup r SET inferred = s.n
FROM (
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date AS day, t.agent,
           count(*) AS n
    FROM traces_trace t
    WHERE t.status IN ('succeeded', 'failed')
      AND t.metadata -> 'inferred_status' ->> 'status' = t.status
      AND NOT EXISTS (SELECT 1 FROM traces_outcome o WHERE o.trace_id = t.id)
    GROUP BY 1, 2, 3
) s
WHERE r.workspace_id = s.workspace_id AND r.day = s.day AND r.agent = s.agent
"""


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0007_rollup_incidents_are_causes"),
        ("traces", "0015_drop_redundant_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="dailyrollup",
            name="inferred",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(RECOUNT_SQL, migrations.RunSQL.noop),
    ]
