"""A mode's lift needs successful runs to compare with: where its agents' runs all
failed, both failure rates are 1 and the stored "×1.0, may be chance" measured
nothing. Drops the lift of such stored modes (the figures are computed again when
a mode next changes, now without it)."""

from django.db import migrations

DROP_SQL = """
UPDATE failures_failuremode
SET stats = stats - 'lift' - 'lift_low' - 'lift_high'
WHERE stats ? 'lift' AND COALESCE((stats->>'successes')::int, 0) = 0
"""


class Migration(migrations.Migration):
    dependencies = [("failures", "0022_analysis_diagnoser_version")]

    operations = [migrations.RunSQL(DROP_SQL, migrations.RunSQL.noop)]
