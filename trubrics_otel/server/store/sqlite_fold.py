"""SQLite's deferred fold (:mod:`.sqlite`): the pending events into the by-user and by-thread
look-up tables (:data:`KEYS`), the summary tables, the hooks' tables and the full-text index,
inside the caller's write transaction.

::

    with fold_cache(connection), write_transaction(connection):
        fold_pending(connection, hooks)        # the events after the watermark; the watermark moved

Why a copy of the pending events (:data:`BATCH`): the fold's ~20 statements each read them. An
LLM event's row holds its prompt, answer and properties (2-3 KB) before the columns the
statements read (user, model, time, tokens, cost), so each statement walked every wide row
again, through its overflow pages when it had any. The fold copies the columns they read into a
narrow TEMP table once, a few dozen rows per page, and every statement (the derived tables',
the analytics tables', the sessions') reads that instead, through ``Dialect.new_rows``. It is
emptied before the fold commits, and a fold rolled back leaves it empty too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trubrics_otel.server.store import derived, text_index
from trubrics_otel.server.store.dialect import KEYED, SQLITE

PENDING = "SELECT folded_id, (SELECT COALESCE(MAX(id), 0) FROM events) FROM fold_state"
"""The watermark and the last stored id: the events after the first are pending."""

BATCH = "fold_batch"
_TTFT = "time_to_first_token"
_CREATE = f"""CREATE TEMP TABLE IF NOT EXISTS {BATCH} (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT NOT NULL, event TEXT NOT NULL,
    ts_us INTEGER NOT NULL, trace_id TEXT, thread_id TEXT, prompt_event_name TEXT, model TEXT,
    latency REAL, input_tokens INTEGER, output_tokens INTEGER, error INTEGER, cost_usd REAL, ttft REAL)"""
"""``events``' columns the fold's statements read, but ``error``: 1 where the event has one (it is
only tested for NULL), and ``ttft``: an LLM turn's time to first token (:mod:`.threads`). Not the
properties: the feedback among the events is found in ``events`` itself (``new_rows(wide=True)``;
an OpenTelemetry wrapper span's properties hold its input and output, copied for nothing)."""
_FILL = f"""INSERT INTO {BATCH} SELECT id, kind, user_id, event, ts_us, trace_id, thread_id, prompt_event_name,
    model, latency, input_tokens, output_tokens, CASE WHEN error IS NULL THEN NULL ELSE 1 END, cost_usd,
    CASE WHEN kind = 'llm' AND thread_id IS NOT NULL AND instr(properties, '"{_TTFT}"')
         THEN {SQLITE.seconds("properties", _TTFT)} END
    FROM events NOT INDEXED WHERE id > ?"""
"""``instr`` first: most turns lack a time to first token, and parsing their properties to find
none (then the Python function ``trubrics_seconds``) was ~2 µs per LLM event; a key of the
properties (JSON we wrote: never an escaped key) is found as that text."""


def _keys(rows: str) -> tuple[str, ...]:
    """The statements adding ``rows``' events after ``?`` to the look-ups, each in its key's order."""
    return tuple(f"INSERT OR IGNORE INTO {table} SELECT {key}, ts_us, id FROM {rows} WHERE id > ? "
                 f"{'AND thread_id IS NOT NULL ' if key == 'thread_id' else ''}ORDER BY {key}, ts_us, id"
                 for key, table in KEYED.items())


KEYS = _keys(BATCH)
"""The pending events into the by-user and by-thread look-up tables (schema ``009``), first of
the fold's statements (a thread's first and last turn and a feedback's turn are looked up
there), in key order: a fold's events of one user land on that user's pages together. An
ingest transaction wrote a page of each of the two indexes they replace per event, twice per
commit. ``OR IGNORE``: the store's open may have added them already (:func:`keys_current`)."""


def keys_current(connection: Any) -> None:
    """The look-up tables given the pending events now, at the store's open, in its migration's
    transaction: tables rebuilt or refilled from every event there (an upgrade, a hook's new
    version) look turns up by thread before the fold runs."""
    folded, last = connection.execute(PENDING).fetchone()
    for statement in _keys("events NOT INDEXED") if last > folded else ():  # a read-only file: no write
        connection.execute(statement, (folded,))


FOLDING = dataclasses.replace(SQLITE, batch=f"temp.{BATCH}")
"""The dialect of a connection while it folds: the batch's rows read from the copy."""


def fold_pending(connection: Any, hooks: Sequence[Any], skip: Sequence[Any] = (),
                 rebuilt: bool = False, every: bool = False) -> None:
    """Fold the events after the watermark and move it, in the caller's write transaction
    (no other writer adds rows meanwhile: ``id > folded_id`` is the range); ``skip`` the hooks,
    ``rebuilt`` the derived tables (filled already); the text index: its chunk, or ``every``."""
    folded, last = connection.execute(PENDING).fetchone()
    if last > folded:
        connection.execute(_CREATE)
        connection.execute(_FILL, (folded,))
        for statement in KEYS:
            connection.execute(statement, (folded,))
        connection.dialect = FOLDING  # this connection's, until the fold is over
        try:
            if not rebuilt:
                derived.apply(connection, folded, derived.stored_timeout_us(connection))
            for hook in hooks:
                if hook not in skip:
                    hook.apply(connection, folded)
        finally:
            del connection.dialect
        connection.execute(f"DELETE FROM {BATCH}")
        connection.execute("UPDATE fold_state SET folded_id = ?", (last,))
    text_index.catch_up(connection, every)


@contextmanager
def fold_cache(connection: Any) -> Iterator[None]:
    """A page cache of :data:`FOLD_CACHE_KIB` for one fold, the connection's own after it: each of
    the fold's statements writes pages of the summary tables, and the text index reads the pending
    events' prompts (5,000 LLM events are ~12 MB; with the default 2 MB, back from the OS each
    time). The file mapped meanwhile (:data:`FOLD_MMAP_BYTES`): a fold starts with a cold cache,
    and its pages read one ``read()`` each were ~3 µs per LLM event of a fresh store (pages still
    in the WAL are read as before)."""
    size = connection.execute("PRAGMA cache_size").fetchone()[0]
    connection.execute(f"PRAGMA cache_size = -{FOLD_CACHE_KIB}")
    connection.execute(f"PRAGMA mmap_size = {FOLD_MMAP_BYTES}")
    try:
        yield
    finally:
        connection.execute("PRAGMA mmap_size = 0")
        connection.execute(f"PRAGMA cache_size = {int(size)}")


FOLD_CACHE_KIB = 64 * 1024
FOLD_MMAP_BYTES = 1 << 31  # SQLite maps at most its build's limit (2 GB for most): the rest is read
