"""Tables derived from ``events``, kept current by folding new events in.

::

    derived.ensure_sessions(connection, timeout_us)   # rebuild sessions for another timeout
    derived.apply(connection, after_id, timeout_us)   # fold the rows with id > after_id in

Why: at a million events, grouping the raw table on every page view or ``stats`` call takes
seconds. These tables hold what the page and ``stats`` read, updated from the rows added
since the last fold, so reads touch thousands of rows, not millions. When: both engines fold
in bulk, once thousands are pending and before any read (:mod:`.sqlite`, :mod:`.postgres_fold`):

==================  ===========================================================================
``sessions``        one row per session (per user, a new one after ``timeout_us`` idle)
``users``           per user: counts, tokens, cost, errors, first / last seen
``threads``         per thread: LLM turns, totals, first and last turn (:mod:`.threads`; the
                    analyses' conversations and feedback read it too)
``hourly``          per hour x kind x event x model: counts, tokens, cost, errors (no user: small)
``rollup``          the same per user too: distinct users per hour, filtered by event name or
                    model or not (its key starts with the hour and the user; no index by user:
                    one user's numbers come from their events, through their look-up)
``latency_hist``    per hour x model x event: LLM latencies in log bins of 5 %, each bin's count
                    and sum (percentiles: the mean of the bin the rank falls in)
``events_by_*``     SQLite: (user, time, id) and (thread, time, id) of each event, where
                    PostgreSQL has indexes of ``events`` (:meth:`.Dialect.keyed`); filled
                    first in the fold (:mod:`.sqlite_fold`), before the statements here
``events_fts``      SQLite: full-text index (FTS5, contentless, no positions: words, never
                    phrases) over prompts and generations, filled in chunks of its own
                    (:mod:`.text_index`, not here);
                    PostgreSQL: a GIN expression index on ``events``, kept by the database
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

from trubrics_otel.server.store import threads
from trubrics_otel.server.store.dialect import Dialect

VERSION = 3
DEFAULT_TIMEOUT_US = 30 * 60 * 1_000_000
LATENCY_BINS_PER_E = 20
NO_LATENCY_BIN = -100_000  # latency <= 0
LATENCY_BIN = (f"CASE WHEN latency > 0 THEN CAST(round(ln(latency) * {LATENCY_BINS_PER_E}) AS INTEGER) "
               f"ELSE {NO_LATENCY_BIN} END")
"""A latency's bin, ``round(ln(latency) * 20)``: bins 5 % wide. A bin keeps its count and its
latencies' sum, so a percentile is the mean of the bin its rank falls in: at most a bin's
width (~5 %) from the nearest rank, both being in the bin, and exact when the bin's latencies
are equal (1.2 s on every call reads 1.2, not the bin's centre, 1.22)."""

_DERIVED = ("sessions", "users", "threads", "rollup", "hourly", "latency_hist")


def _add(a: str, b: str) -> str:
    """NULL-preserving sum: NULL only when both are (no tokens / no cost seen yet)."""
    return f"COALESCE({a} + {b}, {a}, {b})"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


_LLM = _count("kind = 'llm'")


def _least(a: str, b: str, greatest: bool = False) -> str:
    return f"CASE WHEN {a} {'>' if greatest else '<'} {b} THEN {a} ELSE {b} END"


# Each statement reads the rows a batch added (id > ?) and folds them into a derived table.
# ``WHERE true`` before ON CONFLICT: SQLite's parser needs it after a SELECT. Columns of the
# target are named with its table (PostgreSQL finds a bare name ambiguous with ``excluded``).
# ``{rows}``: the batch's rows, ``Dialect.new_rows``: in SQLite's fold a narrow copy of them
# (:mod:`.sqlite_fold`), else ``events`` NOT INDEXED (left to choose, SQLite scanned a whole
# index (a thread, every user) once per batch instead of the batch's rowid range).
def _sums(table: str, *keys: str) -> str:
    """Fold new events into ``table``'s per-hour sums, grouped by the hour and ``keys``."""
    groups = ", ".join(str(i) for i in range(1, len(keys) + 2))
    t = table
    return f"""INSERT INTO {table} SELECT ts_us - ts_us % 3600000000, {', '.join(keys)},
           COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), COUNT(cost_usd),
           {_count('error IS NOT NULL')}
       FROM {{rows}} WHERE id > ? AND true GROUP BY {groups}
       ON CONFLICT ({', '.join(_KEYS[table])}) DO UPDATE SET events = {t}.events + excluded.events,
           input_tokens = {_add(f'{t}.input_tokens', 'excluded.input_tokens')},
           output_tokens = {_add(f'{t}.output_tokens', 'excluded.output_tokens')},
           cost_usd = {_add(f'{t}.cost_usd', 'excluded.cost_usd')},
           cost_events = {t}.cost_events + excluded.cost_events, errors = {t}.errors + excluded.errors"""


_KEYS = {"rollup": ("hour_us", "user_id", "kind", "event", "model"),
         "hourly": ("hour_us", "kind", "event", "model")}
_UPDATES = (
    f"""INSERT INTO users SELECT user_id, COUNT(*), {_count("kind = 'llm'")}, MIN(ts_us), MAX(ts_us),
           SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), {_count('error IS NOT NULL')}
       FROM {{rows}} WHERE id > ? AND true GROUP BY user_id
       ON CONFLICT (user_id) DO UPDATE SET events = users.events + excluded.events,
           llm_events = users.llm_events + excluded.llm_events,
           first_us = {_least('users.first_us', 'excluded.first_us')},
           last_us = {_least('users.last_us', 'excluded.last_us', greatest=True)},
           input_tokens = {_add('users.input_tokens', 'excluded.input_tokens')},
           output_tokens = {_add('users.output_tokens', 'excluded.output_tokens')},
           cost_usd = {_add('users.cost_usd', 'excluded.cost_usd')}, errors = users.errors + excluded.errors""",
    _sums("rollup", "user_id", "kind", "event", "COALESCE(model, '')"),
    _sums("hourly", "kind", "event", "COALESCE(model, '')"),
    f"""INSERT INTO latency_hist SELECT ts_us - ts_us % 3600000000, COALESCE(model, ''), event,
           {LATENCY_BIN}, COUNT(*), SUM(latency)
       FROM {{rows}} WHERE id > ? AND kind = 'llm' AND latency IS NOT NULL GROUP BY 1, 2, 3, 4
       ON CONFLICT (hour_us, model, event, bin) DO UPDATE SET n = latency_hist.n + excluded.n,
           total = latency_hist.total + excluded.total""",
)


def updates(dialect: Dialect) -> list[str]:
    """The statements :func:`apply` runs, in ``dialect``."""
    return [s.replace("{rows}", dialect.new_rows()) for s in _UPDATES] + [threads.fold(dialect)]


def register_functions(connection: sqlite3.Connection) -> None:
    """SQL functions SQLite needs for sessions (PostgreSQL: a SQL function in its schema), and
    the ones that let this release's fold write ``users`` (schema ``003_fold_watermark``) and
    move the watermark (``009_side_keys``: a release whose fold leaves the look-ups out cannot)."""
    connection.create_function("session_id", 2, session_id, deterministic=True)
    connection.create_function("trubrics_seconds", 1, seconds, deterministic=True)
    connection.create_function("trubrics_deferred_fold", 0, _folding)
    connection.create_function("trubrics_lookups", 0, _folding)  # schema 009: a fold that fills them


def _folding() -> int:
    return 1


def ensure_sessions(connection: Any, timeout_us: int | None) -> None:
    """Rebuild sessions for ``timeout_us`` when it differs from the table's (``None``: keep
    the table's, or the default for a new one); inside the caller's write transaction."""
    stored = stored_timeout_us(connection)
    wanted = timeout_us if timeout_us is not None else stored if stored is not None else DEFAULT_TIMEOUT_US
    if stored != wanted:
        _rebuild_sessions(connection, wanted)


def upgrade_sqlite(connection: sqlite3.Connection) -> None:
    """A SQLite database from before these tables (``PRAGMA user_version`` < 3): add what it
    lacks and build every derived table from its events."""
    add_cost_column(connection)
    for table in _DERIVED:  # built by an older version: rebuilt whole
        connection.execute(f"DELETE FROM {table}")
    connection.execute("INSERT INTO events_fts (events_fts) VALUES ('delete-all')")
    connection.execute("UPDATE fold_state SET indexed_id = 0")  # indexed again, in chunks
    connection.execute("DELETE FROM meta WHERE key = 'session_timeout_us'")
    apply(connection, 0, None)
    connection.execute(f"PRAGMA user_version = {VERSION}")


def add_cost_column(connection: sqlite3.Connection) -> None:
    """A SQLite database from before version 2 (``events`` without ``cost_usd``): the column,
    filled from the properties; before the schema's migrations, which read it."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
    if columns and "cost_usd" not in columns:
        connection.execute("ALTER TABLE events ADD COLUMN cost_usd REAL")
        connection.execute(
            "UPDATE events SET cost_usd = json_extract(properties, '$.cost_usd') "
            "WHERE json_type(properties, '$.cost_usd') IN ('integer', 'real')")


def stored_timeout_us(connection: Any) -> int | None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'session_timeout_us'").fetchone()
    return None if row is None else int(row[0])


def apply(connection: Any, after_id: int, timeout_us: int | None) -> None:
    """Fold the events with ``id > after_id`` into every derived table (inside the caller's
    transaction). ``timeout_us=None`` leaves sessions alone (PostgreSQL folds them in SQL)."""
    for statement in updates(connection.dialect):
        connection.execute(statement, (after_id,) * statement.count("?"))
    if timeout_us is not None:
        _add_to_sessions(connection, after_id, timeout_us)


# --- sessions ---------------------------------------------------------------------------------

Interval = tuple[int, int, int, int]  # start_us, end_us, events, llm_events


_TOUCHED = """SELECT s.user_id, s.start_us, s.end_us, s.events, s.llm_events
    FROM (SELECT user_id, MIN(ts_us) - ? AS low, MAX(ts_us) + ? AS high FROM {rows} WHERE id > ? GROUP BY user_id) AS w
    CROSS JOIN sessions s ON s.user_id = w.user_id AND s.end_us >= w.low AND s.start_us <= w.high"""
"""The sessions within the timeout of each user's first and last new event, one statement (one
per user, prepared once, cost ~1 µs per folded LLM event more; SQLite: a seek per user of the
fold, ``CROSS JOIN`` keeps that order)."""


def _add_to_sessions(connection: Any, after_id: int, timeout_us: int) -> None:
    """Merge the batch's events into the sessions they touch: the touched sessions read, then
    merged, then written (one statement of each kind)."""
    batch = connection.dialect.new_rows()
    new = connection.execute(f"SELECT user_id, ts_us, CASE WHEN kind = 'llm' THEN 1 ELSE 0 END FROM {batch} "
                             "WHERE id > ? ORDER BY user_id, ts_us", (after_id,)).fetchall()
    points = {user: [(ts, ts, 1, int(llm)) for _, ts, llm in rows] for user, rows in groupby(new, key=lambda r: r[0])}
    users = list(points)
    existing: dict[str, list[Interval]] = {user: [] for user in users}
    for user, start, end, n, llm in connection.execute(_TOUCHED.format(rows=batch), (timeout_us, timeout_us, after_id)):
        existing[user].append((start, end, n, llm))
    gone, ended, counted, new_sessions = [], [], [], []
    for user in users:
        old = {start: rest for start, *rest in existing[user]}
        for start, end, n, llm in _merge([*existing[user], *points[user]], timeout_us):
            if start not in old:
                new_sessions.append((user, start, end, session_id(user, start), n, llm))
                continue
            was = old.pop(start)
            if was[0] != end:
                ended.append((end, n, llm, user, start))
            elif was != [end, n, llm]:  # a late event inside it: its end's index entry stays
                counted.append((n, llm, user, start))
        gone += [(user, start) for start in old]  # merged into an earlier one
    # updated in place: a session that grows keeps its id (its index entry is not rewritten)
    connection.executemany("DELETE FROM sessions WHERE user_id = ? AND start_us = ?", gone)
    connection.executemany("UPDATE sessions SET end_us = ?, events = ?, llm_events = ? "
                           "WHERE user_id = ? AND start_us = ?", ended)
    connection.executemany("UPDATE sessions SET events = ?, llm_events = ? "
                           "WHERE user_id = ? AND start_us = ?", counted)
    connection.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", new_sessions)


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


def _rebuild_sessions(connection: Any, timeout_us: int) -> None:
    """All sessions from the events, in one pass of window functions."""
    connection.execute("DELETE FROM sessions")
    connection.execute(
        f"INSERT INTO sessions SELECT user_id, MIN(ts_us), MAX(ts_us), session_id(user_id, MIN(ts_us)), "
        f"COUNT(*), {_LLM} FROM ({numbered_sessions(timeout_us, connection.dialect)}) AS numbered "
        "GROUP BY user_id, n")
    connection.execute("DELETE FROM meta WHERE key = 'session_timeout_us'")
    connection.execute("INSERT INTO meta VALUES ('session_timeout_us', ?)", (str(timeout_us),))


def numbered_sessions(timeout_us: int, d: Dialect, users: int = 0) -> str:
    """Every event's id, user, kind, time and session number ``n`` within its user: LAG finds
    the gaps, a running SUM numbers the sessions; of ``users`` users (that many ``?``), or all
    (whole users only, or sessions would be cut). Read by user and time (:meth:`Dialect.keyed`)."""
    timeout_us = int(timeout_us)  # an int literal: safe to inline
    source, k = d.keyed("user_id")
    where = f"WHERE {k}.user_id IN ({', '.join('?' * users)})" if users else ""
    return f"""
        SELECT id, user_id, kind, ts_us,
               SUM(gap) OVER (PARTITION BY user_id ORDER BY ts_us, id ROWS UNBOUNDED PRECEDING) AS n
        FROM (
            SELECT {k}.id AS id, {k}.user_id AS user_id, e.kind AS kind, {k}.ts_us AS ts_us,
                   CASE WHEN {k}.ts_us - LAG({k}.ts_us) OVER (PARTITION BY {k}.user_id ORDER BY {k}.ts_us, {k}.id)
                             <= {timeout_us} THEN 0 ELSE 1 END AS gap
            FROM {source} {where}
        ) AS gaps"""


def seconds(value: object) -> float | None:
    """SQLite's ``trubrics_seconds``: see :meth:`Dialect.seconds`."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    elif not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value < math.inf else None


def session_id(user_id: str, start_us: int) -> str:
    return hashlib.sha256(f"{user_id}\x00{start_us}".encode()).hexdigest()[:16]

