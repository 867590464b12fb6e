-- Schema 1 of the SQLite store: the events table and the tables derived from it (derived.py).
-- Every statement is idempotent: a database from before versioned schemas gains what it lacks.
CREATE TABLE IF NOT EXISTS events (
    id              INTEGER PRIMARY KEY,          -- insertion order
    kind            TEXT NOT NULL CHECK (kind IN ('event', 'llm')),
    user_id         TEXT NOT NULL,
    event           TEXT NOT NULL,                -- event name; generation event name for llm
    ts_us           INTEGER NOT NULL,             -- event time, microseconds since epoch (UTC)
    received_us     INTEGER NOT NULL,
    properties      TEXT NOT NULL,                -- JSON object
    trace_id        TEXT,                         -- from $trace_id / $span_id: the event's id
    span_id         TEXT,
    thread_id       TEXT,
    prompt          TEXT,
    generation      TEXT,
    prompt_event_name TEXT,
    assistant_id    TEXT,
    model           TEXT,
    latency         REAL,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    error           TEXT,
    cost_usd        REAL                          -- the cost_usd property, where present
);
CREATE UNIQUE INDEX IF NOT EXISTS events_span ON events (trace_id, span_id);
CREATE INDEX IF NOT EXISTS events_user_time ON events (user_id, ts_us, id);
CREATE INDEX IF NOT EXISTS events_time ON events (ts_us, id);
CREATE INDEX IF NOT EXISTS events_thread ON events (thread_id, ts_us, id) WHERE thread_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_name ON events (event, ts_us, id);
CREATE INDEX IF NOT EXISTS events_prompt_name ON events (prompt_event_name) WHERE kind = 'llm';
CREATE INDEX IF NOT EXISTS events_model ON events (model, ts_us, id) WHERE model IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    user_id TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL,
    session_id TEXT NOT NULL, events INTEGER NOT NULL, llm_events INTEGER NOT NULL,
    PRIMARY KEY (user_id, start_us)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_end ON sessions (end_us, user_id);
CREATE INDEX IF NOT EXISTS sessions_by_id ON sessions (session_id);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, events INTEGER NOT NULL, llm_events INTEGER NOT NULL,
    first_us INTEGER NOT NULL, last_us INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
    cost_usd REAL, errors INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_last ON users (last_us, user_id);
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY, turns INTEGER NOT NULL DEFAULT 0, start_us INTEGER, end_us INTEGER,
    first_us INTEGER, first_id INTEGER, user_id TEXT, title TEXT, errors INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, feedback INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS threads_end ON threads (end_us, thread_id) WHERE turns > 0;
CREATE INDEX IF NOT EXISTS threads_user ON threads (user_id, end_us) WHERE turns > 0;
CREATE TABLE IF NOT EXISTS rollup (
    hour_us INTEGER NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL, event TEXT NOT NULL,
    model TEXT NOT NULL, events INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
    cost_usd REAL, cost_events INTEGER NOT NULL, errors INTEGER NOT NULL,
    PRIMARY KEY (hour_us, user_id, kind, event, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_user ON rollup (user_id, hour_us);
CREATE INDEX IF NOT EXISTS rollup_event ON rollup (event, hour_us, user_id);
CREATE INDEX IF NOT EXISTS rollup_model ON rollup (model, hour_us, user_id);
CREATE TABLE IF NOT EXISTS hourly (
    hour_us INTEGER NOT NULL, kind TEXT NOT NULL, event TEXT NOT NULL, model TEXT NOT NULL,
    events INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
    cost_events INTEGER NOT NULL, errors INTEGER NOT NULL, PRIMARY KEY (hour_us, kind, event, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_hours (
    hour_us INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (hour_us, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latency_hist (
    hour_us INTEGER NOT NULL, model TEXT NOT NULL, event TEXT NOT NULL, bin INTEGER NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (hour_us, model, event, bin)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(prompt, generation, content='');
