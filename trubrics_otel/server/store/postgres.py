"""The PostgreSQL engine: psycopg 3 and a connection pool (the ``[postgres]`` extra).

::

    engine = PostgresEngine("postgresql://trubrics@db.internal:5432/trubrics", session_timeout_us=None)
    with engine.connection() as c:                 # a PostgresConnection: execute, rows, dialect
        c.rows("SELECT COUNT(*) FROM events WHERE user_id = ?", ["alice"])
    engine.insert(rows)                            # -> how many were new; committed on return

Several ``serve`` processes may share one database. Each batch is one transaction: its events
go in with ``ON CONFLICT DO NOTHING`` on the unique ``(trace_id, span_id)`` index (an event
retried to another worker is stored once), side by side with other workers' inserts, and their
ids into ``fold_pending``; no lock is taken. The batch is acknowledged only after COMMIT returns.

Deferred fold: the derived tables (sessions, users, threads, rollups) and the hooks' tables take
the pending events in later, in bulk (:mod:`.postgres_fold`): one folder at a time under an
advisory lock, in a transaction that deletes the ids it folded, so each event is folded exactly
once whichever worker folds it. A process's folder thread folds once it has queued
:data:`FOLD_ROWS` events (skipped when another folder holds the lock: that one, or the next,
takes them), every read folds what is pending first (:meth:`PostgresEngine.connection`, waiting
for a fold under way), and so do the store's open and :meth:`PostgresEngine.close`. A reader
therefore never sees a summary that lacks an acknowledged event; a fold over thousands of
events costs a fraction per event of a fold per batch of 100, and the workers' ingests no
longer wait for each other's folds.

When the database is down or restarting, calls raise :class:`StoreUnavailable` (the server
answers 503 with Retry-After, and our clients retry); the pool checks a connection before
lending it and reconnects in the background. Nothing of a failed transaction is kept, and the
retried batch is stored once (the unique index).
"""

from __future__ import annotations

import logging
import re
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trubrics_otel.extras import install_command
from trubrics_otel.server.store import migrations
from trubrics_otel.server.store.dialect import Dialect, search_words
from trubrics_otel.server.store.errors import StoreError, StoreUnavailable
from trubrics_otel.server.store.postgres_connection import PostgresConnection, configure
from trubrics_otel.server.store.postgres_fold import WRITE_LOCK, Folder, fold_pending
from trubrics_otel.server.store.postgres_setup import check_target, connection_options, keep_sessions, not_permitted
from trubrics_otel.server.store.rows import COLUMNS
from trubrics_otel.settings import hide_password

logger = logging.getLogger("trubrics.server")

