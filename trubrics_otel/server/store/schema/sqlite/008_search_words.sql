-- The full-text index (events_fts) keeps, per word, the events holding it and no positions
-- (detail=none): a search asks for words anywhere in the event, the last as a prefix, as
-- PostgreSQL's does (store/dialect.py), never for a phrase; FTS5 does ~40% less work per indexed
-- prompt. Rebuilt from the events it held (id <= fold_state.indexed_id, store/text_index.py):
-- the ones after its watermark are indexed later, as before. The merge settings (schema 004)
-- live in the index's own config table: set again.
DROP TABLE IF EXISTS events_fts;
CREATE VIRTUAL TABLE events_fts USING fts5(prompt, generation, content='', detail=none);
INSERT INTO events_fts (events_fts, rank) VALUES ('hashsize', 8388608);
INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 8);
INSERT INTO events_fts (rowid, prompt, generation)
    SELECT id, prompt, generation FROM events NOT INDEXED
    WHERE id <= (SELECT indexed_id FROM fold_state) AND kind = 'llm'
