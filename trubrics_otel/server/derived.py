"""Tables derived from ``events``, kept current inside each insert's transaction.

::

    derived.ensure(connection, timeout_us)      # create / migrate / rebuild when needed
    derived.apply(connection, after_id, timeout_us)   # after inserting rows with id > after_id

Why: at a million events, grouping the raw table on every page view or ``stats`` call takes
seconds. These tables hold what the page and ``stats`` read, updated from the few rows a
batch adds, so reads touch thousands of rows, not millions:

==================  ===========================================================================
``sessions``        one row per session (per user, a new one after ``timeout_us`` idle)
``users``           per user: counts, tokens, cost, errors, first / last seen
``threads``         per thread: LLM turns and their totals, feedback events, title
``hourly``          per hour x kind x event x model: counts, tokens, cost, errors (no user: small)
``rollup``          the same per user too: for filtered distinct users and one user's numbers
``user_hours``      which users were active in each hour: distinct users without a filter
``latency_hist``    per hour x model x event: LLM latencies in log bins of 5 % (percentiles)
``events_fts``      full-text index (FTS5, contentless) over prompts and generations
==================  ===========================================================================

Sessions stay exact under late, out-of-order events: a new event joins the session it falls
in, extends a neighbour within the timeout, or bridges two into one (see :func:`_merge`).
A session's id is a hash of its user and start, as before. The table is built for one
timeout (the store's); queries for another timeout compute sessions at query time.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from itertools import groupby
from typing import Any

VERSION = 3
HOUR_US = 3600 * 1_000_000
DEFAULT_TIMEOUT_US = 30 * 60 * 1_000_000
LATENCY_BINS_PER_E = 20
"""A latency's bin is ``round(ln(latency) * 20)``: bins 5 % wide, a percentile within 2.5 %."""
NO_LATENCY_BIN = -100_000  # latency <= 0

_DERIVED = ("sessions", "users", "threads", "rollup", "hourly", "user_hours", "latency_hist")
_TABLES = """
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
"""

# Each statement reads the rows a batch added (id > ?1) and folds them into a derived table.
# ``WHERE true`` before ON CONFLICT: SQLite's parser needs it after a SELECT.
def _sums(table: str, *keys: str) -> str:
    """Fold new events into ``table``'s per-hour sums, grouped by the hour and ``keys``."""
    groups = ", ".join(str(i) for i in range(1, len(keys) + 2))
    return f"""INSERT INTO {table} SELECT ts_us - ts_us % 3600000000, {', '.join(keys)},
           COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), COUNT(cost_usd),
           SUM(error IS NOT NULL)
       FROM events NOT INDEXED WHERE id > ?1 AND true GROUP BY {groups}
       ON CONFLICT DO UPDATE SET events = events + excluded.events,
           input_tokens = _add(input_tokens, excluded.input_tokens),
           output_tokens = _add(output_tokens, excluded.output_tokens),
           cost_usd = _add(cost_usd, excluded.cost_usd),
           cost_events = cost_events + excluded.cost_events, errors = errors + excluded.errors"""