FOLD_ROWS = 5_000
"""A process folds once it has queued this many events since its last fold (see the module's
docstring); reads fold whatever is pending first."""
INSERTS = 3
"""A process's batches in PostgreSQL at once (the others wait, holding no connection): its CPU per
LLM event grew with them (1: ~56 µs, 2: ~57, 4: ~63, 8: ~69), while one worker, bound to a core,
keeps no more than two or three busy."""
FOLD_RETRY_S = 10.0
"""After a second read's fold in a row fails, reads answer from the tables as they are this long
(as SQLite's, :data:`.sqlite.FOLD_RETRY_S`): each would otherwise try every pending event again."""
_ANY_PENDING = "SELECT EXISTS (SELECT 1 FROM fold_pending)"
_OPTIONS = "-c plan_cache_mode=force_custom_plan -c jit=off"
"""Every pooled connection's settings, sent when it opens (no round trip): see _open_pool."""
_MIGRATE_LOCK = 0x7472_7563  # one worker migrates at start, the others wait and find it done


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise StoreError(f"a postgresql:// database needs the [postgres] extra: {install_command('postgres')}") from None
    return psycopg


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
        self._options = connection_options(url, _OPTIONS)  # a URL libpq cannot read: one line, now
        self._timeout_us = session_timeout_us
        self._hooks = tuple(hooks)  # see Store: ensure() at creation, apply() in each fold
        self._pool_size = pool_size
        self._wait_s = wait_s
        self._pool: Any = None
        self._lock = threading.Lock()
        self._ready = False
        self._folder = Folder(lambda: self.fold(wait=False), self.describe())  # the folder thread
        self._read_fold_after = 0.0  # monotonic time before which reads do not fold (failures)
        self._fold_failures = 0  # reads' folds failed in a row
        self._inserting = threading.BoundedSemaphore(INSERTS)

    def describe(self) -> str:
        """The URL without its password (it may be in a log line)."""
        return hide_password(self.url)

    def exists(self) -> bool:
        """Whether the database holds a store (readers never create one); StoreUnavailable
        when the server does not answer (an error for a reader, not "no events")."""
        with self._transaction() as c:
            return c.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()[0]

    def close(self) -> None:
        """Fold what is pending (a database down: the next fold, any worker's or read's, takes
        it), stop the folder thread, close the pool (reopened when used again)."""
        if self._ready:
            try:
                self.fold()
            except Exception:  # noqa: BLE001 - closing all the same: any later fold takes them
                logger.warning("%s: the pending events were not folded at close", self.describe(), exc_info=True)
        self._folder.stop()
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
                                            kwargs={"options": self._options},
                                            configure=configure, check=_check,
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
        """A pooled connection in a transaction, every pending event folded first (waiting for
        a fold under way): a read sees every acknowledged event in every table. A fold that
        fails for another reason than the database's availability is logged, and the read
        answers from the tables as they are (after two in a row, reads do for
        :data:`FOLD_RETRY_S`; any other successful fold ends that)."""
        if not self._ready:
            self._create()
        with self._transaction() as connection:
            if time.monotonic() >= self._read_fold_after and connection.execute(_ANY_PENDING).fetchone()[0]:
                try:  # committed: the lock released before the read
                    fold_pending(connection, self._hooks, wait=True, commit=True)
                except _psycopg().OperationalError:
                    raise
                except Exception:  # noqa: BLE001 - a bug, a hook: the events stay pending
                    logger.exception("%s: could not fold the pending events into the summary tables; "
                                     "reading them as they are", self.describe())
                    connection.raw.rollback()
                    self._fold_failures += 1
                    if self._fold_failures > 1:  # see FOLD_RETRY_S
                        self._read_fold_after = time.monotonic() + FOLD_RETRY_S
                else:
                    self._fold_failures = 0
            yield connection

    def _create(self) -> None:
        """Migrate; then, under the fold's lock and with no ingest committing (``fold_pending``
        locked: a table rebuilt from every event and the pending events must not both count a
        batch committed in between), the hooks' tables made (or refilled), the pending events
        folded (but into those refilled), sessions rebuilt for another timeout."""
        try:
            with self._transaction() as c:
                c.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
                check_target(c, migrations.latest("postgresql"))  # one line: a privilege, a table not ours
                migrations.apply(c, "postgresql")
                c.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
                c.execute("LOCK TABLE fold_pending IN EXCLUSIVE MODE")
                refilled = [hook for hook in self._hooks if hook.ensure(c)]
                fold_pending(c, self._hooks, wait=False, skip=refilled)  # the lock held: taken at once
                keep_sessions(c, self._timeout_us, self.describe())
        except BaseException as error:
            self.close()  # a store that cannot start (a newer schema, no database) holds no pool
            if (refused := not_permitted(error, self.url)) is not None:
                raise refused from None
            raise
        self._ready = True

    def insert(self, rows: Sequence[tuple[Any, ...]], with_ids: bool = False) -> int:
        """Store ``rows`` and queue their ids for the fold (``fold_pending``) in one
        transaction, no lock taken; how many were new. Returns only after COMMIT. ``with_ids``:
        each row starts with its id, higher than any stored (a copy, by COPY); the id sequence
        then continues after them, and the copy is folded before this returns.

        One ``INSERT … SELECT FROM unnest(arrays)`` stores and queues the batch; a hook's
        ``apply_side_by_side`` (tables keyed by event id) reads the rows this transaction
        inserted (:class:`_OwnRows`); all in one pipeline with the COMMIT. Every
        :data:`FOLD_ROWS` queued, the folder thread folds (:mod:`.postgres_fold`). At most
        :data:`INSERTS` of a process's batches at once."""
        columns = _columns(rows, with_ids)
        if not self._ready:
            self._create()
        with self._insert_slot(), self._transaction() as c:
            copied = _copy(c.raw, columns) if with_ids else None  # COPY cannot run in a pipeline
            own = PostgresConnection(c.raw, _OWN_ROWS, prepare=True)
            with c.raw.pipeline():
                c.raw.execute(_BATCH_SETTINGS, prepare=True)
                if copied is None:  # the batch's first and last id are set by the insert itself
                    new, first_id, *_ = c.raw.execute(_INSERT, columns, prepare=True).fetchone()
                elif copied:
                    new, first_id = len(copied), min(copied)
                    own.execute(_RANGE, (str(first_id), str(max(copied))))
                    own.execute(f"INSERT INTO fold_pending SELECT array_agg(id) FROM {_OWN_ROWS.new_rows()}")
                    c.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events))")
                else:
                    return 0
                if not new:
                    return 0
                for hook in self._hooks:  # rows no other batch touches
                    if hasattr(hook, "apply_side_by_side"):
                        hook.apply_side_by_side(own, first_id - 1)
                c.raw.commit()  # in the pipeline: sent with the statements not yet answered
        if with_ids:
            self.fold()
        else:
            self._folder.queued(new, FOLD_ROWS)
        return new

    @contextmanager
    def _insert_slot(self) -> Iterator[None]:
        """One of :data:`INSERTS`, waited for as long as the pool waits for a connection: batches
        queued behind a database that hangs answer 503, as they would waiting for the pool."""
        if not self._inserting.acquire(timeout=self._wait_s):
            raise StoreUnavailable(f"PostgreSQL at {self.describe()} unavailable: {INSERTS} batches of "
                                   f"this process inserting for over {self._wait_s:g} s")
        try:
            yield
        finally:
            self._inserting.release()

    def fold(self, wait: bool = True) -> int:
        """Fold the pending events now (:mod:`.postgres_fold`); how many; ``wait=False``: none
        when another folder (a worker, a read) holds the lock: it takes them, or the next does."""
        with self._transaction() as c:
            folded = fold_pending(c, self._hooks, wait=wait, commit=True)
        self._read_fold_after, self._fold_failures = 0.0, 0  # reads fold again
        return folded


