"""The embedded engine: one SQLite file, WAL journal, the default.

::

    engine = SQLiteEngine(Path("events.sqlite3"), session_timeout_us=None)
    with engine.connection() as c:                 # a SQLiteConnection: execute, rows, dialect
        c.rows("SELECT COUNT(*) FROM events")
    engine.insert(rows)                            # -> how many were new

Each thread keeps its own connection between calls (opening, closing and the function
registration cost ~5 ms per call on a busy machine, and the last connection to close
checkpoints the WAL), so one store serves many threads; writes within the process are
serialised by a lock, batches waiting for it committed together (:meth:`SQLiteEngine.insert`),
and WAL lets readers (the CLI, another process) run while the server writes. Several
processes may write: ``BEGIN IMMEDIATE`` takes SQLite's write lock, so a transaction's
``id > last_id`` range is its own.

Durability: WAL with ``synchronous=NORMAL``: a committed batch survives the process crashing
(it is in the WAL, in the OS's hands); a power cut may lose the last commits before a
checkpoint, never corrupt the file. Commits no longer wait for an fsync each.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trubrics_otel.server.store import derived, migrations
from trubrics_otel.server.store.dialect import SQLITE
from trubrics_otel.server.store.rows import INSERT, INSERT_WITH_ID


class SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection that also offers the engine-neutral ``rows`` and ``dialect``."""

    dialect = SQLITE

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params)]


