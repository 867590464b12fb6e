"""The local server's storage: one interface, two engines (SQLite embedded, PostgreSQL shared).

::

    store = open_store("/tmp/events.sqlite3")        # or "sqlite:///tmp/events.sqlite3"
    store = open_store("postgresql://trubrics@127.0.0.1:5432/trubrics")   # the [postgres] extra
    stored, duplicates = store.insert([event], [llm_event])
    store.events(user="u1", limit=20)                # newest first, as dicts
    store.sessions(timeout_s=1800)                   # computed in SQL, see below
    store.thread("t-42")                             # one conversation, oldest turn first
    with store.reader() as db:                       # for analyses: db.rows(sql, params), db.dialect
        db.rows("SELECT COUNT(*) FROM events WHERE user_id = ?", ["u1"])

``Store(x)`` is ``open_store(x)``. Both kinds of event live in one ``events`` table
(``kind`` is ``event`` or ``llm``); an LLM event is one row holding prompt and generation.
``id`` is the insertion order. The engines keep the same tables, columns and meanings.

Idempotency: an event whose properties carry ``$trace_id`` and ``$span_id`` (the exporter
always adds them) is stored once, however often a batch is retried and whichever worker gets
it; events without the pair are stored as sent.

Sessions follow the Trubrics definition: per user, a new session starts when more than
``timeout_s`` passed since the user's previous event (exactly ``timeout_s`` stays in the
session). They are kept in a ``sessions`` table maintained on insert (:mod:`.derived`), so
an event arriving late lands in the right session; a query for another timeout computes
them with window functions. A session's id is a hash of its user and first timestamp.

Threads are LLM events grouped by ``thread_id`` (or the ``$thread_id`` property), ordered
by timestamp, then insertion order.

The layers: this module (what a worker and a reader need) → an engine (:mod:`.sqlite`,
:mod:`.postgres`: connections, the insert transaction, migrations from ``schema/<engine>/``)
→ :mod:`.derived` (summary tables, SQL both engines accept) and :mod:`.dialect` (the
fragments that differ, and ``?`` → ``%s``). The read queries are :mod:`..queries` and
:mod:`..stats`, written once against a connection's ``execute`` and ``dialect``.

Hooks: tables kept by a layer above the store (the analytics tables) are maintained through
:class:`Hook` objects, so the store imports nothing from there. ``hook.ensure(connection)``
runs once when the store is first used (inside the store's opening transaction: create, fill;
True when it filled its tables from every stored event), ``hook.apply(connection, after_id)``
wherever the derived tables take in the rows with ``id > after_id``: in each engine's fold
(see below). ``Store(hooks=None)`` takes :data:`HOOKS`, which
the ``trubrics_otel.server`` package fills (so every store in the process keeps the same tables)::

    store = Store(path, hooks=[MyTables()])      # or hooks=() for the events and derived tables only

When the summary tables are current: both engines commit a batch's events alone and fold
them in bulk later (once 5,000 are pending, and before any read: every reading method,
:meth:`Store.connection` and :meth:`Store.reader` fold first; see :mod:`.sqlite`,
:mod:`.postgres`), so a read always sees every stored event in every table.

A third engine (ClickHouse, for billions of events) plugs in as ``store/clickhouse.py``: an
engine class with ``connection()`` / ``insert(rows)`` / ``exists()`` / ``close()`` /
``describe()``, its ``schema/clickhouse/`` migrations, a ``Dialect("clickhouse")`` for the
differing fragments, a ``clickhouse://`` branch in :func:`open_store` and a ``[clickhouse]``
extra. There the summary tables would be materialized views, not :mod:`.derived`'s upserts.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from trubrics_otel import settings
from trubrics_otel.server import queries  # attributes read at call time: queries imports .derived
from trubrics_otel.server.store import derived
from trubrics_otel.server.store.dialect import NO_LIMIT
from trubrics_otel.server.store.errors import SchemaTooNew, StoreError, StoreUnavailable
from trubrics_otel.server.store.postgres import PostgresEngine
from trubrics_otel.server.store.rows import event_row, llm_row
from trubrics_otel.server.store.sqlite import SQLiteEngine
from trubrics_otel.server.times import (
    iso,
    now_us,
    parse_time,
    parse_timestamp,
    timestamp_us,
    to_us,
)

__all__ = ["Store", "Hook", "HOOKS", "open_store", "default_db_path", "default_location", "StoreError", "StoreUnavailable",
           "SchemaTooNew", "iso", "parse_time", "parse_timestamp", "timestamp_us", "to_us"]

DEFAULT_SESSION_TIMEOUT_S = 30 * 60


class Hook(Protocol):
    """Tables kept in step with ``events`` by a layer above the store (see the module's docstring)."""

    def ensure(self, connection: Any) -> bool | None: ...

    def apply(self, connection: Any, after_id: int) -> None: ...


HOOKS: list[Hook] = []
"""The hooks of a ``Store(hooks=None)``: filled by ``trubrics_otel.server`` (the analytics tables)."""


def default_db_path() -> Path:
    """``$TRUBRICS_DB``, else ``$XDG_DATA_HOME/trubrics-otel/events.sqlite3`` (~/.local/share)."""
    return settings.read(settings.DB) or settings.data_directory() / "trubrics-otel" / "events.sqlite3"


def default_location() -> str | Path:
    """``$TRUBRICS_DB_URL``, else :func:`default_db_path`. A malformed ``$TRUBRICS_DB_URL``
    raises :class:`StoreError` naming it: never the default file in its place."""
    location = settings.read(settings.DB_URL)
    if location is not None and (problem := settings.destination_error(settings.DB_URL, location)):
        raise StoreError(problem)
    return location or default_db_path()


def shown(location: str | os.PathLike[str]) -> str:
    """A location for people: a URL's password replaced by ``***``."""
    return settings.hide_password(os.fspath(location))


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | os.PathLike[str] | None = None, *,
               session_timeout_s: float | None = None, hooks: Sequence[Hook] | None = None) -> Store:
    """A path or ``sqlite:///path`` → SQLite; ``postgresql://…`` → PostgreSQL (the
    ``[postgres]`` extra); ``None`` → :func:`default_location`."""
    return Store(location, session_timeout_s=session_timeout_s, hooks=hooks)


