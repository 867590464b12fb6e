"""The ``threads`` table: one row per conversation thread, folded in by one statement.

::

    connection.execute(threads.fold(dialect), (after_id,) * threads.fold(dialect).count("?"))
    # (derived.apply runs it with the other derived tables' statements)

A thread is the LLM turns sharing a thread id. Its row holds what the thread list (``threads``,
``/api/threads``) and the analyses (conversations, feedback) read, so neither groups the
events: the turns, errors, tokens, cost (``cost_usd`` summed over the ``cost_turns`` turns
that had one; none: ``cost_turns`` 0), time to first token (``ttft_s`` over ``ttft_turns``);
the first turn (``start_us``, ``first_id``, its ``user_id`` and ``model``: the thread's, and
its prompt the title); the last turn (``last_us``, ``last_id``, ``last_error``: the list's
order, and whether the thread was abandoned on an error); ``end_us``, the end of its latest
turn (time plus latency: the duration's end). First and last are by time, then id, so a late
turn lands where it belongs.

Why one table, one statement: the page's summary and the analyses' table held the same
threads twice, folded by three statements, ~10 µs of SQLite CPU per LLM event (this one: ~4.5;
~2.3 reading the fold's narrow copy of the turns, :mod:`.sqlite_fold`, most of it the grouping).
It assigns the first turn's columns by comparison, as it does the last turn's, so SQLite
rewrites their index entries (``threads_start``, ``threads_user``) for each folded thread,
even unchanged; leaving them unassigned takes a second statement for the threads an earlier
turn reached, which costs about what the rewrites do (measured on the narrow copy: ~1 µs per
LLM event less into a 100,000-event store, ~1 more into a fresh one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from trubrics_otel.server.store.dialect import Dialect

COLUMNS = ("thread_id", "user_id", "model", "turns", "start_us", "first_id", "last_us", "last_id", "end_us",
           "last_error", "errors", "input_tokens", "output_tokens", "cost_usd", "cost_turns", "ttft_s",
           "ttft_turns")
"""The table's columns in order (schema ``005_threads_merge`` / PostgreSQL ``004``)."""

_T = "threads"
_EARLIER = f"(excluded.start_us < {_T}.start_us OR (excluded.start_us = {_T}.start_us AND excluded.first_id < {_T}.first_id))"
_LATER = f"(excluded.last_us > {_T}.last_us OR (excluded.last_us = {_T}.last_us AND excluded.last_id > {_T}.last_id))"


def _add(column: str) -> str:
    """NULL-preserving sum (tokens): NULL only while no turn reported any."""
    a, b = f"{_T}.{column}", f"excluded.{column}"
    return f"{column} = COALESCE({a} + {b}, {a}, {b})"


def _when(condition: str, column: str) -> str:
    return f"{column} = CASE WHEN {condition} THEN excluded.{column} ELSE {_T}.{column} END"


