"""The PostgreSQL engine: psycopg 3 and a connection pool (the ``[postgres]`` extra).

::

    engine = PostgresEngine("postgresql://trubrics@db.internal:5432/trubrics", session_timeout_us=None)
    with engine.connection() as c:                 # a PostgresConnection: execute, rows, dialect
        c.rows("SELECT COUNT(*) FROM events WHERE user_id = ?", ["alice"])
    engine.insert(rows)                            # -> how many were new; committed on return

Several ``serve`` processes may share one database. Each batch is one transaction: its events
go in with ``ON CONFLICT DO NOTHING`` on the unique ``(trace_id, span_id)`` index (an event
retried to another worker is stored once), side by side with other workers' inserts; then the
derived tables fold in the rows this transaction inserted. That fold holds a
transaction-scoped advisory lock, so batches from different workers fold one after the other
and no count is lost; decoding, validation, translation and the insert itself, most of a
request's cost, stay parallel. The batch is acknowledged only after COMMIT returns.

When the database is down or restarting, calls raise :class:`StoreUnavailable` (the server
answers 503 with Retry-After, and our clients retry); the pool checks a connection before
lending it and reconnects in the background. Nothing of a failed transaction is kept, and the
retried batch is stored once (the unique index).
"""

from __future__ import annotations

import functools
import re
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trubrics_otel.server.store import derived, migrations
from trubrics_otel.server.store.dialect import POSTGRESQL, Dialect, search_words, to_pyformat
from trubrics_otel.server.store.errors import StoreError, StoreUnavailable
from trubrics_otel.server.store.rows import COLUMNS
from trubrics_otel.settings import hide_password

_OPTIONS = "-c plan_cache_mode=force_custom_plan -c jit=off"
"""Every pooled connection's settings, sent when it opens (no round trip): see _open_pool."""
_WRITE_LOCK = 0x7472_7562  # pg_advisory_xact_lock key: the derived-table fold ("trub")
_MIGRATE_LOCK = 0x7472_7563  # one worker migrates at start, the others wait and find it done


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise StoreError("a postgresql:// database needs the [postgres] extra: "
                         "pip install 'trubrics-otel[postgres]'") from None
    return psycopg


class Row(tuple):  # type: ignore[type-arg]
    """A positional row that also answers ``row["column"]``, as :class:`sqlite3.Row` does."""

    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    return _row_class(tuple(column.name for column in cursor.description or ()))


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    """One class per result shape, made once (each statement of a batch asked for one anew)."""
    return type("Row", (Row,), {"_index": {name: i for i, name in enumerate(names)}, "__slots__": ()})


class PostgresConnection:
    """One pooled connection speaking the engine-neutral API: ``?`` placeholders, rows by
    index or name, ``dialect``."""

    dialect = POSTGRESQL

    def __init__(self, connection: Any, dialect: Dialect = POSTGRESQL, prepare: bool | None = None) -> None:
        self.raw = connection
        self.dialect = dialect
        self._prepare = prepare  # psycopg's: None prepares a statement from its fifth run on a connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(to_pyformat(sql), tuple(params), prepare=self._prepare)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]


def _configure(connection: Any) -> None:
    """Per connection: rows as :class:`Row`; NUMERIC (PostgreSQL's SUM of BIGINT) as int or
    float, the types SQLite gives, so results serialise to the same JSON."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return int(text) if text.lstrip("-").isdigit() else float(text)

    connection.row_factory = _row_factory
    connection.adapters.register_loader("numeric", NumberLoader)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check(connection: Any) -> None:
    """Before a connection is lent: raise if the server closed it. A restarting server sends
    a FATAL message and hangs up, so an idle connection whose socket is readable is gone; seen
    without a round trip (``SELECT 1`` before each batch cost one more wait per request)."""
    if connection.closed or connection.broken or select.select([connection.fileno()], [], [], 0)[0]:
        connection.close()  # closed, the pool discards it (and opens another)
        raise _psycopg().OperationalError("the server closed the connection")


_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""JSON's escaped NUL (``\\u0000`` after an even run of backslashes), which ``jsonb`` refuses."""


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL, nor ``jsonb`` its JSON escape: both become U+FFFD."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if "\\u0000" in value:
        value = _JSON_NUL.sub(r"\1\\ufffd", value)
    return value


