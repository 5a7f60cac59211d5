"""A run's words kept in time linear in its size, and added to instead of rebuilt.

0014's aggregate concatenated the steps' vectors one at a time, copying the run's
words each time: quadratic in a run's steps (a 5,000-step run took 1.2 s of the
database to add one step). And every step added to a run re-read all its steps:
a hook session, which adds a step per event, paid that on every event.

Now the steps' lexemes are gathered as text and parsed into one vector once
(`traces_words_join`), and a statement that adds steps to a run that had some, or
only adds words to its steps (a call's output arriving), adds their words to the
run's instead of rebuilding them. A run's first steps, a step that loses a word,
moves to another run or is deleted still rebuild the run's words.
"""

from django.db import migrations

LINEAR_SQL = """
-- The words of `base` and then of each vector of `more` in order, stripped of
-- positions, while they fit in about 500 KB (a tsvector holds at most 1 MB).
-- Past 16 KB of words, more than a few vectors are gathered as text and parsed
-- into one vector at the end (merging each would copy the words each time); when
-- the text gathered would pass the cap it is parsed there (duplicates merge), and
-- once that holds 90% of the cap nothing more is added: each parse is then of new
-- text, so the whole is linear.
CREATE FUNCTION traces_words_join(base tsvector, more tsvector[]) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    cap constant int := 500000;
    -- A few vectors (a hook event), or words still small: each is merged into the
    -- sorted words, which costs less than printing and parsing them.
    few constant boolean := cardinality(more) <= 8;
    small constant int := 16384;
    acc tsvector := strip(COALESCE(base, ''::tsvector));
    size int := pg_column_size(acc);
    parts text[];  -- the words as text, once gathering
    pending boolean := false;
    v tsvector;
    n int;
BEGIN
    FOREACH v IN ARRAY COALESCE(more, '{}'::tsvector[]) LOOP
        CONTINUE WHEN v IS NULL;
        v := strip(v);
        n := pg_column_size(v);
        IF parts IS NULL THEN
            IF few OR size + n <= small THEN
                CONTINUE WHEN size + n > cap;
                acc := acc || v;
                size := pg_column_size(acc);
                CONTINUE;
            END IF;
            parts := ARRAY[acc::text];
        END IF;
        IF size + n > cap AND pending THEN
            acc := array_to_string(parts, ' ')::tsvector;
            parts := ARRAY[acc::text];
            size := pg_column_size(acc);
            pending := false;
            EXIT WHEN size > cap * 0.9;
        END IF;
        CONTINUE WHEN size + n > cap;
        size := size + n;
        parts := parts || v::text;
        pending := true;
    END LOOP;
    IF NOT pending THEN
        RETURN acc;
    END IF;
    RETURN array_to_string(parts, ' ')::tsvector;
END $$;

CREATE OR REPLACE FUNCTION traces_words_refresh(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO traces_tracewords (trace_id, workspace_id, started_at, words)
    SELECT t.id, t.workspace_id, t.started_at, traces_words_join(t.search_vector, ARRAY(
        SELECT s.search_vector FROM traces_step s WHERE s.trace_id = t.id ORDER BY s.index))
    FROM traces_trace t WHERE t.id = ANY(ids)
    ON CONFLICT (trace_id) DO UPDATE SET workspace_id = EXCLUDED.workspace_id,
        started_at = EXCLUDED.started_at, words = EXCLUDED.words
$$;

-- Steps added to a run that had steps before (a hook event, an OTLP batch, a
-- trace sent again with more steps): their words are added to the run's. A run
-- whose steps are all new (a new trace, a transcript replacing its steps) is
-- built from them and its trace. A run with no words row yet is rebuilt.
CREATE OR REPLACE FUNCTION traces_step_words_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    grown bigint[];
BEGIN
    -- Whether a run had steps before: one outside the new steps' span of indexes
    -- when they are contiguous (a probe or two), else more steps than the new ones.
    -- A run that had none gets its trace's words and the new steps' (all it has).
    WITH added AS (
        SELECT n.trace_id, array_agg(n.search_vector ORDER BY n.index) AS more,
               count(*) AS n, min(n.index) AS lo, max(n.index) AS hi
        FROM new_steps n GROUP BY n.trace_id
    ), runs AS (
        SELECT a.trace_id, a.more, CASE
            WHEN a.hi - a.lo + 1 = a.n THEN EXISTS (
                SELECT 1 FROM traces_step s
                WHERE s.trace_id = a.trace_id AND (s.index < a.lo OR s.index > a.hi))
            ELSE (SELECT count(*) FROM traces_step s WHERE s.trace_id = a.trace_id) > a.n
        END AS had_steps
        FROM added a
    ), updated AS (
        UPDATE traces_tracewords d SET words = CASE WHEN r.had_steps
            THEN traces_words_join(d.words, r.more)
            ELSE traces_words_join(t.search_vector, r.more) END
        FROM runs r JOIN traces_trace t ON t.id = r.trace_id
        WHERE d.trace_id = r.trace_id
        RETURNING d.trace_id
    )
    SELECT array_agg(trace_id) INTO grown FROM updated;
    PERFORM traces_words_refresh(ARRAY(
        SELECT DISTINCT n.trace_id FROM new_steps n
        WHERE n.trace_id <> ALL(COALESCE(grown, '{}'::bigint[]))));
    RETURN NULL;
END $$;

-- A step rewritten with every word it had (and more): the run's words gain the
-- new ones. A step that lost a word, or moved to another run, rebuilds the words
-- of the runs concerned (another step may still hold the word).
CREATE OR REPLACE FUNCTION traces_step_words_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rebuild bigint[];
BEGIN
    WITH changed AS (
        SELECT n.trace_id,
               bool_and(n.trace_id = o.trace_id
                        AND length(strip(n.search_vector) || strip(o.search_vector))
                            = length(strip(n.search_vector))) AS gained_only,
               array_agg(n.search_vector ORDER BY n.index) AS more
        FROM new_steps n JOIN old_steps o ON o.id = n.id
        WHERE n.search_vector IS DISTINCT FROM o.search_vector OR n.trace_id <> o.trace_id
        GROUP BY n.trace_id
    ), updated AS (
        UPDATE traces_tracewords d SET words = traces_words_join(d.words, c.more)
        FROM changed c WHERE d.trace_id = c.trace_id AND c.gained_only
        RETURNING d.trace_id
    )
    SELECT array_agg(c.trace_id) INTO rebuild FROM changed c
    WHERE c.trace_id NOT IN (SELECT trace_id FROM updated);
    PERFORM traces_words_refresh(ARRAY(
        SELECT unnest(COALESCE(rebuild, '{}'::bigint[]))
        UNION
        SELECT o.trace_id FROM new_steps n JOIN old_steps o ON o.id = n.id
        WHERE n.trace_id <> o.trace_id));
    RETURN NULL;
END $$;

DROP AGGREGATE traces_words_agg(tsvector);
DROP FUNCTION traces_words_add(tsvector, tsvector);
"""

