"""SQLite's page size (issue 30): a new store is made of 16 KB pages (an LLM event's 2-3 KB row
no longer fills a 4 KB page alone, so a batch writes fewer WAL frames); a store made before, in
4 KB pages, keeps them and works as it did; either checkpoints after the same bytes of WAL.
"""

from __future__ import annotations

import sqlite3

from old_schema import sqlite_file_before

from trubrics_otel.server import queries
from trubrics_otel.server.store import Store
from trubrics_otel.server.store import sqlite as engine
from trubrics_otel.server.store.rows import INSERT, llm_row


def _llm(i: int) -> dict:
    text = f"refund order number {i} " + "words of a prompt " * 100  # ~1.8 KB each
    return {"user_id": f"user-{i % 3}", "prompt": text, "generation": f"answer {i}", "thread_id": f"t{i % 5}",
            "properties": {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}


def _file_pages(path) -> tuple[int, int]:
    """The file's page size, and the WAL pages after which a store's connection checkpoints."""
    with sqlite3.connect(path) as connection:
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return size, engine.CHECKPOINT_BYTES // size


def _checkpoint_pages(store: Store) -> int:
    with store.connection() as c:
        return c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def _searched(store: Store, words: str) -> list[str]:
    with store.connection() as c:
        page = queries.event_page(c, queries.EventFilter(q=words), sessions=store.sessions_lookup(c), limit=None)
    return sorted(e["prompt"].split()[3] for e in page["events"])


def test_a_new_store_is_made_of_16_kb_pages(tmp_path):
    path = tmp_path / "events.sqlite3"
    store = Store(path)
    assert store.insert((), [_llm(i) for i in range(100)]) == (100, 0)
    assert _file_pages(path) == (16_384, engine.CHECKPOINT_BYTES // 16_384)
    assert _checkpoint_pages(store) == engine.CHECKPOINT_BYTES // 16_384  # ~40 MB of WAL, as before
    assert _searched(store, "refund order number 42") == ["42"]
    store.close()


def test_a_store_made_in_4_kb_pages_keeps_them_and_works(tmp_path):
    """A file of an older release (its own page size, SQLite's default then), with events
    stored and pending: opened, upgraded, written, retried into and searched as before."""
    path = tmp_path / "events.sqlite3"
    with sqlite_file_before(path, 9) as old:
        assert old.execute("PRAGMA page_size").fetchone()[0] == 4_096
        old.executemany(INSERT, [llm_row(_llm(i), 0) for i in range(60)])  # stored, not folded yet
    store = Store(path)
    try:
        assert store.insert((), [_llm(i) for i in range(40, 120)]) == (60, 20)  # 40-59: retries, stored once
        assert _checkpoint_pages(store) == engine.CHECKPOINT_BYTES // 4_096  # the same bytes of WAL
        assert store.count()["llm_events"] == 120
        assert _searched(store, "refund order number 55") == ["55"]
        assert _searched(store, "refund order number 101") == ["101"]
        assert [e["generation"] for e in store.thread("t2")][:3] == ["answer 2", "answer 7", "answer 12"]
    finally:
        store.close()
    assert _file_pages(path)[0] == 4_096  # kept: never rewritten at open
    again = Store(path)
    assert again.count()["llm_events"] == 120
    again.close()
