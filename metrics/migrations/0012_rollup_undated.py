"""The daily rollups count the runs that no time of their own dated (`undated`), so
the Overview can say how many of a period's runs are there only because they
arrived in it (logs imported with no times). Counts the stored days whose traces
are still there; days whose traces were purged keep 0."""

from django.db import migrations, models

RECOUNT_SQL = """
UPDATE metrics_dailyrollup r SET undated = s.n
FROM (
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date AS day, t.agent,
           count(*) AS n
    FROM traces_trace t
    WHERE t.metadata ? 'dated_by_arrival'
       OR (t.started_at = t.received_at AND NOT t.metadata ? 'hook_session')
    GROUP BY 1, 2, 3
) s
WHERE r.workspace_id = s.workspace_id AND r.day = s.day AND r.agent = s.agent
"""


class Migration(migrations.Migration):
    dependencies = [("metrics", "0011_rollup_incidents_not_checks")]

    operations = [
        migrations.AddField(
            model_name="dailyrollup",
            name="undated",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(RECOUNT_SQL, migrations.RunSQL.noop),
    ]