class PostgresEngine:
    name = "postgresql"

    def __init__(self, url: str, session_timeout_us: int | None, hooks: Sequence[Any] = (), *,
                 pool_size: int = 8, wait_s: float = 2.0) -> None:
        _psycopg()
        self.url = url
        self._timeout_us = session_timeout_us
        self._hooks = tuple(hooks)  # see Store: ensure() at creation, apply() in each insert
        self._pool_size = pool_size
        self._wait_s = wait_s
        self._pool: Any = None
        self._lock = threading.Lock()
        self._ready = False

    def describe(self) -> str:
        """The URL without its password (it may be in a log line)."""
        return hide_password(self.url)

    def exists(self) -> bool:
        """Whether the database holds a store (readers never create one); StoreUnavailable
        when the server does not answer (an error for a reader, not "no events")."""
        with self._transaction() as c:
            return c.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
                self._ready = False

    def _open_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                # opened on first use: no threads before then; check: a connection the database
                # closed (a restart) is replaced before it is lent
                # force_custom_plan: ``id > ?`` is planned for its value, the batch's few rows (a
                # generic plan, chosen after five runs, assumes a third of the table). jit=off: our
                # reads are index look-ups and scans whose estimated costs (every per-row look-up
                # counted) pass jit_above_cost; compiling them took up to 0.5 s, longer than running
                self._pool = ConnectionPool(self.url, min_size=1, max_size=self._pool_size, open=False,
                                            kwargs={"options": _OPTIONS},
                                            configure=_configure, check=_check,
                                            timeout=self._wait_s, reconnect_timeout=24 * 3600.0,
                                            name="trubrics-otel")
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def _transaction(self) -> Iterator[PostgresConnection]:
        """A pooled connection in a transaction, committed when the block ends; database
        failures (down, restarting, unreachable) as :class:`StoreUnavailable`."""
        psycopg = _psycopg()
        from psycopg_pool import PoolTimeout

        pool = self._pool or self._open_pool()
        try:
            with pool.connection() as raw:
                yield PostgresConnection(raw)
        except PoolTimeout as error:  # at open, the real reason (no such database, a refused login)
            reason = (None if self._ready else self._why_no_connection()) or str(error)
            raise StoreUnavailable(f"PostgreSQL at {self.describe()} unavailable: {reason}") from None
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"PostgreSQL at {self.describe()} unavailable: {_first_line(error)}") from None

    def _why_no_connection(self) -> str | None:
        """Why one direct connection fails, or None: the pool's timeout ("couldn't get a
        connection after 2.00 sec") hides the server's answer. Asked only before the store is
        ready: a database going away mid-run stays a quick 503."""
        try:
            _psycopg().connect(self.url, connect_timeout=max(1, round(self._wait_s))).close()
        except Exception as error:  # noqa: BLE001 - any reason is better than the timeout
            return _first_line(error).replace(self.url, self.describe())
        return None

    @contextmanager
    def connection(self) -> Iterator[PostgresConnection]:
        if not self._ready:
            self._create()
        with self._transaction() as connection:
            yield connection

    def _create(self) -> None:
        try:
            with self._transaction() as c:
                c.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
                migrations.apply(c, "postgresql")
                c.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
                derived.ensure_sessions(c, self._timeout_us)
                for hook in self._hooks:
                    hook.ensure(c)
        except BaseException:
            self.close()  # a store that cannot start (a newer schema, no database) holds no pool
            raise
        self._ready = True

    def insert(self, rows: Sequence[tuple[Any, ...]], with_ids: bool = False) -> int:
        """Store ``rows`` and fold them into the derived tables in one transaction; how many
        were new. Returns only after COMMIT. ``with_ids``: each row starts with its id, higher
        than any stored (a copy, by COPY); the id sequence then continues after them.

        The batch goes in as one ``INSERT … SELECT FROM unnest(arrays)`` before the lock, so
        the workers' inserts (index updates, most of PostgreSQL's work) run side by side; the
        lock is taken for the fold alone, whose statements read the rows this transaction
        inserted (:class:`_OwnRows`), never another worker's. Every read of other rows (a
        session to extend, the turn a feedback names) runs after the lock is granted, so it
        sees every batch folded before. A hook's ``apply_side_by_side`` (tables keyed by event
        id) runs before the lock, its ``apply(..., side_by_side=False)`` under it. The whole
        transaction leaves in one pipeline, the sessions folded in SQL (:data:`_SESSIONS`): the
        lock is held for the fold's statements, one wait for the feedback reads and the COMMIT,
        not for round trips of this process (each waits for this thread to get the GIL back
        from the worker's other requests)."""
        columns = _columns(rows, with_ids)
        with self.connection() as c:
            copied = _copy(c.raw, columns) if with_ids else None  # COPY cannot run in a pipeline
            own = PostgresConnection(c.raw, _OWN_ROWS, prepare=True)
            with c.raw.pipeline():
                c.raw.execute(_GENERIC_PLANS, prepare=True)
                if copied is None:  # the batch's first and last id are set by the insert itself
                    new, first_id, *_ = c.raw.execute(_INSERT, columns, prepare=True).fetchone()
                elif copied:
                    new, first_id = len(copied), min(copied)
                    own.execute(_RANGE, (str(first_id), str(max(copied))))
                    c.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events))")
                else:
                    return 0
                if not new:
                    return 0
                beside = [hook for hook in self._hooks if hasattr(hook, "apply_side_by_side")]
                for hook in beside:  # rows no other batch touches: before the lock
                    hook.apply_side_by_side(own, first_id - 1)
                own.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
                derived.apply(own, first_id - 1, None)
                own.execute(_SESSIONS)
                for hook in self._hooks:
                    if hook in beside:
                        hook.apply(own, first_id - 1, side_by_side=False)
                    else:
                        hook.apply(own, first_id - 1)
                c.raw.commit()  # in the pipeline: sent with the statements not yet answered
        return new


