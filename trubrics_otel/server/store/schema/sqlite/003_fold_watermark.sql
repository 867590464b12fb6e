-- Deferred fold (store/sqlite.py): an ingest transaction commits its events only; the derived
-- tables, the full-text index and the hooks' tables take in the events with id > folded_id later,
-- in one transaction that also moves folded_id, so no event is folded twice or skipped. An older
-- release folded each transaction's events before its COMMIT: every stored event is folded.
-- A later migration that fills a table from events must take only id <= folded_id (the fold
-- adds the rest) or ignore duplicates.
CREATE TABLE IF NOT EXISTS fold_state (
    one INTEGER PRIMARY KEY CHECK (one = 1), folded_id INTEGER NOT NULL
);
INSERT INTO fold_state (one, folded_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;

-- A server of an older release still running on this file would go on folding each batch as it
-- commits, and a fold of this release would count its events again: its inline fold now fails
-- (its connections lack this function; derived.register_functions gives it to ours), so its
-- batches are refused (the sender retries) until it is restarted on this release.
CREATE TRIGGER IF NOT EXISTS users_folded_by_this_release BEFORE INSERT ON users
    BEGIN SELECT trubrics_deferred_fold(); END