class Store:
    def __init__(self, location: str | os.PathLike[str] | None = None, *,
                 session_timeout_s: float | None = None, hooks: Sequence[Hook] | None = None,
                 writer: bool = False) -> None:
        """``session_timeout_s``: the idle time the ``sessions`` table is kept for (the server's);
        ``None`` keeps the table's, 30 minutes for a new database. ``hooks``: see the module's
        docstring (``None``: :data:`HOOKS`). ``writer``: a server, which keeps the table's
        timeout too (``serve`` without ``--session-timeout``) but is refused a SQLite file it
        cannot write, as any store given a timeout is, where a reader reads it as it is."""
        location = default_location() if location is None else location
        timeout_us = None if session_timeout_s is None else round(float(session_timeout_s) * 1e6)
        hooks = tuple(HOOKS if hooks is None else hooks)
        self.path: Path | None = None
        if is_url(location):
            self.engine: Any = PostgresEngine(str(location), timeout_us, hooks)
        else:
            text = os.fspath(location)
            if isinstance(text, str) and text.startswith("sqlite:///"):
                text = text.removeprefix("sqlite:///")  # as SQLAlchemy: sqlite:////abs, sqlite:///rel
            elif isinstance(text, str) and "://" in text:
                raise StoreError(f"unsupported database URL {text.split('://')[0]}://…: "
                                 "give a path, sqlite:///path or postgresql://user@host:port/database")
            self.path = Path(text).expanduser()
            self.engine = SQLiteEngine(self.path, timeout_us, hooks, reader=timeout_us is None and not writer)

    def __repr__(self) -> str:
        return f"Store({self.engine.describe()!r})"

    @property
    def location(self) -> str:
        """Where the events are, for people: the path, or the URL without its password."""
        return self.engine.describe()

    def exists(self) -> bool:
        """Whether there is a database to read (readers never create one)."""
        return self.engine.exists()

    def close(self) -> None:
        """Release held connections (SQLite: every thread's; PostgreSQL: the pool); the store
        reopens them when used again."""
        self.engine.close()

    # --- connections -------------------------------------------------------------------

    def connection(self) -> Any:
        """A connection for :mod:`.queries` / :mod:`.stats` for the ``with`` block (SQLite: this
        thread's, kept between calls; PostgreSQL: one from the pool): ``execute`` with ``?``
        placeholders, rows by index or by column name, ``rows()`` and ``dialect``."""
        return self.engine.connection()

    @contextmanager
    def reader(self) -> Iterator[Any]:
        """A connection for analyses: ``rows(sql, params)`` (positional tuples) and ``dialect``."""
        with self.engine.connection() as connection:
            yield connection

    def sessions_lookup(self, connection: Any, timeout_s: float | None = None) -> queries.Sessions:
        """How queries find session ids for ``timeout_s`` (default: the table's)."""
        table_us = derived.stored_timeout_us(connection)
        timeout_us = round(float(timeout_s) * 1e6) if timeout_s is not None else table_us
        return queries.Sessions(timeout_us if timeout_us is not None else derived.DEFAULT_TIMEOUT_US, table_us)

    # --- writing -----------------------------------------------------------------------

    def insert(
        self,
        events: Sequence[Mapping[str, Any]] = (),
        llm_events: Sequence[Mapping[str, Any]] = (),
        measured: Mapping[int, bytes | str] | None = None,
    ) -> tuple[int, int]:
        """Store validated events (see :mod:`.validation`); return ``(stored, duplicates)``.
        Returns once they are committed; :class:`StoreUnavailable` when the database is down.
        ``measured``: ``{id(event): its properties' JSON}`` for events whose properties were
        encoded already (:func:`~..validation.read_batch`, the redaction policy)."""
        now = now_us()
        found = (measured or {}).get
        rows = ([event_row(e, now, found(id(e))) for e in events]
                + [llm_row(e, now, found(id(e))) for e in llm_events])
        if not rows:
            return 0, 0
        stored = self.engine.insert(rows)
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
        found = queries.EventFilter(user=user, event=event, thread=thread, kind=kind,
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


def _computed_sessions(c: Any, timeout_us: int, user: str | None,
                       limit: int | None) -> list[dict[str, Any]]:
    """Sessions for a timeout other than the table's, computed with window functions."""
    sql = (
        "SELECT user_id, MIN(ts_us) AS start_us, MAX(ts_us) AS end_us, "
        "session_id(user_id, MIN(ts_us)) AS session_id, COUNT(*) AS events, "
        "SUM(CASE WHEN kind = 'llm' THEN 1 ELSE 0 END) AS llm_events "
        f"FROM ({derived.numbered_sessions(timeout_us, c.dialect, 0 if user is None else 1)}) AS numbered "
        "GROUP BY user_id, n ORDER BY end_us DESC, user_id DESC LIMIT ?"
    )
    params: list[Any] = [user] if user is not None else []
    rows = c.execute(sql, [*params, NO_LIMIT if limit is None else limit]).fetchall()
    return queries.session_dicts(c, rows)
