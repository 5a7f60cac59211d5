"""The daily rollups' `incidents` count causes only: symptoms and weak leads no
longer count as failures found (errors a run recovered from never did). Rewrites
the count of every stored day whose traces are still there; days whose traces
were purged keep what they had."""

from django.db import migrations

RECOUNT_SQL = """
UPDATE metrics_dailyrollup r SET incidents = s.n
FROM (
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date AS day, t.agent,
           count(i.id) AS n
    FROM traces_trace t
    LEFT JOIN failures_incident i
           ON i.trace_id = t.id AND i.kind NOT IN ('recovered', 'symptom', 'weak')
    GROUP BY 1, 2, 3
) s
WHERE r.workspace_id = s.workspace_id AND r.day = s.day AND r.agent = s.agent
  AND r.incidents <> s.n
"""


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0006_trials"),
        ("failures", "0022_analysis_diagnoser_version"),
        ("traces", "0015_drop_redundant_indexes"),
    ]

    operations = [migrations.RunSQL(RECOUNT_SQL, migrations.RunSQL.noop)]
