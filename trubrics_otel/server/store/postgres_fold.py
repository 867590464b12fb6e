"""PostgreSQL's deferred fold (:mod:`.postgres`): the pending events into the derived and the
hooks' tables, in bulk, one folder at a time, inside the caller's transaction.

::

    with engine._transaction() as c:
        folded = fold_pending(c, hooks, wait=False)   # None: another folder holds the lock

Why deferred: each batch used to fold its own ~100 events under one advisory lock held until
its COMMIT; every worker's batches then took turns (the lock held 81-87 % of an ingest run, so
a second worker added 7 %), and the fold's ~20 statements ran once per 100 events. Now an
ingest transaction adds its events' ids to ``fold_pending`` (schema ``007``: a row per batch, its
ids an array) and commits; a
fold takes every committed id (``DELETE … RETURNING``, under the lock: no other folder), copies
those events' narrow columns into a TEMP table (:data:`BATCH`, the statements read it through
:meth:`.Dialect.new_rows`, as SQLite's fold does, :mod:`.sqlite_fold`), runs the statements
once over thousands, and commits the tables and the deletion together: an event is folded
exactly once, and a fold rolled back leaves its ids pending. Ids committed while it runs are
not in its snapshot: the next fold takes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from trubrics_otel.server.store import derived
from trubrics_otel.server.store.dialect import POSTGRESQL, Dialect
from trubrics_otel.server.store.rows import COLUMNS

logger = logging.getLogger("trubrics.server")

WRITE_LOCK = 0x7472_7562  # pg_advisory_xact_lock key: the derived-table fold ("trub")
BATCH = "trubrics_fold"
_TTFT = "time_to_first_token"
_CREATE = f"""CREATE TEMP TABLE IF NOT EXISTS {BATCH} (
    id BIGINT NOT NULL, kind TEXT NOT NULL, user_id TEXT NOT NULL, event TEXT NOT NULL, ts_us BIGINT NOT NULL,
    trace_id TEXT, thread_id TEXT, prompt_event_name TEXT, model TEXT, latency DOUBLE PRECISION,
    input_tokens BIGINT, output_tokens BIGINT, error INTEGER, cost_usd DOUBLE PRECISION,
    ttft DOUBLE PRECISION) ON COMMIT DELETE ROWS"""
"""The columns the fold's statements read (``error``: 1 where the event has one, only tested for
NULL; ``ttft``: an LLM turn's time to first token, :mod:`.threads`). A TEMP table: no WAL, no
shared buffers; emptied at COMMIT, and a fold rolled back leaves it empty too."""
_FILL = f"""WITH taken AS (DELETE FROM fold_pending WHERE (SELECT pg_try_advisory_xact_lock(?)) RETURNING ids),
    copied AS (INSERT INTO {BATCH} SELECT e.* FROM taken, unnest(taken.ids) AS queued (id), LATERAL (SELECT id, kind, user_id, event, ts_us,
        trace_id, thread_id, prompt_event_name, model, latency, input_tokens, output_tokens,
        CASE WHEN error IS NULL THEN NULL ELSE 1 END, cost_usd,
        CASE WHEN kind = 'llm' AND thread_id IS NOT NULL AND strpos(properties, '"{_TTFT}"') > 0
             THEN {POSTGRESQL.seconds("properties", _TTFT)} END
        FROM events WHERE events.id = queued.id OFFSET 0) AS e RETURNING id)
    SELECT COUNT(*), MIN(id) FROM copied"""
"""Every pending id committed (and this transaction's own), taken and copied in one statement,
if this transaction holds the fold's lock (taking it if free: evaluated once, at the first row;
a row another folder took since this statement's snapshot is skipped, as deleted); how many,
and the lowest (a hook's ``after_id``: see :func:`fold_pending`). Each event read by its id
(``LATERAL … OFFSET 0``: a nested loop over the primary key whatever the queue's statistics
say; joined, a queue estimated large could have had ``events`` read whole, hashed)."""


class _Folding(Dialect):
    """PostgreSQL while folding: the batch read from :data:`BATCH`; a statement that reads the
    columns the copy lacks (``new_rows(wide=True)``: the feedback's properties) reads those from
    ``events`` by id (as :data:`_FILL` does), the copy's own from the copy: its conditions on
    them (``kind = 'event'``) choose the rows before any is read from ``events`` (the feedback's
    look-up read every LLM event of a fold, ~1.7 µs of PostgreSQL's CPU each, to keep none)."""

    def new_rows(self, alias: str = "", wide: bool = False) -> str:
        if not wide:
            return f"{BATCH} {alias}".strip()
        return (f"(SELECT {_NARROW}, {_WIDE} FROM {BATCH} b, "
                f"LATERAL (SELECT * FROM events WHERE events.id = b.id OFFSET 0) AS e) AS {alias or 'events'}")


_COPIED = ("id", "kind", "user_id", "event", "ts_us", "trace_id", "thread_id", "prompt_event_name", "model",
           "latency", "input_tokens", "output_tokens", "cost_usd")
"""The columns :data:`BATCH` holds as ``events`` stores them (not ``error``: a flag there)."""
_NARROW = ", ".join(f"b.{name}" for name in _COPIED)
_WIDE = ", ".join(f"e.{name}" for name in ("id", *COLUMNS, "words") if name not in _COPIED)


FOLDING = _Folding("postgresql", batch=BATCH)


def sessions(d: Dialect) -> str:
    """The batch's events merged into the sessions they touch (:func:`.derived._merge`, in one
    statement): the sessions within the stored timeout of each user's first and last new event,
    and the new events as instants, ordered by start; a gap over the timeout starts a session.
    A merged session whose start was stored updates that row (its id, a hash of user and start,
    stays), one merged into an earlier one is deleted, a new start inserted. In SQL, under the
    lock: no round trip to this process, whose Python waits for the GIL."""
    return f"""WITH timeout AS (SELECT CAST(value AS BIGINT) AS us FROM meta WHERE key = 'session_timeout_us'),
    points AS (SELECT user_id, ts_us, CASE WHEN kind = 'llm' THEN 1 ELSE 0 END AS llm FROM {d.new_rows()}),
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


_SESSIONS = sessions(FOLDING)


def fold_pending(c: Any, hooks: Sequence[Any], *, wait: bool, skip: Sequence[Any] = (),
                 commit: bool = False) -> int:
    """Fold every pending event committed (and this transaction's) into the derived tables and
    the hooks' (but ``skip``'s: refilled from every event), in the caller's transaction ``c`` (a
    :class:`.postgres.PostgresConnection`), then ``commit`` it; how many (0 also when another
    folder holds the lock and ``wait`` is false: that one, or the next, takes them). ``wait``:
    for the lock (a read: the summaries must hold every acknowledged event). Their statements
    read the batch through ``new_rows()`` (``WHERE id > after_id``, the batch's lowest id less
    one: a hook reading ``events`` itself sees the same rows while one process writes). A hook's
    ``apply_side_by_side`` tables were filled by the ingest transaction itself.

    Three round trips, each a wait for this thread to get the GIL back from the worker's
    request threads while the lock is held: the lock, the table and the batch taken; the
    statements up to the feedback's reads; the rest and the COMMIT."""
    with c.raw.pipeline():
        if wait:
            c.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        c.execute(_CREATE)
        taken, lowest = c.execute(_FILL, (WRITE_LOCK,)).fetchone()
    if taken:
        folding, after = type(c)(c.raw, FOLDING), lowest - 1
        with c.raw.pipeline():
            derived.apply(folding, after, None)
            folding.execute(_SESSIONS)
            for hook in hooks:
                if hook in skip:
                    continue
                if hasattr(hook, "apply_side_by_side"):
                    hook.apply(folding, after, side_by_side=False)
                else:
                    hook.apply(folding, after)
            if commit:
                c.raw.commit()  # in the pipeline: sent with the statements not yet answered
    elif commit:
        c.raw.commit()
    return taken


class Folder:
    """A process's folder thread: :meth:`queued` counts the events the process queued, and
    every ``every`` of them wakes the thread, which runs ``fold`` (after the batches' answers:
    their senders' next batches are parsed meanwhile). A fold that fails leaves its events
    queued (logged): the next takes them."""

    def __init__(self, fold: Callable[[], object], name: str) -> None:
        self._fold, self._name = fold, name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None  # started at the first fold
        self._queued = 0  # since the thread was last woken
        self._stopping = False

    def queued(self, new: int, every: int) -> None:
        with self._lock:
            self._queued += new
            if self._queued < every or self._stopping:
                return
            self._queued = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trubrics-fold", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """End the thread (after its fold under way); a later :meth:`queued` starts another."""
        with self._lock:
            self._stopping, thread, self._thread = True, self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join(30)
        with self._lock:
            self._stopping, self._queued = False, 0
            self._wake.clear()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._fold()
            except Exception:  # noqa: BLE001 - a thread of ours: logged, retried by the next fold
                logger.warning("%s: a fold of the pending events failed; the next fold retries", self._name,
                               exc_info=True)