# 0014's definitions, as they were.
QUADRATIC_SQL = """
CREATE FUNCTION traces_words_add(acc tsvector, more tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN more IS NULL THEN acc
                WHEN pg_column_size(acc) + pg_column_size(more) > 500000 THEN acc
                ELSE acc || strip(more) END
$$;

CREATE AGGREGATE traces_words_agg(tsvector) (
    SFUNC = traces_words_add, STYPE = tsvector, INITCOND = ''
);

CREATE OR REPLACE FUNCTION traces_words_refresh(ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO traces_tracewords (trace_id, workspace_id, started_at, words)
    SELECT t.id, t.workspace_id, t.started_at, traces_words_add(
        strip(t.search_vector),
        (SELECT traces_words_agg(s.search_vector ORDER BY s.index)
         FROM traces_step s WHERE s.trace_id = t.id))
    FROM traces_trace t WHERE t.id = ANY(ids)
    ON CONFLICT (trace_id) DO UPDATE SET workspace_id = EXCLUDED.workspace_id,
        started_at = EXCLUDED.started_at, words = EXCLUDED.words
$$;

CREATE OR REPLACE FUNCTION traces_step_words_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM traces_words_refresh(ARRAY(SELECT DISTINCT trace_id FROM new_steps));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION traces_step_words_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM traces_words_refresh(ARRAY(
        SELECT n.trace_id FROM new_steps n JOIN old_steps o ON o.id = n.id
        WHERE n.search_vector IS DISTINCT FROM o.search_vector OR n.trace_id <> o.trace_id
        UNION
        SELECT o.trace_id FROM new_steps n JOIN old_steps o ON o.id = n.id
        WHERE n.trace_id <> o.trace_id));
    RETURN NULL;
END $$;

DROP FUNCTION traces_words_join(tsvector, tsvector[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0015_drop_redundant_indexes"),
    ]

    operations = [migrations.RunSQL(LINEAR_SQL, reverse_sql=QUADRATIC_SQL)]