def _batch(d: Dialect) -> str:
    """The batch's turns per thread, in :data:`COLUMNS` order. PostgreSQL (its fold's copy of
    the pending turns, :mod:`.postgres_fold`): first and last turn ranked by two windows over
    the batch. SQLite (a fold of thousands of turns): one grouping, then :func:`_sqlite_end`."""
    ttft = "ttft" if d.batch else d.seconds("properties", "time_to_first_token")  # the fold's copy has it
    end = "ts_us + CAST(ROUND(COALESCE(latency, 0) * 1000000) AS BIGINT)"
    failed = "CASE WHEN error IS NULL THEN 0 ELSE 1 END"
    turns = f"{d.new_rows()} WHERE id > ? AND kind = 'llm' AND thread_id IS NOT NULL"
    if d.name == "sqlite":
        rows = d.batch or "events"
        by_thread = d.keyed("thread_id", rows=rows)
        first, last = _sqlite_end("start_us", "min_id", "ASC", by_thread), _sqlite_end("last_us", "max_id", "DESC", by_thread)
        return f"""SELECT g.thread_id, {first('user_id')}, {first('model')}, g.turns, g.start_us, {first('id')},
               g.last_us, {last('id')}, g.end_us, CASE WHEN {last('error')} IS NULL THEN 0 ELSE 1 END, g.errors,
               g.input_tokens, g.output_tokens, g.cost_usd, g.cost_turns, g.ttft_s, g.ttft_turns
        FROM (SELECT thread_id, COUNT(*) AS turns, MIN(ts_us) AS start_us, MAX(ts_us) AS last_us,
                     MIN(id) AS min_id, MAX(id) AS max_id, MAX({end}) AS end_us, SUM({failed}) AS errors,
                     SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                     COALESCE(SUM(cost_usd), 0) AS cost_usd, COUNT(cost_usd) AS cost_turns,
                     COALESCE(SUM({ttft}), 0) AS ttft_s, COUNT({ttft}) AS ttft_turns
              FROM {turns} GROUP BY thread_id) AS g
        JOIN {rows} min_id ON min_id.id = g.min_id JOIN {rows} max_id ON max_id.id = g.max_id
        WHERE true"""

    def first(column: str) -> str:
        return f"MAX(CASE WHEN rf = 1 THEN {column} END)"

    def last(column: str) -> str:
        return f"MAX(CASE WHEN rl = 1 THEN {column} END)"
    return f"""SELECT thread_id, {first('user_id')}, {first('model')}, COUNT(*), MIN(ts_us), {first('id')},
               MAX(ts_us), {last('id')}, MAX(end_us), {last('failed')}, SUM(failed), SUM(input_tokens),
               SUM(output_tokens), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), COALESCE(SUM(ttft), 0), COUNT(ttft)
        FROM (SELECT thread_id, id, ts_us, user_id, model, input_tokens, output_tokens, cost_usd, {ttft} AS ttft,
                     {end} AS end_us, {failed} AS failed,
                     ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us, id) AS rf,
                     ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us DESC, id DESC) AS rl
              FROM {turns}) AS b
        WHERE true GROUP BY thread_id"""


def _sqlite_end(at: str, extreme: str, order: str, by_thread: tuple[str, str]) -> Callable[[str], str]:
    """A column of each batch thread ``g``'s first (``at`` its earliest time ``start_us``,
    ``extreme`` its lowest id ``min_id``) or last turn (``last_us``, ``max_id``), by time then id:
    the ``extreme`` id's row (joined as ``extreme``) when it has that time (turns arrive in time
    order), else the ``extreme`` id at that time, a seek in the thread's look-up table (filled
    first in the fold, :mod:`.sqlite_fold`; ``by_thread``: :meth:`.Dialect.keyed`'s), its row
    read from the fold's copy of its batch. A
    grouping that found them exactly (each thread's times first, then the ids at them, joined
    back) cost ~1 µs more per LLM event, window functions twice that (a sort of every turn per
    ranking)."""
    source, k = by_thread

    def column(name: str) -> str:
        return (f"CASE WHEN {extreme}.ts_us = g.{at} THEN {extreme}.{name} "
                f"ELSE (SELECT e.{name} FROM {source} "
                f"WHERE {k}.thread_id = g.thread_id AND {k}.ts_us = g.{at} AND {k}.id > ? AND e.kind = 'llm' "
                f"ORDER BY {k}.id {order} LIMIT 1) END")
    return column


@functools.lru_cache(maxsize=None)
def fold(d: Dialect) -> str:
    """The statement folding the LLM turns with ``id > ?`` (each ``?`` that bound) into their
    threads: sums add; the first and the last turn win by comparison."""
    return f"""INSERT INTO {_T} ({', '.join(COLUMNS)})
        {_batch(d)}
        ON CONFLICT (thread_id) DO UPDATE SET
            {_when(_EARLIER, 'user_id')}, {_when(_EARLIER, 'model')}, {_when(_EARLIER, 'first_id')},
            start_us = {d.least(f'{_T}.start_us', 'excluded.start_us')},
            {_when(_LATER, 'last_id')}, {_when(_LATER, 'last_error')},
            last_us = {d.greatest(f'{_T}.last_us', 'excluded.last_us')},
            end_us = {d.greatest(f'{_T}.end_us', 'excluded.end_us')},
            turns = {_T}.turns + excluded.turns, errors = {_T}.errors + excluded.errors,
            {_add('input_tokens')}, {_add('output_tokens')},
            cost_usd = {_T}.cost_usd + excluded.cost_usd, cost_turns = {_T}.cost_turns + excluded.cost_turns,
            ttft_s = {_T}.ttft_s + excluded.ttft_s, ttft_turns = {_T}.ttft_turns + excluded.ttft_turns"""
