"""A mode's daily counts were rewritten only from the retention cutoff on, by the
incident's own time, so imported runs of last year (kept: retention counts from
arrival) never reached a mode's chart, trend or skill-impact counts. Recounts
every (mode, day) that a stored incident falls on; days whose incidents were
purged keep their counts."""

from django.db import migrations

RECOUNT_SQL = """
DELETE FROM failures_modedailycount d
USING (SELECT DISTINCT failure_mode_id, (occurred_at AT TIME ZONE 'UTC')::date AS day
       FROM failures_incident WHERE failure_mode_id IS NOT NULL) k
WHERE d.failure_mode_id = k.failure_mode_id AND d.day = k.day;

INSERT INTO failures_modedailycount (workspace_id, failure_mode_id, day, agent, incidents, traces)
SELECT i.workspace_id, i.failure_mode_id, (i.occurred_at AT TIME ZONE 'UTC')::date, t.agent,
       count(*), count(DISTINCT i.trace_id)
FROM failures_incident i JOIN traces_trace t ON t.id = i.trace_id
WHERE i.failure_mode_id IS NOT NULL
GROUP BY 1, 2, 3, 4
ON CONFLICT (failure_mode_id, day, agent)
DO UPDATE SET incidents = EXCLUDED.incidents, traces = EXCLUDED.traces;
"""


class Migration(migrations.Migration):
    dependencies = [("failures", "0023_no_lift_without_successes")]

    operations = [migrations.RunSQL(RECOUNT_SQL, migrations.RunSQL.noop)]
