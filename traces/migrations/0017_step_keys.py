"""A hook session's step keys move from `metadata.hook_steps` (a map every event
read, grew by a key and wrote back) to a table of their own, looked up one key at a
time. `metadata.hook_session` marks the trace as a hook session (what the map's
presence said to the sweep that settles silent sessions)."""

import django.db.models.deletion
from django.db import migrations, models


FORWARD = """
INSERT INTO traces_stepkey (trace_id, key, index)
SELECT t.id, left(e.key, 64), (e.value #>> '{}')::int
FROM traces_trace t
CROSS JOIN LATERAL jsonb_each(t.metadata -> 'hook_steps') AS e
WHERE jsonb_typeof(t.metadata -> 'hook_steps') = 'object'
  AND jsonb_typeof(e.value) = 'number' AND (e.value #>> '{}') ~ '^[0-9]{1,9}$'
ON CONFLICT (trace_id, key) DO NOTHING;
UPDATE traces_trace SET metadata = (metadata - 'hook_steps') || '{"hook_session": true}'::jsonb
WHERE metadata ? 'hook_steps';
"""

BACKWARD = """
UPDATE traces_trace t SET metadata = (t.metadata - 'hook_session') || jsonb_build_object(
    'hook_steps', (SELECT COALESCE(jsonb_object_agg(k.key, k.index), '{}'::jsonb)
                   FROM traces_stepkey k WHERE k.trace_id = t.id))
WHERE t.metadata ? 'hook_session';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0016_linear_trace_words"),
    ]

    operations = [
        migrations.CreateModel(
            name="StepKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("index", models.PositiveIntegerField()),
                (
                    "trace",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="traces.trace",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("trace", "key"), name="step_key_unique")
                ],
            },
        ),
        migrations.RunSQL(
            sql=FORWARD,
            reverse_sql=BACKWARD,
        ),
    ]
