"""The PostgreSQL engine: psycopg 3 and a connection pool (the ``[postgres]`` extra).

::

    engine = PostgresEngine("postgresql://trubrics@db.internal:5432/trubrics", session_timeout_us=None)
    with engine.connection() as c:                 # a PostgresConnection: execute, rows, dialect
        c.rows("SELECT COUNT(*) FROM events WHERE user_id = ?", ["alice"])
    engine.insert(rows)                            # -> how many were new; committed on return

Several ``serve`` processes may share one database. Each batch is one transaction: its events
go in with ``ON CONFLICT DO NOTHING`` on the unique ``(trace_id, span_id)`` index (an event
retried to another worker is stored once), then the derived tables fold in the batch's rows
(``id > last_id``). That fold holds a transaction-scoped advisory lock, so batches from
different workers fold one after the other and no count is lost; decoding, validation and
translation, most of a request's cost, stay parallel. The batch is acknowledged only after
COMMIT returns.

When the database is down or restarting, calls raise :class:`StoreUnavailable` (the server
answers 503 with Retry-After, and our clients retry); the pool checks a connection before
lending it and reconnects in the background. Nothing of a failed transaction is kept, and the
retried batch is stored once (the unique index).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trubrics_otel.server.store import derived, migrations
from trubrics_otel.server.store.dialect import POSTGRESQL, to_pyformat
from trubrics_otel.server.store.errors import StoreError, StoreUnavailable
from trubrics_otel.server.store.rows import INSERT, INSERT_WITH_ID

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


def hide_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


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
    names = [column.name for column in cursor.description or ()]
    kind = type("Row", (Row,), {"_index": {name: i for i, name in enumerate(names)}, "__slots__": ()})
    return kind


class PostgresConnection:
    """One pooled connection speaking the engine-neutral API: ``?`` placeholders, rows by
    index or name, ``dialect``."""

    dialect = POSTGRESQL

    def __init__(self, connection: Any) -> None:
        self.raw = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(to_pyformat(sql), tuple(params))

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

                # opened on first use: no threads before then; check: a connection broken by a
                # database restart is replaced before it is lent
                # force_custom_plan: ``id > ?`` is planned for its value, the batch's few rows (a
                # generic plan, chosen after five runs, assumes a third of the table)
                self._pool = ConnectionPool(self.url, min_size=1, max_size=self._pool_size, open=False,
                                            kwargs={"options": "-c plan_cache_mode=force_custom_plan"},
                                            configure=_configure, check=ConnectionPool.check_connection,
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
        except PoolTimeout as error:
            raise StoreUnavailable(f"PostgreSQL at {self.describe()} unavailable: {error}") from None
        except psycopg.OperationalError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise StoreUnavailable(f"PostgreSQL at {self.describe()} unavailable: {first}") from None

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
        than any stored (a copy); the id sequence then continues after them."""
        rows = [tuple(_clean(v) for v in row) for row in rows]
        with self.connection() as c:
            c.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
            last_id = c.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            c.executemany(INSERT_WITH_ID if with_ids else INSERT, rows)
            stored = c.execute("SELECT COUNT(*) FROM events WHERE id > ?", (last_id,)).fetchone()[0]
            if with_ids:
                c.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), "
                          "(SELECT MAX(id) FROM events))")
            if stored:
                derived.apply(c, last_id, derived.stored_timeout_us(c))
                for hook in self._hooks:
                    hook.apply(c, last_id)
        return stored
