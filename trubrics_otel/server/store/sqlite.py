"""The embedded engine: one SQLite file, WAL journal, the default.

::

    engine = SQLiteEngine(Path("events.sqlite3"), session_timeout_us=None)
    with engine.connection() as c:                 # a SQLiteConnection: execute, rows, dialect
        c.rows("SELECT COUNT(*) FROM events")
    engine.insert(rows)                            # -> how many were new
    engine.fold()                                  # derived tables and text index current now

Each thread keeps its own connection between calls (opening, closing and the function
registration cost ~5 ms per call on a busy machine, and the last connection to close
checkpoints the WAL), so one store serves many threads; writes within the process are
serialised by a lock, batches waiting to be written committed together (:meth:`SQLiteEngine.insert`),
and WAL lets readers (the CLI, another process) run while the server writes. Several
processes may write: ``BEGIN IMMEDIATE`` takes SQLite's write lock, so a transaction's
``id > last_id`` range is its own.

Deferred fold: an ingest transaction stores the events only and commits (the batch is
acknowledged then). The look-ups of one user's and one thread's events (:mod:`.sqlite_fold`),
the derived tables (:mod:`.derived`: sessions, users, threads, rollups;
the full-text index in chunks of its own, :mod:`.text_index`) and the hooks' tables take in
the events after the watermark (``fold_state.folded_id``) later, in bulk, in one transaction
that also moves the watermark, so an event is folded exactly once: by the writer once
:data:`FOLD_ROWS` events are pending (after its group's callers have their answer), and
before every read (:meth:`SQLiteEngine.connection`, the one way in for the store's readers,
``store.reader()``, the read API, the CLI and the analyses), when the store opens
(rows left by a crash or another process) and on :meth:`SQLiteEngine.close`. A reader
therefore never sees events the derived tables lack, and a fold over 5,000 events costs a
fraction per event of a fold per batch of 100. A fold that fails is logged (with how many
events the tables lack) and rolled back: its events stay stored and pending, the next fold
takes them (after failures in a row, a read's only every :data:`FOLD_RETRY_S`: meanwhile reads
answer from the tables as they are). The open's fold too: the store opens all the same.
A reader (a reading command: no session timeout, not a server) on a file it cannot write reads it as it is, never
folds, and warns how many events its summary tables lack; a writer is refused it. As ``BEGIN IMMEDIATE``
serialises writers, ids commit in order and the watermark is exact, whichever process wrote.

Durability: WAL with ``synchronous=NORMAL``: a committed batch survives the process crashing
(it is in the WAL, in the OS's hands) and is folded when the store is next used; a power cut
may lose the commits since the last checkpoint (at most :data:`CHECKPOINT_BYTES` of WAL, a few
thousand LLM events), never corrupt the file. Commits do not wait for an fsync each.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trubrics_otel.server.store import derived, migrations, text_index
from trubrics_otel.server.store.dialect import SQLITE
from trubrics_otel.server.store.rows import INSERT_WITH_ID, sparse_insert
from trubrics_otel.server.store.sqlite_fold import PENDING as _PENDING
from trubrics_otel.server.store.sqlite_fold import fold_cache as _fold_cache
from trubrics_otel.server.store.sqlite_fold import fold_pending, keys_current
from trubrics_otel.server.store.sqlite_open import open_target, probe_write

logger = logging.getLogger("trubrics.server")

FOLD_ROWS = 5_000
"""The writer folds once this many events are pending (see the module's docstring)."""

FOLD_RETRY_S = 10.0
"""After a second fold in a row fails, reads answer from the tables as they are this long before
one tries again: a fold failing each time (a full disk, a bug) was otherwise paid by every read
(the page polls), under the write lock, with a traceback each time. After one, the next retries."""

PAGE_SIZE = 16_384
"""A new store's page size (SQLite's default is 4,096). The WAL is written a page at a time (a
frame: a header and the page, two ``write()`` calls) and each page a transaction changed is
one frame, whatever it changed in it: an LLM event's row (2-3 KB: its prompt, answer and
properties) filled a 4 KB page alone (~1.4 a page), so a batch of 100 wrote ~160 frames, ~58 of
them for the idempotency index's random keys. In 16 KB pages, ~7 rows a page: the same batch
writes ~58 frames (more bytes: a random key's page is 4x larger), the fold's b-trees are
shallower and take fewer pages: the ingestion API's server CPU per LLM event is ~11 % less
(``benchmarks/bench_server_intake.py``). Set before the file's first table (``_connect``: a
no-op on an existing file): a store made before keeps its own size, and works as before (a
``VACUUM`` in WAL mode cannot change it; the store never runs one). Memory is unchanged: the
page caches are sized in KiB (``cache_size`` < 0, :data:`.sqlite_fold.FOLD_CACHE_KIB`)."""

CHECKPOINT_BYTES = 64 * 1024 * 1024
"""The WAL is copied back into the database file (a checkpoint, run by the connection whose
COMMIT takes the WAL past this much: ``wal_autocheckpoint``, in pages of the file's size) this
seldom. A checkpoint writes each page the WAL holds once, with two fsyncs: an index page that
many batches changed (the idempotency index, a user's or a thread's index on random keys) is
written back once, not once per SQLite's default 1,000 pages: the ingest transactions' CPU per
LLM event was 17-26 % less into a store of 100,000, ~12 % less into a fresh one (in 4 KB pages,
``benchmarks/bench_store_statements.py --ingest``). 64 MB (as much as :data:`WAL_KEEP_BYTES`
keeps): a checkpoint every ~6,000 LLM events, as 40 MB of 4 KB pages were; an LLM event writes
~1.4x the WAL bytes in 16 KB pages (:data:`PAGE_SIZE`), so 40 MB came every ~4,300 (a store
made in 4 KB pages now checkpoints every ~9,000)."""

WAL_KEEP_BYTES = 64 * 1024 * 1024
"""After a checkpoint a WAL file larger than this (a long read held the checkpoint off) is
truncated to it: the disk space left between checkpoints stays bounded."""

class SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection that also offers the engine-neutral ``rows`` and ``dialect``."""

    dialect = SQLITE

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params)]

    def text_index_current(self) -> None:  # a search's first step (:mod:`.text_index`); as a read's
        engine = self.__dict__.get("engine", lambda: None)()  # fold: not while folds fail (FOLD_RETRY_S)
        if engine and time.monotonic() >= engine._read_fold_after and text_index.lagging(self):
            engine.fold()


class SQLiteEngine:
    name = "sqlite"

    def __init__(self, path: Path, session_timeout_us: int | None, hooks: Sequence[Any] = (),
                 reader: bool = False) -> None:
        """``reader``: never writes of its own accord, so a file it cannot write is read as it is
        (:class:`~trubrics_otel.server.store.Store` decides: a reading command's store)."""
        self.path = path
        self._timeout_us = session_timeout_us
        self._reader = reader
        self._hooks = tuple(hooks)  # see Store: ensure() at creation, apply() in each fold
        self._fold_at = FOLD_ROWS  # pending events at which the writer folds (more after a failure)
        self._read_fold_after = 0.0  # monotonic time before which reads do not fold (failures)
        self._fold_failures = 0  # folds failed in a row
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._turn = threading.Condition()  # guards the queue and _writing; notified after each group
        self._queue: list[_Batch] = []  # batches waiting to be written (group commit)
        self._writing = False  # a thread is writing a group
        self._ready = False
        self._read_only = False  # a reader's file it cannot write: read as it is, never folded
        self._target = (str(path), False)  # what _connect opens (_create chooses: sqlite_open)
        self._sessions_checked = False  # ensure_sessions ran with a fold since the store opened
        self._local = threading.local()  # this thread's (generation, connection)
        self._generation = 0  # close() moves it on: every thread then opens a new connection
        self._open: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        """Every thread's, for close(); a thread that ends drops (and so closes) its own."""

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        """Fold what is pending (unless folds fail and wait for FOLD_RETRY_S: the next open
        retries), close every thread's connection (the store reopens them when used again);
        the last one to close folds the WAL back into the database file."""
        if self._ready and self.path.exists() and time.monotonic() >= self._read_fold_after:
            self.fold()
        with self._write_lock, self._open_lock:
            opened, self._open, self._ready = list(self._open), weakref.WeakSet(), False
            self._generation += 1
        for connection in opened:
            connection.close()

    def _connect(self) -> SQLiteConnection:
        target, uri = self._target  # see sqlite_open: a snapshot for a reader of a read-only directory
        connection = sqlite3.connect(target, uri=uri, timeout=10.0, isolation_level=None,
                                     factory=SQLiteConnection, check_same_thread=False)
        connection.execute("PRAGMA synchronous=NORMAL")  # per connection; see the module's docstring
        connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file's; an existing one keeps its own
        page = connection.execute("PRAGMA page_size").fetchone()[0]
        connection.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_BYTES // page}")  # per connection: see there
        connection.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        derived.register_functions(connection)
        return connection  # type: ignore[return-value]

    def connection(self) -> Any:
        """This thread's connection (rows as :class:`sqlite3.Row`: by index or by name), every
        stored event folded first (the readers' one way in); any transaction left open is
        rolled back on the way out, so no snapshot outlives the call."""
        return self._use(fold=True)

    @contextmanager
    def _use(self, fold: bool) -> Iterator[SQLiteConnection]:
        if not self._ready:
            self._create()
        connection = self._thread_connection()
        if fold:
            folded, last = connection.execute(_PENDING).fetchone()
            if last > folded and time.monotonic() >= self._read_fold_after:
                with self._write_lock:
                    if not self._fold(connection) and self._fold_failures > 1:  # see FOLD_RETRY_S
                        self._read_fold_after = time.monotonic() + FOLD_RETRY_S
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
            connection.engine = weakref.ref(self)  # type: ignore[attr-defined]
            with self._open_lock:  # not the write lock: a thread's first batch queues during a write
                self._open.add(connection)
                generation = self._generation
            self._local.held = (generation, connection)
        return connection

    def _create(self) -> None:
        """Migrate and make the hooks' tables (one transaction: one process does it, the others
        find it done), then fold what a crash or another process left pending and rebuild
        sessions for another timeout (the fold's transaction). A fold that fails opens the store
        all the same, as one that fails later: logged, its events stored and pending, retried
        by the next read or write. Tables rebuilt or refilled from every event (an upgrade, a
        hook's new version) have the pending events already: their fold is in the first
        transaction, which it fails whole."""
        with self._write_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._target = open_target(self.path, reader=self._reader)
            connection = self._connect()
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                if not self._reader:
                    probe_write(connection)
                with write_transaction(connection):
                    derived.add_cost_column(connection)
                    migrations.apply(connection, "sqlite")
                    keys_current(connection)
                    rebuilt = connection.execute("PRAGMA user_version").fetchone()[0] < derived.VERSION
                    if rebuilt:
                        derived.upgrade_sqlite(connection)
                    refilled = [hook for hook in self._hooks if hook.ensure(connection)]
                    self._sessions_checked = bool(rebuilt or refilled)
                    if self._sessions_checked:
                        with _fold_cache(connection):
                            fold_pending(connection, self._hooks, skip=refilled, rebuilt=rebuilt)
                        derived.ensure_sessions(connection, self._timeout_us)
                if not self._sessions_checked and not self._fold(connection):
                    self._read_fold_after = time.monotonic() + FOLD_RETRY_S  # said once, not again at the first read
            except sqlite3.OperationalError as error:
                if not self._open_read_only(connection, error):
                    raise
            finally:
                connection.close()
            self._ready = True

    def _open_read_only(self, connection: SQLiteConnection, error: sqlite3.OperationalError) -> bool:
        """A reader's database it cannot write, of the current schema: read it as it is, with a
        warning naming what its summary tables lack."""
        if not self._reader or not refused_read_only(error):
            return False
        if (migrations.current(connection) != migrations.latest("sqlite")
                or connection.execute("PRAGMA user_version").fetchone()[0] < derived.VERSION):
            return False  # an older schema to migrate first: the write error says why not
        lacking = _lacking(connection)
        logger.warning("%s is read-only: reading it as it is%s", self.path,
                       f"; {lacking} until a process that can write it opens it" if lacking else "")
        self._read_only = True
        return True

    def fold(self) -> None:
        """Fold every pending event into the derived and hooks' tables and the full-text index now
        (an error is logged, never raised: the events stay pending for the next fold)."""
        with self._use(fold=False) as connection, self._write_lock:
            self._fold(connection, every=True)

    def _fold(self, connection: SQLiteConnection, every: bool = False) -> bool:
        """One fold transaction (under the write lock); whether it succeeded."""
        if self._read_only:
            return False
        try:
            with _fold_cache(connection), write_transaction(connection):
                fold_pending(connection, self._hooks, every=every)
                if not self._sessions_checked:  # the open's fold (or the first to succeed after it)
                    derived.ensure_sessions(connection, self._timeout_us)
        except Exception as error:
            if not self._ready and isinstance(error, sqlite3.OperationalError) and refused_read_only(error):
                raise  # the open's fold, on a file this process cannot write: see _open_read_only
            self._fold_failures += 1
            lacking = _lacking(connection) or "its summary tables lack the events stored meanwhile"
            logger.exception("%s: could not fold its stored events into its summary tables: reading it as it is; "
                             "%s until a fold succeeds (the next read or write retries)", self.path, lacking)
            return False
        self._fold_at, self._read_fold_after, self._fold_failures = FOLD_ROWS, 0.0, 0
        self._sessions_checked = True
        return True

    def insert(self, rows: Sequence[tuple[Any, ...]], with_ids: bool = False) -> int:
        """Store ``rows``; how many were new (the others were already stored). Returns once the
        transaction holding them has committed; they are folded later (module docstring).

        Group commit: batches that arrive while another thread writes wait; the next thread to
        write takes every waiting batch into one transaction (each in a savepoint: a batch that
        fails is rolled back alone, the others go on), so the COMMIT is paid once per group,
        not per batch. Should the shared part fail (the COMMIT), each batch is tried alone, so
        an error stays with the batch that caused it. The group's callers return as soon as it
        commits, while its writer folds (when :data:`FOLD_ROWS` are pending): their senders'
        next batches are parsed meanwhile. ``with_ids``: each row starts with its id, higher
        than any stored (a copy: written alone)."""
        batch = _Batch(rows, with_ids)
        with self._use(fold=False) as connection:
            if not with_ids:
                with self._turn:
                    self._queue.append(batch)
            while True:
                with self._turn:
                    while not batch.done and self._writing:  # another thread writes: wait for its answer
                        self._turn.wait()
                    if batch.done:
                        break
                    self._writing = True
                try:
                    with self._write_lock:
                        with self._turn:  # taken under the write lock: batches queued meanwhile go in too
                            group = [batch] if with_ids else _take(self._queue)  # maybe not ours: loop
                        pending = self._write_group(connection, group)
                finally:
                    with self._turn:
                        self._writing = False
                        self._turn.notify_all()
                if pending >= self._fold_at:
                    with self._write_lock:
                        if not self._fold(connection):
                            self._fold_at = pending + FOLD_ROWS  # failed: not again after each batch
        return batch.result()

    def _write_group(self, connection: SQLiteConnection, group: list[_Batch]) -> int:
        """One transaction for ``group``; every batch in it done (stored or failed) on return;
        how many events are pending after it."""
        try:
            pending = self._transaction(connection, group)
        except BaseException as error:
            if len(group) == 1 or not isinstance(error, Exception) or not any(b.rows_in for b in group):
                for batch in group:
                    batch.finish(error=error)
                if not isinstance(error, Exception):
                    raise
                return 0
            pending = 0
            for batch in group:  # the shared part failed: each alone, the error to its own batch
                batch.stored, batch.error, batch.rows_in = 0, None, False
                try:
                    pending = self._transaction(connection, [batch])
                except Exception as alone:
                    batch.finish(error=alone)
                else:
                    batch.finish()
            return pending
        for batch in group:
            batch.finish()
        return pending

    def _transaction(self, connection: SQLiteConnection, group: list[_Batch]) -> int:
        """The group's events in one transaction; how many events are pending after it."""
        with write_transaction(connection):
            for batch in group:
                if len(group) > 1:
                    connection.execute("SAVEPOINT batch")
                before = connection.total_changes
                try:
                    sql, rows = (INSERT_WITH_ID, batch.rows) if batch.with_ids else sparse_insert(batch.rows)
                    connection.executemany(sql, rows)
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
            folded, last = connection.execute(_PENDING).fetchone()
        return last - folded


def _lacking(connection: SQLiteConnection) -> str:
    """What the summary tables lack (the events after the watermark), for a warning; empty
    when nothing, or when the file cannot say."""
    try:
        folded, last = connection.execute(_PENDING).fetchone()
    except sqlite3.Error:
        return ""
    return (f"its summary tables (sessions, users, stats, analyses, search) lack the last {last - folded} "
            "stored events" if last > folded else "")


def refused_read_only(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused a write because the file (or its directory) is read-only to us."""
    return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY


@contextmanager
def write_transaction(connection: SQLiteConnection) -> Iterator[None]:
    """A write transaction (``BEGIN IMMEDIATE``: SQLite's write lock from the start), committed
    when the block ends, rolled back when it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
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

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        return self.stored


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