_EARLIER = "(first_us IS NULL OR (excluded.first_us, excluded.first_id) < (first_us, first_id))"
"""The batch's first turn is earlier than the stored one: it gives the thread its title."""
# ``NOT INDEXED``: each statement reads only the batch's new rows (``id > ?1``, a rowid range);
# left to choose, SQLite scanned a whole index (a thread, every user) once per batch.
_UPDATES = (
    """INSERT INTO users SELECT user_id, COUNT(*), SUM(kind = 'llm'), MIN(ts_us), MAX(ts_us),
           SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), SUM(error IS NOT NULL)
       FROM events NOT INDEXED WHERE id > ?1 AND true GROUP BY user_id
       ON CONFLICT (user_id) DO UPDATE SET events = events + excluded.events,
           llm_events = llm_events + excluded.llm_events,
           first_us = MIN(first_us, excluded.first_us), last_us = MAX(last_us, excluded.last_us),
           input_tokens = _add(input_tokens, excluded.input_tokens),
           output_tokens = _add(output_tokens, excluded.output_tokens),
           cost_usd = _add(cost_usd, excluded.cost_usd), errors = errors + excluded.errors""",
    """INSERT INTO threads (thread_id, turns, start_us, end_us, first_us, first_id, user_id, title,
                           errors, input_tokens, output_tokens, cost_usd)
       SELECT e.thread_id, COUNT(*), MIN(e.ts_us), MAX(e.ts_us), f.ts_us, f.id, f.user_id, f.prompt,
              SUM(e.error IS NOT NULL), SUM(e.input_tokens), SUM(e.output_tokens), SUM(e.cost_usd)
       FROM events e NOT INDEXED JOIN events f ON f.id = (
           SELECT id FROM events g NOT INDEXED WHERE g.id > ?1 AND g.thread_id = e.thread_id AND g.kind = 'llm'
           ORDER BY g.ts_us, g.id LIMIT 1)
       WHERE e.id > ?1 AND e.kind = 'llm' AND e.thread_id IS NOT NULL GROUP BY e.thread_id
       ON CONFLICT (thread_id) DO UPDATE SET turns = turns + excluded.turns,
           start_us = MIN(COALESCE(start_us, excluded.start_us), excluded.start_us),
           end_us = MAX(COALESCE(end_us, excluded.end_us), excluded.end_us),
           first_us = CASE WHEN _earlier THEN excluded.first_us ELSE first_us END,
           first_id = CASE WHEN _earlier THEN excluded.first_id ELSE first_id END,
           user_id = CASE WHEN _earlier THEN excluded.user_id ELSE user_id END,
           title = CASE WHEN _earlier THEN excluded.title ELSE title END,
           errors = errors + excluded.errors,
           input_tokens = _add(input_tokens, excluded.input_tokens),
           output_tokens = _add(output_tokens, excluded.output_tokens),
           cost_usd = _add(cost_usd, excluded.cost_usd)""".replace("_earlier", _EARLIER),
    """INSERT INTO threads (thread_id, feedback)
       SELECT thread_id, COUNT(*) FROM events NOT INDEXED
       WHERE id > ?1 AND kind = 'event' AND thread_id IS NOT NULL GROUP BY thread_id
       ON CONFLICT (thread_id) DO UPDATE SET feedback = feedback + excluded.feedback""",
    _sums("rollup", "user_id", "kind", "event", "COALESCE(model, '')"),
    _sums("hourly", "kind", "event", "COALESCE(model, '')"),
    """INSERT OR IGNORE INTO user_hours SELECT DISTINCT ts_us - ts_us % 3600000000, user_id
       FROM events NOT INDEXED WHERE id > ?1""",
    f"""INSERT INTO latency_hist SELECT ts_us - ts_us % 3600000000, COALESCE(model, ''), event,
           CASE WHEN latency > 0 THEN CAST(round(ln(latency) * {LATENCY_BINS_PER_E}) AS INTEGER)
                ELSE {NO_LATENCY_BIN} END, COUNT(*)
       FROM events NOT INDEXED WHERE id > ?1 AND kind = 'llm' AND latency IS NOT NULL GROUP BY 1, 2, 3, 4
       ON CONFLICT DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO events_fts (rowid, prompt, generation)
       SELECT id, prompt, generation FROM events NOT INDEXED WHERE id > ?1 AND kind = 'llm'""",
)


def register_functions(connection: sqlite3.Connection) -> None:
    """SQL functions the derived tables and session queries use."""
    connection.create_function("session_id", 2, session_id, deterministic=True)
    connection.create_function("_add", 2, _add, deterministic=True)


def ensure(connection: sqlite3.Connection, timeout_us: int | None) -> None:
    """Create the derived tables and fill them from ``events`` when new or from an older
    version; rebuild sessions for ``timeout_us`` when it differs from the table's (``None``:
    keep the table's, or the default for a new one). Takes the write lock only for that work."""
    if not _work_to_do(connection, timeout_us):
        return
    connection.execute("BEGIN IMMEDIATE")  # one process upgrades; the others then find it done
    try:
        if connection.execute("PRAGMA user_version").fetchone()[0] < VERSION:
            _upgrade(connection)
        stored = stored_timeout_us(connection)
        wanted = timeout_us if timeout_us is not None else stored if stored is not None else DEFAULT_TIMEOUT_US
        if stored != wanted:
            _rebuild_sessions(connection, wanted)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _work_to_do(connection: sqlite3.Connection, timeout_us: int | None) -> bool:
    if connection.execute("PRAGMA user_version").fetchone()[0] < VERSION:
        return True
    stored = stored_timeout_us(connection)
    return stored is None or (timeout_us is not None and stored != timeout_us)


def _upgrade(connection: sqlite3.Connection) -> None:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
    if "cost_usd" not in columns:  # a database from before version 2
        connection.execute("ALTER TABLE events ADD COLUMN cost_usd REAL")
        connection.execute(
            "UPDATE events SET cost_usd = json_extract(properties, '$.cost_usd') "
            "WHERE json_type(properties, '$.cost_usd') IN ('integer', 'real')")
    for statement in _TABLES.strip().split(";\n"):
        connection.execute(statement)
    for table in _DERIVED:  # built by an older version: rebuilt whole
        connection.execute(f"DELETE FROM {table}")
    connection.execute("INSERT INTO events_fts (events_fts) VALUES ('delete-all')")
    connection.execute("DELETE FROM meta WHERE key = 'session_timeout_us'")
    apply(connection, 0, None)
    connection.execute(f"PRAGMA user_version = {VERSION}")


