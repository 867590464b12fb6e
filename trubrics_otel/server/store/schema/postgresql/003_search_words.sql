-- Schema 3 of the PostgreSQL store: full-text search over words the server extracts
-- (dialect.search_words: runs of letters and digits, lowercased, distinct, sorted, as SQLite's
-- FTS5 splits them), stored in ``words`` and indexed as lexemes. The expression index over
-- to_tsvector('simple', prompt || generation) had PostgreSQL's text parser take ~50 µs of CPU
-- per LLM event (more than the rest of its insert); the words arrive ready to index.
ALTER TABLE events ADD COLUMN words TEXT;
DROP INDEX events_text;  -- first: the rows the UPDATE writes are not parsed for it
-- Events stored before: their words split here as the server splits them (letters and digits
-- per the database's locale).
UPDATE events SET words = (
    SELECT string_agg(DISTINCT w, ' ' ORDER BY w)
    FROM regexp_split_to_table(lower(COALESCE(prompt, '') || ' ' || COALESCE(generation, '')),
                               '[^[:alnum:]]+') AS w
    WHERE w <> '' AND octet_length(w) <= 2046)
WHERE kind = 'llm';
CREATE INDEX events_text ON events USING GIN (array_to_tsvector(string_to_array(words, ' ')))
    WHERE kind = 'llm';
