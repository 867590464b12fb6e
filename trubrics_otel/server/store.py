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
session). They are computed at query time with window functions over the stored
timestamps, never stored, so an event arriving late (out of order) lands in the right
session. A session's id is a hash of its user and first timestamp: events appended after
the session never change it; only an out-of-order event earlier than the session's
start (or one bridging two sessions) moves that start, and so that id.

Threads are LLM events grouped by ``thread_id`` (or the ``$thread_id`` property), ordered
by timestamp, then insertion order.

Each call opens its own short-lived connection, so one ``Store`` serves many threads;
writes within the process are serialised by a lock, and WAL lets readers (the CLI,
another process) run while the server writes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
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
from trubrics_otel.server.times import iso, now_us, timestamp_us, to_us

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
    error           TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_span ON events (trace_id, span_id);
CREATE INDEX IF NOT EXISTS events_user_time ON events (user_id, ts_us, id);
CREATE INDEX IF NOT EXISTS events_time ON events (ts_us, id);
CREATE INDEX IF NOT EXISTS events_thread ON events (thread_id, ts_us, id) WHERE thread_id IS NOT NULL;
"""
# SQLite treats NULLs as distinct in a UNIQUE index: events without ids never collide.

_COLUMNS = (
    "kind", "user_id", "event", "ts_us", "received_us", "properties", "trace_id", "span_id",
    "thread_id", "prompt", "generation", "prompt_event_name", "assistant_id", "model",
    "latency", "input_tokens", "output_tokens", "error",
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
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._write_lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- connections -------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._create()
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            connection.create_function("session_id", 2, _session_id, deterministic=True)
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
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            finally:
                connection.close()
            self._ready = True

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
        with self._connect() as connection, self._write_lock:
            before = connection.total_changes
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(_INSERT, rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            stored = connection.total_changes - before
        return stored, len(rows) - stored

    # --- reading -----------------------------------------------------------------------

    def count(self) -> dict[str, int]:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT COUNT(*) AS total, COALESCE(SUM(kind = 'llm'), 0) AS llm, "
                "COUNT(DISTINCT user_id) AS users, COALESCE(MAX(id), 0) AS last_id FROM events"
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
        session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    ) -> list[dict[str, Any]]:
        """Events matching every filter given, each with its ``session_id``.

        ``event`` matches the event's name, and for LLM events also the prompt's.
        """
        filters = {
            "e.user_id = ?": user,
            "e.thread_id = ?": thread,
            "e.kind = ?": kind,
            "e.ts_us >= ?": to_us(since) if since is not None else None,
            "e.ts_us < ?": to_us(until) if until is not None else None,
        }
        where = [clause for clause, value in filters.items() if value is not None]
        params: list[Any] = [value for value in filters.values() if value is not None]
        if event is not None:
            where.append("(e.event = ? OR e.prompt_event_name = ?)")
            params += [event, event]
        order = "DESC" if newest_first else "ASC"
        page = (
            f"SELECT * FROM events e WHERE {' AND '.join(where) or '1'} "
            f"ORDER BY e.ts_us {order}, e.id {order} LIMIT ?"
        )
        with self._connect() as connection:
            rows = connection.execute(
                _with_sessions(page, order, session_timeout_s), [*params, -1 if limit is None else limit]
            ).fetchall()
        return [_event_dict(row) for row in rows]

    def users(self, *, limit: int | None = 100) -> list[dict[str, Any]]:
        sql = (
            "SELECT user_id, COUNT(*) AS events, SUM(kind = 'llm') AS llm_events, "
            "MIN(ts_us) AS first_us, MAX(ts_us) AS last_us, "
            "COUNT(DISTINCT thread_id) AS threads FROM events "
            "GROUP BY user_id ORDER BY last_us DESC, user_id LIMIT ?"
        )
        with self._connect() as connection:
            rows = connection.execute(sql, [-1 if limit is None else limit]).fetchall()
        return [
            {
                "user_id": r["user_id"], "events": r["events"], "llm_events": r["llm_events"],
                "threads": r["threads"], "first_seen": iso(r["first_us"]), "last_seen": iso(r["last_us"]),
            }
            for r in rows
        ]

    def sessions(
        self,
        *,
        user: str | None = None,
        timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Sessions, most recently active first."""
        sql = (
            f"WITH s AS ({_sessionised(timeout_s, 'WHERE user_id = ?' if user is not None else '')}) "
            "SELECT s.session_id, s.user_id, MIN(e.ts_us) AS start_us, MAX(e.ts_us) AS end_us, "
            "COUNT(*) AS events, SUM(e.kind = 'llm') AS llm_events, "
            "COUNT(DISTINCT e.thread_id) AS threads, "
            "json_group_array(DISTINCT e.event) AS names "
            "FROM s JOIN events e ON e.id = s.id "
            "GROUP BY s.user_id, s.session_id ORDER BY end_us DESC, s.user_id LIMIT ?"
        )
        params: list[Any] = [user] if user is not None else []
        with self._connect() as connection:
            rows = connection.execute(sql, [*params, -1 if limit is None else limit]).fetchall()
        return [
            {
                "session_id": r["session_id"], "user_id": r["user_id"],
                "start": iso(r["start_us"]), "end": iso(r["end_us"]),
                "duration_s": (r["end_us"] - r["start_us"]) / 1e6,
                "events": r["events"], "llm_events": r["llm_events"], "threads": r["threads"],
                "event_names": sorted(json.loads(r["names"])),
            }
            for r in rows
        ]

    def threads(self, *, user: str | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        """Threads, most recently active first, with their first prompt as a title."""
        sql = (
            "SELECT thread_id, COUNT(*) AS turns, MIN(ts_us) AS start_us, MAX(ts_us) AS end_us, "
            "json_group_array(DISTINCT user_id) AS users, "
            "json_group_array(DISTINCT model) FILTER (WHERE model IS NOT NULL) AS models, "
            "SUM(error IS NOT NULL) AS errors, SUM(input_tokens) AS input_tokens, "
            "SUM(output_tokens) AS output_tokens, "
            "(SELECT prompt FROM events f WHERE f.kind = 'llm' AND f.thread_id = e.thread_id "
            " ORDER BY f.ts_us, f.id LIMIT 1) AS title "
            "FROM events e WHERE kind = 'llm' AND thread_id IS NOT NULL "
            + ("AND thread_id IN (SELECT thread_id FROM events WHERE user_id = ?) " if user else "")
            + "GROUP BY thread_id ORDER BY end_us DESC, thread_id LIMIT ?"
        )
        params: list[Any] = [user] if user else []
        with self._connect() as connection:
            rows = connection.execute(sql, [*params, -1 if limit is None else limit]).fetchall()
        return [
            {
                "thread_id": r["thread_id"], "users": sorted(json.loads(r["users"])),
                "turns": r["turns"], "start": iso(r["start_us"]), "end": iso(r["end_us"]),
                "models": sorted(json.loads(r["models"] or "[]")), "errors": r["errors"],
                "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
                "title": r["title"],
            }
            for r in rows
        ]

    def thread(
        self, thread_id: str, *, session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S
    ) -> list[dict[str, Any]]:
        """One conversation's LLM events, oldest first (timestamp, then insertion order)."""
        page = "SELECT * FROM events WHERE kind = 'llm' AND thread_id = ?"
        with self._connect() as connection:
            rows = connection.execute(_with_sessions(page, "ASC", session_timeout_s), [thread_id]).fetchall()
        return [_event_dict(row) for row in rows]


# --- sessions in SQL --------------------------------------------------------------------------


def _with_sessions(page: str, order: str, timeout_s: float) -> str:
    """The rows of ``page`` with their session ids, computed over their users' events only."""
    return (
        f"WITH page AS ({page}), "
        f"s AS ({_sessionised(timeout_s, 'WHERE user_id IN (SELECT user_id FROM page)')}) "
        f"SELECT page.*, s.session_id FROM page JOIN s ON s.id = page.id "
        f"ORDER BY page.ts_us {order}, page.id {order}"
    )


def _sessionised(timeout_s: float, where: str = "") -> str:
    """Every event's id, user and session: LAG finds the gap, a running SUM numbers sessions.

    ``where`` narrows the events (whole users only, or sessions would be cut).
    """
    timeout_us = round(float(timeout_s) * 1e6)  # an int literal: safe to inline
    return f"""
        SELECT id, user_id,
               session_id(user_id, MIN(ts_us) OVER (PARTITION BY user_id, n)) AS session_id
        FROM (
            SELECT id, user_id, ts_us,
                   SUM(gap) OVER (PARTITION BY user_id ORDER BY ts_us, id
                                  ROWS UNBOUNDED PRECEDING) AS n
            FROM (
                SELECT id, user_id, ts_us,
                       COALESCE(ts_us - LAG(ts_us) OVER (PARTITION BY user_id ORDER BY ts_us, id)
                                > {timeout_us}, 1) AS gap
                FROM events {where}
            )
        )"""


def _session_id(user_id: str, start_us: int) -> str:
    return hashlib.sha256(f"{user_id}\x00{start_us}".encode()).hexdigest()[:16]


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
        None, None, None, None, None, None, None, None, _error(properties),
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
        _tokens(properties, _OUTPUT_TOKEN_KEYS), _error(properties),
    )