def stored_timeout_us(connection: sqlite3.Connection) -> int | None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'session_timeout_us'").fetchone()
    return None if row is None else int(row[0])


def apply(connection: sqlite3.Connection, after_id: int, timeout_us: int | None) -> None:
    """Fold the events with ``id > after_id`` into every derived table (inside the caller's
    transaction). ``timeout_us=None`` leaves sessions alone."""
    for statement in _UPDATES:
        connection.execute(statement, (after_id,))
    if timeout_us is not None:
        _add_to_sessions(connection, after_id, timeout_us)


# --- sessions ---------------------------------------------------------------------------------

Interval = tuple[int, int, int, int]  # start_us, end_us, events, llm_events


def _add_to_sessions(connection: sqlite3.Connection, after_id: int, timeout_us: int) -> None:
    new = connection.execute(
        "SELECT user_id, ts_us, kind = 'llm' FROM events NOT INDEXED WHERE id > ? ORDER BY user_id, ts_us", (after_id,)
    ).fetchall()
    for user, rows in groupby(new, key=lambda row: row[0]):
        points = [(ts, ts, 1, int(llm)) for _, ts, llm in rows]
        low, high = points[0][0] - timeout_us, points[-1][0] + timeout_us
        window = "user_id = ? AND end_us >= ? AND start_us <= ?"
        existing = connection.execute(
            f"SELECT start_us, end_us, events, llm_events FROM sessions WHERE {window}", (user, low, high)
        ).fetchall()
        connection.execute(f"DELETE FROM sessions WHERE {window}", (user, low, high))
        connection.executemany(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
            [(user, start, end, session_id(user, start), n, llm)
             for start, end, n, llm in _merge([*map(tuple, existing), *points], timeout_us)],
        )


def _merge(intervals: list[Interval], timeout_us: int) -> list[Interval]:
    """Sessions from existing sessions and new single events: neighbours no more than
    ``timeout_us`` apart join (existing sessions are already more than that apart)."""
    merged: list[list[int]] = []
    for start, end, n, llm in sorted(intervals):
        if merged and start - merged[-1][1] <= timeout_us:
            last = merged[-1]
            last[1], last[2], last[3] = max(last[1], end), last[2] + n, last[3] + llm
        else:
            merged.append([start, end, n, llm])
    return [(s, e, n, llm) for s, e, n, llm in merged]


def _rebuild_sessions(connection: sqlite3.Connection, timeout_us: int) -> None:
    """All sessions from the events, in one pass of window functions."""
    connection.execute("DELETE FROM sessions")
    connection.execute(
        f"INSERT INTO sessions SELECT user_id, MIN(ts_us), MAX(ts_us), session_id(user_id, MIN(ts_us)), "
        f"COUNT(*), SUM(kind = 'llm') FROM ({numbered_sessions(timeout_us)}) GROUP BY user_id, n")
    connection.execute("INSERT OR REPLACE INTO meta VALUES ('session_timeout_us', ?)", (timeout_us,))


def numbered_sessions(timeout_us: int, where: str = "") -> str:
    """Every event's id, user, kind, time and session number ``n`` within its user: LAG finds
    the gaps, a running SUM numbers the sessions. ``where`` narrows the events (whole users
    only, or sessions would be cut)."""
    timeout_us = int(timeout_us)  # an int literal: safe to inline
    return f"""
        SELECT id, user_id, kind, ts_us,
               SUM(gap) OVER (PARTITION BY user_id ORDER BY ts_us, id ROWS UNBOUNDED PRECEDING) AS n
        FROM (
            SELECT id, user_id, kind, ts_us,
                   COALESCE(ts_us - LAG(ts_us) OVER (PARTITION BY user_id ORDER BY ts_us, id)
                            > {timeout_us}, 1) AS gap
            FROM events {where}
        )"""


def session_id(user_id: str, start_us: int) -> str:
    return hashlib.sha256(f"{user_id}\x00{start_us}".encode()).hexdigest()[:16]


def _add(a: Any, b: Any) -> Any:
    """NULL-preserving sum: NULL only when both are (no tokens / no cost seen yet)."""
    if a is None:
        return b
    return a if b is None else a + b


def latency_from_bin(bin_: int) -> float:
    return 0.0 if bin_ == NO_LATENCY_BIN else math.exp(bin_ / LATENCY_BINS_PER_E)
