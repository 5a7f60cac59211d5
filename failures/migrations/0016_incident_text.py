import django.db.models.deletion
import pgvector.django.indexes
import pgvector.django.vector
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("failures", "0015_incident_ws_id"),
        ("workspaces", "0013_model_settings"),
    ]

    operations = [
        migrations.CreateModel(
            name="IncidentText",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("embedding", pgvector.django.vector.VectorField(dimensions=384)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "indexes": [
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=128,
                        fields=["embedding"],
                        m=24,
                        name="incident_text_hnsw",
                        opclasses=["vector_cosine_ops"],
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "key"), name="incident_text_unique"
                    )
                ],
            },
        ),
        # The texts of incidents embedded before this table existed.
        migrations.RunSQL(
            """
            INSERT INTO failures_incidenttext (workspace_id, key, embedding)
            SELECT DISTINCT ON (workspace_id, embedding_key) workspace_id, embedding_key, embedding
            FROM failures_incident
            WHERE embedding_key <> '' AND embedding IS NOT NULL
            ORDER BY workspace_id, embedding_key, id
            """,
            migrations.RunSQL.noop,
        ),
    ]
