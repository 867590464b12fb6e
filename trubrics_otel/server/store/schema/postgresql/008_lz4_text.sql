-- Schema 8 of the PostgreSQL store: the text columns of events that can be long compressed with
-- lz4, not PostgreSQL's default pglz. A row over ~2 KB (a prompt with its context, a long
-- generation) is compressed as it is inserted: with ~5 KB of context in each prompt, PostgreSQL's
-- CPU per LLM event was 191-212 µs with pglz, 120-156 with lz4, its table ~20 % larger
-- (benchmarks/bench_postgres_store.py --modes long). Only rows
-- written from now on: stored ones keep pglz and read as before. A server without lz4 (built
-- without it, or before PostgreSQL 14) keeps pglz: the change is skipped, with a notice.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE events ALTER COLUMN properties SET COMPRESSION lz4, ALTER COLUMN prompt SET COMPRESSION lz4, '
            'ALTER COLUMN generation SET COMPRESSION lz4, ALTER COLUMN words SET COMPRESSION lz4, '
            'ALTER COLUMN error SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
    RAISE NOTICE 'events keep pglz compression: %', SQLERRM;
END
$$;
