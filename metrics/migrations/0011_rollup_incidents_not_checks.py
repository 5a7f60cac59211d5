"""The daily rollups' `incidents` no longer count a failed check of the outcome as a
cause found: it is the harness's verdict on the run (what failed, not why), with no
step named. Rewrites the count of every stored day whose traces are still there;
days whose traces were purged keep what they had (as 0007 did)."""

from django.db import migrations

RECOUNT_SQL = """
UPDATE metrics_dailyrollup r SET incidents = s.n
FROM (
    SELECT t.workspace_id, (t.started_at AT TIME ZONE 'UTC')::date AS day, t.agent,
           count(i.id) AS n
    FROM traces_trace t
    LEFT JOIN failures_incident i
           ON i.trace_id = t.id AND i.kind NOT IN ('recovered', 'symptom', 'weak')
              AND i.stats ->> 'evidence' IS DISTINCT FROM 'check'
    GROUP BY 1, 2, 3
) s
WHERE r.workspace_id = s.workspace_id AND r.day = s.day AND r.agent = s.agent
  AND r.incidents <> s.n
"""


class Migration(migrations.Migration):
    dependencies = [("metrics", "0010_skill_run_likeness")]

    operations = [migrations.RunSQL(RECOUNT_SQL, migrations.RunSQL.noop)]
