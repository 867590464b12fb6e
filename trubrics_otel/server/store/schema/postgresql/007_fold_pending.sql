-- Deferred fold (store/postgres.py): an ingest transaction stores its events and their ids here,
-- and commits; the derived tables take them in later, in bulk, one folder at a time, in a
-- transaction that deletes the ids it folded (so each event is folded once, whichever worker
-- folds it). No index: the fold takes the whole table, and an ingest adds a heap row per event.
-- The events stored before were folded by their own transactions: nothing is pending. A server
-- of an older release on the same database folds its batches inline, as before, and adds none.
-- A later migration that fills a table from events must leave out the ids queued here (the
-- fold adds them) in the same statement, or ignore duplicates.
CREATE TABLE IF NOT EXISTS fold_pending (id BIGINT NOT NULL);
