"""A mode's lift now compares runs within each agent (failures.stats): pooled over
agents, an agent whose runs all fail lifted every mode it had. Drops the stored
lift of modes whose incidents span more than one agent; it is computed again, the
new way, when the mode next changes or is re-clustered (the hourly re-clustering
refreshes every clustered mode). A mode of one agent keeps its lift: it is the
same figure either way."""

from django.db import migrations

DROP_SQL = """
UPDATE failures_failuremode f
SET stats = stats - 'lift' - 'lift_low' - 'lift_high'
WHERE stats ? 'lift' AND (
    SELECT count(DISTINCT t.agent) FROM failures_incident i
    JOIN traces_trace t ON t.id = i.trace_id
    WHERE i.failure_mode_id = f.id
) > 1
"""


class Migration(migrations.Migration):
    dependencies = [("failures", "0024_mode_daily_counts_of_old_runs")]

    operations = [migrations.RunSQL(DROP_SQL, migrations.RunSQL.noop)]
