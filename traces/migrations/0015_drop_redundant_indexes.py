"""Indexes that no query needs and every ingested row paid for.

- steps' own index on trace_id: step_unique_index (trace_id, index) leads with it;
- traces' own index on workspace_id: every index of the table leads with it;
- the GIN index on traces' search vector: trace search finds runs through
  traces_tracewords and checks a phrase on a run's row by its id.

The foreign keys stay as they are (only Django's state learns db_index=False; its
own AlterField would drop and re-validate both constraints over every row).
"""

import django.db.models.deletion
from django.db import migrations, models

DROP = """
DROP INDEX IF EXISTS traces_step_trace_id_ba5934e4;
DROP INDEX IF EXISTS traces_trace_workspace_id_e56df955;
"""
RESTORE = """
CREATE INDEX IF NOT EXISTS traces_step_trace_id_ba5934e4 ON traces_step (trace_id);
CREATE INDEX IF NOT EXISTS traces_trace_workspace_id_e56df955 ON traces_trace (workspace_id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0014_trace_words"),
        ("workspaces", "0013_model_settings"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="trace", name="trace_search_vector_gin"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="step",
                    name="trace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="steps",
                        to="traces.trace",
                    ),
                ),
                migrations.AlterField(
                    model_name="trace",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="traces",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(DROP, RESTORE)],
        ),
    ]