class SQLiteEngine:
    name = "sqlite"

    def __init__(self, path: Path, session_timeout_us: int | None, hooks: Sequence[Any] = ()) -> None:
        self.path = path
        self._timeout_us = session_timeout_us
        self._hooks = tuple(hooks)  # see Store: ensure() at creation, apply() in each insert
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Batch] = []  # batches waiting for the write lock (group commit)
        self._ready = False
        self._local = threading.local()  # this thread's (generation, connection)
        self._generation = 0  # close() moves it on: every thread then opens a new connection
        self._open: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        """Every thread's, for close(); a thread that ends drops (and so closes) its own."""

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        """Close every thread's connection (the store reopens them when used again); the last
        one to close folds the WAL back into the database file."""
        with self._write_lock, self._open_lock:
            opened, self._open, self._ready = list(self._open), weakref.WeakSet(), False
            self._generation += 1
        for connection in opened:
            connection.close()

    def _connect(self) -> SQLiteConnection:
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                     factory=SQLiteConnection, check_same_thread=False)
        connection.execute("PRAGMA synchronous=NORMAL")  # per connection; see the module's docstring
        derived.register_functions(connection)
        return connection  # type: ignore[return-value]

    @contextmanager
    def connection(self) -> Iterator[SQLiteConnection]:
        """This thread's connection (rows as :class:`sqlite3.Row`: by index or by name); any
        transaction left open is rolled back on the way out, so no snapshot outlives the call."""
        if not self._ready:
            self._create()
        connection = self._thread_connection()
        try:
            yield connection
        finally:
            if connection.in_transaction:
                connection.rollback()

    def _thread_connection(self) -> SQLiteConnection:
        generation, connection = getattr(self._local, "held", (-1, None))
        if generation != self._generation or connection is None:
            connection = self._connect()
            connection.row_factory = sqlite3.Row
            with self._open_lock:  # not the write lock: a thread's first batch queues during a write
                self._open.add(connection)
                generation = self._generation
            self._local.held = (generation, connection)
        return connection

    def _create(self) -> None:
        with self._write_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect()
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                if self._work_to_do(connection):
                    connection.execute("BEGIN IMMEDIATE")  # one process migrates; the others find it done
                    try:
                        migrations.apply(connection, "sqlite")
                        if connection.execute("PRAGMA user_version").fetchone()[0] < derived.VERSION:
                            derived.upgrade_sqlite(connection)
                        derived.ensure_sessions(connection, self._timeout_us)
                        connection.execute("COMMIT")
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                for hook in self._hooks:  # their tables: made (and filled) once
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        hook.ensure(connection)
                        connection.execute("COMMIT")
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
            finally:
                connection.close()
            self._ready = True

    def _work_to_do(self, connection: sqlite3.Connection) -> bool:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone():
            return True
        migrations.check(connection, "sqlite")
        if migrations.current(connection) < migrations.latest("sqlite"):
            return True
        if connection.execute("PRAGMA user_version").fetchone()[0] < derived.VERSION:
            return True
        return derived.sessions_need_work(connection, self._timeout_us)

    def insert(self, rows: Sequence[tuple[Any, ...]], with_ids: bool = False) -> int:
        """Store ``rows`` and fold them into the derived tables; how many were new (the others
        were already stored). Returns once the transaction holding them has committed.

        Group commit: batches that arrive while another thread writes wait for the write lock;
        the next thread to take it writes every waiting batch in one transaction (each in a
        savepoint: a batch that fails is rolled back alone, the others go on), so the COMMIT
        and the derived tables' statements are paid once per group, not per batch. Should the
        shared part fail (a derived table, a hook, the COMMIT), each batch is tried alone, so
        an error stays with the batch that caused it. ``with_ids``: each row starts with its
        id, higher than any stored (a copy: written alone)."""
        batch = _Batch(rows, with_ids)
        with self.connection() as connection:
            if not with_ids:
                with self._queue_lock:
                    self._queue.append(batch)
            while not batch.done:
                with self._write_lock:
                    if batch.done:
                        break
                    if with_ids:
                        group = [batch]
                    else:
                        with self._queue_lock:
                            group = _take(self._queue)
                    self._write_group(connection, group)
        if batch.error is not None:
            raise batch.error
        return batch.stored

    def _write_group(self, connection: SQLiteConnection, group: list[_Batch]) -> None:
        """One transaction for ``group``; every batch in it done (stored or failed) on return."""
        try:
            self._transaction(connection, group)
        except BaseException as error:
            if len(group) == 1 or not isinstance(error, Exception) or not any(b.rows_in for b in group):
                for batch in group:
                    batch.finish(error=error)
                if not isinstance(error, Exception):
                    raise
                return
            for batch in group:  # the shared part failed: each alone, the error to its own batch
                batch.stored, batch.error, batch.rows_in = 0, None, False
                try:
                    self._transaction(connection, [batch])
                except Exception as alone:
                    batch.finish(error=alone)
                else:
                    batch.finish()
            return
        for batch in group:
            batch.finish()

    def _transaction(self, connection: SQLiteConnection, group: list[_Batch]) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            last_id = connection.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            stored = 0
            for batch in group:
                if len(group) > 1:
                    connection.execute("SAVEPOINT batch")
                before = connection.total_changes
                try:
                    connection.executemany(INSERT_WITH_ID if batch.with_ids else INSERT, batch.rows)
                except Exception as error:
                    if len(group) == 1:
                        raise
                    connection.execute("ROLLBACK TO batch")
                    connection.execute("RELEASE batch")
                    batch.error = error
                    continue
                if len(group) > 1:
                    connection.execute("RELEASE batch")
                batch.stored, batch.rows_in = connection.total_changes - before, True
                stored += batch.stored
            if stored:
                derived.apply(connection, last_id, derived.stored_timeout_us(connection))
                for hook in self._hooks:
                    hook.apply(connection, last_id)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


GROUP_ROWS = 10_000
"""At most this many rows per group transaction (more waiting batches go in the next)."""


class _Batch:
    """One caller's rows on their way into a (group) transaction."""

    __slots__ = ("rows", "with_ids", "stored", "error", "rows_in", "done")

    def __init__(self, rows: Sequence[tuple[Any, ...]], with_ids: bool) -> None:
        self.rows, self.with_ids = rows, with_ids
        self.stored, self.error, self.rows_in, self.done = 0, None, False, False

    def finish(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error, self.stored = error, 0
        self.done = True


def _take(queue: list[_Batch]) -> list[_Batch]:
    """The first waiting batches, up to :data:`GROUP_ROWS` rows (at least one), off ``queue``."""
    rows = count = 0
    for count, batch in enumerate(queue, 1):
        rows += len(batch.rows)
        if rows >= GROUP_ROWS:
            break
    group = queue[:count]
    del queue[:count]
    return group