class _OwnRows(Dialect):
    """PostgreSQL, where the fold reads a batch's new rows (:meth:`new_rows`, ``WHERE id > ?``;
    ``events`` + :meth:`not_indexed`): only the rows this transaction inserted (their ``xmin``),
    between the batch's first and last id. Other workers insert at the same time, so ids in
    that range are not all the batch's; a row they committed meanwhile was folded by them.

    :meth:`new_rows` is a subquery fenced by ``OFFSET 0``: the statement's own conditions
    (``kind = 'llm'``, ``thread_id IS NOT NULL``) stay outside it, so the primary-key range is
    its only access path. Planned with them (generic plans, made while the table was small),
    PostgreSQL ANDed the key range with a partial index holding every LLM event, read whole by
    each of the fold's statements: its cost grew with the table (~40 µs of PostgreSQL CPU per
    LLM event at 20,000 stored)."""

    @property
    def not_indexed(self) -> str:
        return (" JOIN (VALUES (0)) AS this_transaction (n) ON events.xmin = pg_current_xact_id()::xid "
                f"AND events.id BETWEEN {_FIRST} AND {_LAST}")

    def new_rows(self, alias: str = "", wide: bool = False) -> str:
        return (f"(SELECT * FROM events WHERE id BETWEEN {_FIRST} AND {_LAST} "
                f"AND xmin = pg_current_xact_id()::xid OFFSET 0) AS {alias or 'events'}")


_FIRST = "current_setting('trubrics.first_id')::bigint"
_LAST = "current_setting('trubrics.last_id')::bigint"
_OWN_ROWS = _OwnRows("postgresql")
_SESSIONS = f"""WITH timeout AS (SELECT CAST(value AS BIGINT) AS us FROM meta WHERE key = 'session_timeout_us'),
    points AS (SELECT user_id, ts_us, CASE WHEN kind = 'llm' THEN 1 ELSE 0 END AS llm FROM {_OWN_ROWS.new_rows()}),
    windows AS (SELECT user_id, MIN(ts_us) - us AS low, MAX(ts_us) + us AS high FROM points, timeout GROUP BY user_id, us),
    old AS (SELECT s.user_id, s.start_us, s.end_us, s.events, s.llm_events FROM sessions s
            JOIN windows w ON s.user_id = w.user_id AND s.end_us >= w.low AND s.start_us <= w.high),
    items AS (SELECT * FROM old UNION ALL SELECT user_id, ts_us, ts_us, 1, llm FROM points, timeout),
    gaps AS (SELECT items.*, CASE WHEN start_us - MAX(end_us) OVER (PARTITION BY user_id ORDER BY start_us, end_us
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) <= (SELECT us FROM timeout) THEN 0 ELSE 1 END AS gap
             FROM items),
    numbered AS (SELECT gaps.*, SUM(gap) OVER (PARTITION BY user_id ORDER BY start_us, end_us, gap DESC
                     ROWS UNBOUNDED PRECEDING) AS n FROM gaps),
    merged AS (SELECT user_id, MIN(start_us) AS start_us, MAX(end_us) AS end_us, CAST(SUM(events) AS BIGINT) AS events,
                      CAST(SUM(llm_events) AS BIGINT) AS llm_events FROM numbered GROUP BY user_id, n),
    gone AS (DELETE FROM sessions s USING old WHERE s.user_id = old.user_id AND s.start_us = old.start_us
             AND NOT EXISTS (SELECT 1 FROM merged m WHERE m.user_id = old.user_id AND m.start_us = old.start_us)),
    grown AS (UPDATE sessions s SET end_us = m.end_us, events = m.events, llm_events = m.llm_events
              FROM merged m JOIN old ON old.user_id = m.user_id AND old.start_us = m.start_us
              WHERE s.user_id = m.user_id AND s.start_us = m.start_us
              AND (old.end_us, old.events, old.llm_events) IS DISTINCT FROM (m.end_us, m.events, m.llm_events))
    INSERT INTO sessions SELECT user_id, start_us, end_us, session_id(user_id, start_us), events, llm_events
    FROM merged m WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.user_id = m.user_id AND old.start_us = m.start_us)"""
