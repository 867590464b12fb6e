-- The full-text index (events_fts) has its own watermark: it takes in the events with
-- id > indexed_id in chunks of thousands, or before a search reads it (store/sqlite.py), not
-- in every fold: a read (the page polls every few seconds) folds the summary tables in chunks
-- of a few hundred events, and FTS5 indexes such a chunk at ~1.4x the CPU per event of 5,000.
-- Until now the fold indexed each event as it folded it: the index holds every folded event.
ALTER TABLE fold_state ADD COLUMN indexed_id INTEGER NOT NULL DEFAULT 0;
UPDATE fold_state SET indexed_id = folded_id
