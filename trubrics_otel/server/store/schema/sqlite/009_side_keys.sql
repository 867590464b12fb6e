-- One user's and one thread's events are found through two look-up tables kept by the deferred
-- fold (store/sqlite_fold.py), not through two indexes of events: each ingest transaction wrote
-- a page of each index per event (keys in random order: another user, another thread), and
-- wrote them again at each commit. The fold adds a fold's thousands of events to them in key
-- order, a few pages each. Each holds the index's key columns and the event's id; a read joins
-- the events by id (store/dialect.py, Dialect.keyed). Filled here from the events the fold has
-- taken in (id <= folded_id: the fold adds the rest, ignoring any already there).
CREATE TABLE events_by_user (
    user_id TEXT NOT NULL, ts_us INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (user_id, ts_us, id)
) WITHOUT ROWID;
CREATE TABLE events_by_thread (
    thread_id TEXT NOT NULL, ts_us INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (thread_id, ts_us, id)
) WITHOUT ROWID;
INSERT INTO events_by_user (user_id, ts_us, id)
    SELECT user_id, ts_us, id FROM events WHERE id <= (SELECT folded_id FROM fold_state)
    ORDER BY user_id, ts_us, id;
INSERT INTO events_by_thread (thread_id, ts_us, id)
    SELECT thread_id, ts_us, id FROM events
    WHERE thread_id IS NOT NULL AND id <= (SELECT folded_id FROM fold_state)
    ORDER BY thread_id, ts_us, id;
DROP INDEX IF EXISTS events_user_time;
DROP INDEX IF EXISTS events_thread;
-- A server of the release before still running on this file would fold without adding to the
-- look-ups, and move the watermark past its events: its fold now fails (its connections lack
-- this function; derived.register_functions gives it to ours), its events stay pending, and a
-- fold of this release takes them in.
CREATE TRIGGER fold_fills_lookups BEFORE UPDATE OF folded_id ON fold_state
    BEGIN SELECT trubrics_lookups(); END
