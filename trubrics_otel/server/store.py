"""SQLite storage for the local server: events, LLM events, sessions and threads.

::

    store = Store("/tmp/events.sqlite3")          # created on first use, WAL journal
    stored, duplicates = store.insert([event], [llm_event])
    store.events(user="u1", limit=20)             # newest first, as dicts
    store.sessions(timeout_s=1800)                # computed in SQL, see below
    store.thread("t-42")                          # one conversation, oldest turn first

Both kinds of event live in one ``events`` table (``kind`` is ``event`` or ``llm``); an
LLM event is one row holding prompt and generation. ``id`` is the insertion order.

Idempotency: an event whose properties carry ``$trace_id`` and ``$span_id`` (the
exporter always adds them) is stored once, however often a batch is retried; events
without the pair are stored as sent.

Sessions follow the Trubrics definition: per user, a new session starts when more than
``timeout_s`` passed since the user's previous event (exactly ``timeout_s`` stays in the
session). They are kept in a ``sessions`` table maintained on insert (:mod:`.derived`), so
an event arriving late (out of order) lands in the right session, joining or bridging
sessions as needed; a query for another timeout computes them with window functions. A
session's id is a hash of its user and first timestamp: events appended after the session
never change it; only an out-of-order event earlier than the session's start (or one
bridging two sessions) moves that start, and so that id.

Users, threads, hourly rollups and a full-text index are maintained the same way; the read
queries are in :mod:`.queries` and :mod:`.stats`.

Threads are LLM events grouped by ``thread_id`` (or the ``$thread_id`` property), ordered
by timestamp, then insertion order.

Each call opens its own short-lived connection, so one ``Store`` serves many threads;
writes within the process are serialised by a lock, and WAL lets readers (the CLI,
another process) run while the server writes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel import settings
from trubrics_otel.server import derived, queries
from trubrics_otel.server.analytics import schema as analytics_schema
from trubrics_otel.server.analytics.dialect import SQLiteReader
from trubrics_otel.server.queries import EventFilter
from trubrics_otel.server.times import (
    iso,
    now_us,
    parse_time,
    parse_timestamp,
    timestamp_us,
    to_us,
)

__all__ = ["Store", "default_db_path", "iso", "parse_time", "parse_timestamp", "timestamp_us", "to_us"]

DEFAULT_SESSION_TIMEOUT_S = 30 * 60

_SCHEMA = """
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
"""
# SQLite treats NULLs as distinct in a UNIQUE index: events without ids never collide.

_COLUMNS = (
    "kind", "user_id", "event", "ts_us", "received_us", "properties", "trace_id", "span_id",
    "thread_id", "prompt", "generation", "prompt_event_name", "assistant_id", "model",
    "latency", "input_tokens", "output_tokens", "error", "cost_usd",
)
_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)

_INPUT_TOKEN_KEYS = (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.PROP_INPUT_TOKENS, "prompt_tokens")
_OUTPUT_TOKEN_KEYS = (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.PROP_OUTPUT_TOKENS, "completion_tokens")
_MODEL_KEYS = (sc.GEN_AI_RESPONSE_MODEL, "model", sc.GEN_AI_REQUEST_MODEL, sc.PROP_REQUEST_MODEL)


def default_db_path() -> Path:
    """``$TRUBRICS_DB``, else ``$XDG_DATA_HOME/trubrics-otel/events.sqlite3`` (~/.local/share)."""
    return settings.read(settings.DB) or settings.data_directory() / "trubrics-otel" / "events.sqlite3"


class Store:
    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 session_timeout_s: float | None = None) -> None:
        """``session_timeout_s``: the idle time the ``sessions`` table is kept for (the server's);
        ``None`` (readers) keeps the table's, 30 minutes for a new database."""
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._timeout_us = None if session_timeout_s is None else round(float(session_timeout_s) * 1e6)
        self._write_lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- connections -------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection (rows as :class:`sqlite3.Row`), for :mod:`.queries` / :mod:`.stats`."""
        if not self._ready:
            self._create()
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            derived.register_functions(connection)
            yield connection
        finally:
            connection.close()

    def _create(self) -> None:
        with self._write_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            try:
                derived.register_functions(connection)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
                derived.ensure(connection, self._timeout_us)
                _ensure_analytics(connection)
            finally:
                connection.close()
            self._ready = True

    def sessions_lookup(self, connection: sqlite3.Connection, timeout_s: float | None = None) -> queries.Sessions:
        """How queries find session ids for ``timeout_s`` (default: the table's)."""
        table_us = derived.stored_timeout_us(connection)
        timeout_us = round(float(timeout_s) * 1e6) if timeout_s is not None else table_us
        return queries.Sessions(timeout_us if timeout_us is not None else derived.DEFAULT_TIMEOUT_US, table_us)

    # --- writing -----------------------------------------------------------------------

    def insert(
        self,
        events: Sequence[Mapping[str, Any]] = (),
        llm_events: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[int, int]:
        """Store validated events (see :mod:`.validation`); return ``(stored, duplicates)``."""
        now = now_us()
        rows = [_event_row(e, now) for e in events] + [_llm_row(e, now) for e in llm_events]
        if not rows:
            return 0, 0
        with self.connection() as connection, self._write_lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                last_id = connection.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
                before = connection.total_changes
                connection.executemany(_INSERT, rows)
                stored = connection.total_changes - before
                if stored:
                    derived.apply(connection, last_id, derived.stored_timeout_us(connection))
                    analytics_schema.apply(SQLiteReader(connection), last_id)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return stored, len(rows) - stored

    # --- reading -----------------------------------------------------------------------

    def count(self) -> dict[str, int]:
        with self.connection() as connection:
            row = connection.execute(
                "SELECT COALESCE(SUM(events), 0) AS total, COALESCE(SUM(llm_events), 0) AS llm, "
                "COUNT(*) AS users, (SELECT COALESCE(MAX(id), 0) FROM events) AS last_id FROM users"
            ).fetchone()
        return {"events": row["total"] - row["llm"], "llm_events": row["llm"], "users": row["users"],
                "last_id": row["last_id"]}

    def events(
        self,
        *,
        user: str | None = None,
        event: str | None = None,
        thread: str | None = None,
        kind: str | None = None,
        since: _dt.datetime | None = None,
        until: _dt.datetime | None = None,
        limit: int | None = 100,
        newest_first: bool = True,
        session_timeout_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Events matching every filter given, each with its ``session_id``.

        ``event`` matches the event's name, and for LLM events also the prompt's.
        """
        found = EventFilter(user=user, event=event, thread=thread, kind=kind,
                            since_us=to_us(since) if since is not None else None,
                            until_us=to_us(until) if until is not None else None)
        with self.connection() as c:
            return queries.event_page(c, found, sessions=self.sessions_lookup(c, session_timeout_s),
                                      limit=limit, newest_first=newest_first)["events"]

    def users(self, *, limit: int | None = 100) -> list[dict[str, Any]]:
        with self.connection() as c:
            return queries.user_list(c, limit=limit)["users"]

    def sessions(
        self,
        *,
        user: str | None = None,
        timeout_s: float | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Sessions, most recently active first."""
        with self.connection() as c:
            lookup = self.sessions_lookup(c, timeout_s)
            if lookup.from_table:
                return queries.session_list(c, user=user, limit=limit)["sessions"]
            return _computed_sessions(c, lookup.timeout_us, user, limit)

    def threads(self, *, user: str | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        """Threads, most recently active first, with their first prompt as a title."""
        with self.connection() as c:
            return queries.thread_list(c, user=user, limit=limit)["threads"]

    def thread(self, thread_id: str, *, session_timeout_s: float | None = None) -> list[dict[str, Any]]:
        """One conversation's LLM events, oldest first (timestamp, then insertion order)."""
        return self.events(thread=thread_id, kind="llm", limit=None, newest_first=False,
                           session_timeout_s=session_timeout_s)


def _ensure_analytics(connection: sqlite3.Connection) -> None:
    """The analytics tables (:mod:`.analytics.schema`), filled once for a database without them."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        analytics_schema.ensure(SQLiteReader(connection))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _computed_sessions(c: sqlite3.Connection, timeout_us: int, user: str | None,
                       limit: int | None) -> list[dict[str, Any]]:
    """Sessions for a timeout other than the table's, computed with window functions."""
    where = "WHERE user_id = ?" if user is not None else ""
    sql = (
        "SELECT user_id, MIN(ts_us) AS start_us, MAX(ts_us) AS end_us, "
        "session_id(user_id, MIN(ts_us)) AS session_id, COUNT(*) AS events, "
        f"SUM(kind = 'llm') AS llm_events FROM ({derived.numbered_sessions(timeout_us, where)}) "
        "GROUP BY user_id, n ORDER BY end_us DESC, user_id DESC LIMIT ?"
    )
    params: list[Any] = [user] if user is not None else []
    rows = c.execute(sql, [*params, -1 if limit is None else limit]).fetchall()
    return [queries.session_dict(c, r) for r in rows]


# --- rows ---------------------------------------------------------------------------------------


def _ids(properties: Mapping[str, Any]) -> tuple[str | None, str | None]:
    trace, span = properties.get(sc.PROP_TRACE_ID), properties.get(sc.PROP_SPAN_ID)
    if isinstance(trace, str) and isinstance(span, str) and trace and span:
        return trace, span
    return None, None


def _event_row(event: Mapping[str, Any], now_us: int) -> tuple[Any, ...]:
    properties = event.get("properties") or {}
    trace, span = _ids(properties)
    thread = properties.get(sc.PROP_THREAD_ID)
    return (
        "event", event["user_id"], event["event"], _event_time(event, now_us), now_us,
        json.dumps(properties, ensure_ascii=False), trace, span,
        str(thread) if thread not in (None, "") else None,
        None, None, None, None, None, None, None, None, _error(properties), _cost(properties),
    )


def _llm_row(event: Mapping[str, Any], now_us: int) -> tuple[Any, ...]:
    properties = event.get("properties") or {}
    trace, span = _ids(properties)
    thread = event.get("thread_id") or properties.get(sc.PROP_THREAD_ID)
    assistant = event.get("assistant_id") or properties.get(sc.PROP_ASSISTANT_ID)
    model = next((properties[k] for k in _MODEL_KEYS if isinstance(properties.get(k), str)), None)
    return (
        "llm", event["user_id"], event.get("generation_event_name") or "Generation",
        _event_time(event, now_us), now_us, json.dumps(properties, ensure_ascii=False), trace, span,
        str(thread) if thread not in (None, "") else None,
        event["prompt"], event["generation"], event.get("prompt_event_name") or "Prompt",
        str(assistant) if assistant not in (None, "") else None,
        model or (str(assistant) if assistant not in (None, "") else None),
        event.get("latency"), _tokens(properties, _INPUT_TOKEN_KEYS),
        _tokens(properties, _OUTPUT_TOKEN_KEYS), _error(properties), _cost(properties),
    )


def _tokens(properties: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = properties.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if abs(value) < 2**63:  # SQLite's INTEGER
                return int(value)
    return None


def _cost(properties: Mapping[str, Any]) -> float | None:
    value = properties.get("cost_usd")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _error(properties: Mapping[str, Any]) -> str | None:
    kind, message = properties.get(sc.PROP_ERROR_TYPE), properties.get(sc.PROP_ERROR_MESSAGE)
    if not kind and not message:
        return None
    return ": ".join(str(part) for part in (kind, message) if part)


def _event_time(event: Mapping[str, Any], now_us: int) -> int:
    timestamp = event.get("timestamp")
    return timestamp_us(timestamp) if isinstance(timestamp, str) else now_us
