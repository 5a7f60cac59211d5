"""The bulk writer builds the words of the runs it adds once, after their steps.

Until now a new run's words (traces_tracewords) were written twice by the triggers:
when the run was inserted (its task's words), and again when its steps were (a
second row version, and the GIN index written twice over). The set-based ingest
(traces/ingest.py `write_traces`) now says, for the two statements that add new
runs and their steps, that it builds their words itself: the insert triggers then
leave them alone, and the writer builds each new run's words in one statement
(`traces_words_refresh`) before it does anything else. Every other writer, and
every other statement of this one, is kept by the triggers as before.
"""

import importlib

from django.db import migrations

# The setting the writer turns on (`SET LOCAL`-scoped: `set_config(..., true)`)
# around its inserts of new runs and their steps.
GUARD = """
    IF current_setting('hivemind.words_by_writer', true) = 'on' THEN
        RETURN NULL;  -- the writer builds these runs' words itself (traces/ingest.py)
    END IF;"""

_0014 = importlib.import_module("traces.migrations.0014_trace_words").WORDS_SQL
_0016 = importlib.import_module("traces.migrations.0016_linear_trace_words").LINEAR_SQL


def _function(sql: str, name: str) -> str:
    start = sql.index(f"FUNCTION {name}()")
    start = sql.rindex("CREATE", 0, start)
    return sql[start : sql.index("END $$;", start) + len("END $$;")]


def _guarded(definition: str) -> str:
    definition = definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    head, sep, tail = definition.partition("\nBEGIN")
    assert sep, definition
    return head + sep + GUARD + tail


TRACE_INSERTED = _function(_0014, "traces_trace_words_inserted").replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)
STEP_INSERTED = _function(_0016, "traces_step_words_inserted")


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0020_trace_span_counts"),
    ]

    operations = [
        migrations.RunSQL(
            "\n".join([_guarded(TRACE_INSERTED), _guarded(STEP_INSERTED)]),
            reverse_sql="\n".join([TRACE_INSERTED, STEP_INSERTED]),
        )
    ]
