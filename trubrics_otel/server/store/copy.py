"""Copy one store into another (``trubrics-otel migrate``): every event in id order, the derived
tables folded on the way, resumable, verified.

::

    source = Store("sqlite:///events.sqlite3")
    target = Store("postgresql://trubrics@db/trubrics", session_timeout_s=source_timeout_s(source))
    copied = copy_events(source, target, chunk=5000, progress=print)
    problems = [row for row in verify(source, target) if row[1] != row[2]]

Each chunk is one transaction of the target: its events keep their source ids; the target's
sessions, users, threads, rollups and search index take them in as ingestion does
(:mod:`.derived`: a PostgreSQL target folds each chunk before the next goes in, SQLite once
5,000 are pending), so they equal the source's. Interrupted, the next run resumes after the
highest id the target holds (:func:`resume_point`); a target holding anything else (events
of its own, another store's, or received since) is refused before anything is written: each
event up to that id must be the source's (:func:`resume_point`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trubrics_otel.server.store import derived
from trubrics_otel.server.store.errors import StoreError
from trubrics_otel.server.store.rows import COLUMNS

CHECKS = (
    ("events", "SELECT COUNT(*) FROM events WHERE kind = 'event'"),
    ("LLM events", "SELECT COUNT(*) FROM events WHERE kind = 'llm'"),
    ("events with feedback for a thread", "SELECT COUNT(*) FROM events WHERE kind = 'event' AND thread_id IS NOT NULL"),
    ("highest id", "SELECT COALESCE(MAX(id), 0) FROM events"),
    ("users", "SELECT COUNT(*) FROM users"),
    ("sessions", "SELECT COUNT(*) FROM sessions"),
    ("threads", "SELECT COUNT(*) FROM threads"),
    ("hourly event count", "SELECT COALESCE(SUM(events), 0) FROM hourly"),
    ("per-user hourly rows", "SELECT COUNT(*) FROM rollup"),
    ("latency histogram count", "SELECT COALESCE(SUM(n), 0) FROM latency_hist"),
    ("input tokens", "SELECT COALESCE(SUM(input_tokens), 0) FROM users"),
)


def source_timeout_s(source: Any) -> float | None:
    """The session timeout the source's ``sessions`` table was built for (the target keeps it)."""
    with source.connection() as c:
        timeout_us = derived.stored_timeout_us(c)
    return None if timeout_us is None else timeout_us / 1e6


def copy_events(source: Any, target: Any, *, chunk: int = 5000,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Copy the events the target lacks, ``chunk`` per transaction; how many were copied.
    ``progress(copied_so_far, last_id)`` after each chunk."""
    resume_after, held = resume_point(source, target)
    copied, analysed = 0, held
    for rows in _chunks(source, resume_after, chunk):
        copied += target.engine.insert(rows, with_ids=True)
        if held + copied >= 2 * analysed:  # the table doubled since its statistics were gathered
            _analyse(target, "events")
            analysed = held + copied
        if progress is not None:
            progress(copied, rows[-1][0])
    if copied:
        _analyse(target)
    return copied


def _analyse(target: Any, table: str = "") -> None:
    """PostgreSQL: planner statistics for the tables being filled, now, not when autovacuum comes
    round to them. Without, the feedback's turn look-up (``thread_id = ? AND kind = 'llm'``)
    read the whole partial index of LLM events besides its thread's few rows: ~0.7 ms a look-up
    at 100,000 events, growing with the table, a quarter of a copy's PostgreSQL time."""
    if target.engine.name == "postgresql":
        with target.connection() as t:
            t.execute(f"ANALYZE {table}")


def resume_point(source: Any, target: Any) -> tuple[int, int]:
    """The id a copy resumes after (0 for an empty target, else the target's highest) and how
    many events the target holds, provided it holds exactly the source's events up to that id:
    the same count, the same user and time at every id (:func:`_fingerprint`), and the same
    first and last events, every identifying column. Counts and two rows were not enough: a
    target holding other events under the same ids (another store's copy, a serve run on it)
    passed when those two matched, and the copy merged into it."""
    with target.connection() as t:
        held, resume_after = t.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events").fetchone()
    if not held:
        return 0, 0
    mine, theirs = _fingerprint(target, resume_after), _fingerprint(source, resume_after)
    if mine != theirs:
        raise StoreError(f"the target holds {held} events that are not the source's first {theirs[0]} "
                         f"(ids up to {resume_after}): copy into a new database")
    return int(resume_after), int(held)


_USER_TIMES = "SELECT id, user_id, ts_us FROM events WHERE +id <= ?"
"""Every event's id, user and time. ``+id``: not a range of the table (in SQLite its rows hold
the prompts, ~10x the bytes to read), so SQLite reads its (user_id, ts_us, id) index alone:
~2 µs per event on a busy two-core machine, ~2 s per million events and store."""
_IDENTITY = ("SELECT id, kind, user_id, event, ts_us, received_us, trace_id, span_id FROM events "
             "WHERE id = (SELECT MIN(id) FROM events) OR id = ? ORDER BY id")


def _fingerprint(store: Any, last_id: int) -> tuple[int, int, list[tuple[Any, ...]]]:
    """How many events ``store`` holds up to ``last_id``, the sum of their (id, user, time)
    hashes (in any order: each engine reads them the cheapest way; Python's ``hash`` is salted
    per process, so only this process compares them, where both stores are read), and the
    first and last events' identifying columns."""
    count = total = 0
    with store.connection() as c:
        for row in c.execute(_USER_TIMES, (last_id,)):
            total += hash(tuple(row))
            count += 1
        ends = [tuple(row) for row in c.execute(_IDENTITY, (last_id,)).fetchall()]
    return count, total, ends


def _chunks(source: Any, after_id: int, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """The source's events after ``after_id`` in id order, ``chunk`` rows at a time. The next
    chunk is read by a thread while the caller writes this one: the source's reads (~40 µs
    of CPU per event) overlap the target's transaction instead of waiting for it."""
    select = f"SELECT id, {', '.join(COLUMNS)} FROM events WHERE id > ? ORDER BY id LIMIT ?"

    def read(last_id: int) -> list[tuple[Any, ...]]:
        with source.connection() as s:
            return [tuple(row) for row in s.execute(select, (last_id, chunk)).fetchall()]

    with ThreadPoolExecutor(1, thread_name_prefix="trubrics-migrate") as reader:
        rows = read(after_id)
        while rows:
            following = reader.submit(read, rows[-1][0])
            yield rows
            rows = following.result()


def verify(source: Any, target: Any) -> list[tuple[str, Any, Any]]:
    """(what, source's count, target's count) for every check; equal when the copy is whole."""
    with source.connection() as s, target.connection() as t:
        return [(name, _number(s.execute(sql).fetchone()[0]), _number(t.execute(sql).fetchone()[0]))
                for name, sql in CHECKS]


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value
