"""SQLite's full-text index (``events_fts``: FTS5, contentless, no positions (``detail=none``),
over the LLM events' prompts and generations), kept behind the events by a watermark of its
own, ``fold_state.indexed_id``.

::

    text_index.catch_up(connection)              # in a write transaction: once CHUNK events wait
    text_index.catch_up(connection, every=True)  # all of them (before a search, on close)
    text_index.lagging(connection)               # events stored and not yet indexed

Why apart from the summary tables' fold (:mod:`.derived`): FTS5's CPU per indexed event falls
with the chunk (prompts of a natural vocabulary: ~1.4x per event in chunks of 1,000 as in
chunks of 5,000, flat from there), and a read folds the summary tables in whatever chunk is
pending, a few hundred events when the page polls during an intake. The index therefore takes
its events in chunks of :data:`CHUNK` (in the writer's fold, :mod:`.sqlite`), and whole before
anything reads it: a search (:meth:`.dialect.Dialect.text_index_current`), the store's close.
"""

from __future__ import annotations

from typing import Any

CHUNK = 5_000
"""Events (of any kind) pending before a fold indexes them; as many as the writer folds at once."""

_PENDING = "SELECT indexed_id, (SELECT COALESCE(MAX(id), 0) FROM events) FROM fold_state"
_INSERT = """INSERT INTO events_fts (rowid, prompt, generation)
       SELECT id, prompt, generation FROM events NOT INDEXED WHERE id > ? AND id <= ? AND kind = 'llm'"""


def lagging(connection: Any) -> int:
    """How many stored events (of any kind) the index has not taken in yet."""
    indexed, last = connection.execute(_PENDING).fetchone()
    return max(0, last - indexed)


def catch_up(connection: Any, every: bool = False) -> None:
    """Index the events after the watermark and move it (inside the caller's write
    transaction), when :data:`CHUNK` of them wait or ``every``."""
    indexed, last = connection.execute(_PENDING).fetchone()
    if last > indexed and (every or last - indexed >= CHUNK):
        connection.execute(_INSERT, (indexed, last))
        connection.execute("UPDATE fold_state SET indexed_id = ?", (last,))