def _tokens(properties: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = properties.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if abs(value) < 2**63:  # SQLite's INTEGER
                return int(value)
    return None


def _error(properties: Mapping[str, Any]) -> str | None:
    kind, message = properties.get(sc.PROP_ERROR_TYPE), properties.get(sc.PROP_ERROR_MESSAGE)
    if not kind and not message:
        return None
    return ": ".join(str(part) for part in (kind, message) if part)


def _event_time(event: Mapping[str, Any], now_us: int) -> int:
    timestamp = event.get("timestamp")
    return timestamp_us(timestamp) if isinstance(timestamp, str) else now_us


def _event_dict(row: sqlite3.Row) -> dict[str, Any]:
    common = {
        "id": row["id"],
        "kind": row["kind"],
        "user_id": row["user_id"],
        "timestamp": iso(row["ts_us"]),
        "received_at": iso(row["received_us"]),
        "session_id": row["session_id"],
        "thread_id": row["thread_id"],
        "properties": json.loads(row["properties"]),
        "error": row["error"],
    }
    if row["kind"] == "event":
        return {**common, "event": row["event"]}
    return {
        **common,
        "event": row["event"],
        "prompt": row["prompt"],
        "generation": row["generation"],
        "prompt_event_name": row["prompt_event_name"],
        "generation_event_name": row["event"],
        "assistant_id": row["assistant_id"],
        "model": row["model"],
        "latency": row["latency"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
    }