class _OwnRows(Dialect):
    """PostgreSQL, where a hook's ``apply_side_by_side`` reads a batch's new rows
    (:meth:`new_rows`, ``WHERE id > ?``; ``events`` + :meth:`not_indexed`): only the rows this
    transaction inserted (their ``xmin``), between its first and last id (other workers' are
    between them too). :meth:`new_rows` is fenced by ``OFFSET 0``: the statement's conditions
    stay outside, the key range its only access path (with them, PostgreSQL ANDed it with a
    partial index, read whole by each statement)."""

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
_BATCH_SETTINGS = ("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), "
                   "CASE WHEN current_setting('synchronous_commit') = 'off' "
                   "THEN set_config('synchronous_commit', 'local', true) END")
"""For the insert's transaction. Durable: on a database set to ``synchronous_commit = off`` (a
common tuning) COMMIT answers before the WAL holds it, and a crash then lost acknowledged
batches (17 of 29 events acknowledged just before ``pg_ctl stop -m immediate``); ``local``
waits for this server's WAL only (a stricter setting, e.g. ``remote_apply``, is kept). A fold
needs no such wait: lost, its events are still queued. Generic plans: its ~30 statements,
prepared at their first run on a connection (``prepare=True``; psycopg's default waits for the
fifth, and ``serve``'s pool of 8 connections planned a fifth of a 20,000-event run's batches
statement by statement), keep one plan each instead of being planned again per batch (the
connection's ``force_custom_plan``, which reads keep). The fold's reads name the batch's ids
as a closed range (:class:`_OwnRows`), so a generic plan estimates a few rows and walks the
primary key: planning was ~20 µs of PostgreSQL's ~55 per ``track`` event."""
_TYPES = {"id": "bigint", "ts_us": "bigint", "received_us": "bigint", "input_tokens": "bigint",
          "output_tokens": "bigint", "latency": "float8", "cost_usd": "float8"}  # else text


def _unnest_insert(columns: Sequence[str], queued: bool = False) -> str:
    """``queued``: the new ids into ``fold_pending`` too (a test writing as a release that
    folded each batch itself leaves it out)."""
    # %b: the arrays go in binary; as text each JSON property string's quotes were escaped one
    # regular-expression match at a time (~2,000 per batch, a third of the worker's insert CPU)
    queue = (", queued AS (INSERT INTO fold_pending (ids) SELECT array_agg(id) FROM batch HAVING COUNT(*) > 0)"
             if queued else "")
    arrays = ", ".join(f"%b::{_TYPES.get(name, 'text')}[]" for name in columns)
    names = ", ".join(columns)
    return (f"WITH batch AS (INSERT INTO events ({names}) SELECT {names} FROM unnest({arrays}) WITH ORDINALITY "
            f"AS batch({names}, n) ORDER BY n ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING id)"
            f"{queue} SELECT COUNT(*), MIN(id), set_config('trubrics.first_id', CAST(MIN(id) AS TEXT), true), "
            "set_config('trubrics.last_id', CAST(MAX(id) AS TEXT), true) FROM batch")


_INSERT = _unnest_insert((*COLUMNS, "words"), queued=True)
"""A batch in one statement, ids in the batch's order; a second copy of an event (the unique
``(trace_id, span_id)``, the one index checked before each row goes in: without a target
every unique index was, the primary key too, whose ids the sequence gives), in the batch or
stored, is skipped. ``words``: what search indexes. The new ids are queued for the fold. It
answers how many rows were new and the first one's id, and sets the range of their ids for
the hooks' side-by-side tables (:class:`_OwnRows`)."""
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