"""The batch's events merged into the sessions they touch (:func:`.derived._merge`, in one
statement): the sessions within the stored timeout of each user's first and last new event,
and the new events as instants, ordered by start; a gap over the timeout starts a session.
A merged session whose start was stored updates that row (its id, a hash of user and start,
stays), one merged into an earlier one is deleted, a new start inserted. In SQL, under the
lock, rather than read back here: the lock was held over that round trip and this process's
Python between, which first waits for the GIL (the worker's other requests hold it)."""
_GENERIC_PLANS = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"
"""For the insert's transaction: its ~30 statements, prepared at their first run on a
connection (``prepare=True``; psycopg's default waits for the fifth, and ``serve``'s pool of 8
connections planned a fifth of a 20,000-event run's batches statement by statement), keep one
plan each instead of being planned again per batch (the connection's ``force_custom_plan``,
which reads keep). The fold's reads name the batch's ids
as a closed range (:class:`_OwnRows`), so a generic plan estimates a few rows and walks the
primary key: planning was ~20 µs of PostgreSQL's ~55 per ``track`` event."""
_TYPES = {"id": "bigint", "ts_us": "bigint", "received_us": "bigint", "input_tokens": "bigint",
          "output_tokens": "bigint", "latency": "float8", "cost_usd": "float8"}  # else text


def _unnest_insert(columns: Sequence[str]) -> str:
    # %b: the arrays go in binary; as text each JSON property string's quotes were escaped one
    # regular-expression match at a time (~2,000 per batch, a third of the worker's insert CPU)
    arrays = ", ".join(f"%b::{_TYPES.get(name, 'text')}[]" for name in columns)
    names = ", ".join(columns)
    return (f"WITH batch AS (INSERT INTO events ({names}) SELECT {names} FROM unnest({arrays}) WITH ORDINALITY "
            f"AS batch({names}, n) ORDER BY n ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING id) "
            "SELECT COUNT(*), MIN(id), set_config('trubrics.first_id', CAST(MIN(id) AS TEXT), true), "
            "set_config('trubrics.last_id', CAST(MAX(id) AS TEXT), true) FROM batch")


_INSERT = _unnest_insert((*COLUMNS, "words"))
"""A batch in one statement, ids in the batch's order; a second copy of an event (the unique
``(trace_id, span_id)``, the one index checked before each row goes in: without a target
every unique index was, the primary key too, whose ids the sequence gives), in the batch or
stored, is skipped. ``words``: what search indexes. It answers how many rows were new and
the first one's id, and sets the range of their ids for the fold (:class:`_OwnRows`)."""
_RANGE = "SELECT set_config('trubrics.first_id', ?, true), set_config('trubrics.last_id', ?, true)"
_COPIED = ("id", *COLUMNS, "words")
_COPY = f"COPY events ({', '.join(_COPIED)}) FROM STDIN (FORMAT BINARY)"


def _copy(connection: Any, columns: list[list[Any]]) -> list[int]:
    """A copy's rows (``migrate``: their ids given, none of them stored, see :mod:`.copy`) by
    COPY, binary: no conflict to check, no arrays to unpack. Their ids."""
    with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.set_types([_TYPES.get(name, "text") for name in _COPIED])
        for row in zip(*columns):
            copy.write_row(row)
    return columns[0]


def _columns(rows: Sequence[tuple[Any, ...]], with_ids: bool) -> list[list[Any]]:
    """Rows as one list per column, each value of the column's type (an int latency is a
    float8 like the others: an array has one type), then the LLM events' search words
    (:func:`.dialect.search_words`: ~10 µs here instead of ~50 in PostgreSQL's text parser)."""
    names = ("id", *COLUMNS) if with_ids else COLUMNS
    columns: list[list[Any]] = [list(column) for column in zip(*rows)] or [[] for _ in names]
    for i, name in enumerate(names):
        kind = _TYPES.get(name)
        convert = int if kind == "bigint" else float if kind == "float8" else _clean
        columns[i] = [None if value is None else convert(value) for value in columns[i]]
    kinds, prompts, generations = (columns[names.index(name)] for name in ("kind", "prompt", "generation"))
    columns.append([search_words(p, g) if kind == "llm" else None
                    for kind, p, g in zip(kinds, prompts, generations)])
    return columns
