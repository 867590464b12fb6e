"""What storing events costs PostgreSQL: long LLM events' text compressed with lz4 (schema 8), in
a new store and in one upgraded in place, old and new events read and found alike; a process's
batches in PostgreSQL at once bounded (:data:`.postgres.INSERTS`).

With pglz, PostgreSQL's default, an LLM event with ~5 KB of context cost PostgreSQL 191-212 µs of
CPU to store, with lz4 120-156 (benchmarks/bench_postgres_store.py --modes long). Skipped without
PostgreSQL binaries or psycopg.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import threading
import time

import pytest

from old_schema import schema_before

from trubrics_otel.server import queries
from trubrics_otel.server.store import Store, postgres
from trubrics_otel.server.store.errors import StoreUnavailable

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
VOCABULARY = [f"{a}{b}{c}" for a in ("re", "de", "con", "pro", "in") for b in "aeiou" for c in ("nd", "st", "rm", "lt")]


def _long(n: int) -> dict:
    """An LLM event of ~12 KB of text that compresses as prose does (not a repeated sentence)."""
    rng = random.Random(n)
    text = " ".join(rng.choice(VOCABULARY) for _ in range(1000))
    return {"user_id": "u", "prompt": f"question {n}: {text}", "generation": f"answer {n}: {text[::-1]}",
            "timestamp": (T0 + dt.timedelta(minutes=n)).isoformat(), "properties": {"context": text}}


def _compression(store: Store) -> list[tuple[str, str, str]]:
    """Each event's method for its prompt, generation and properties (its words, a few distinct
    ones, stay short)."""
    with store.connection() as c:
        return c.rows("SELECT pg_column_compression(prompt), pg_column_compression(generation), "
                      "pg_column_compression(properties) FROM events ORDER BY id")


def test_long_llm_events_are_compressed_with_lz4_and_an_older_store_upgrades_in_place(postgres_cluster, monkeypatch):
    url = postgres_cluster.create_database()  # empty: not the template
    with monkeypatch.context() as before:
        schema_before(before, 8)
        old = Store(url)
        old.insert((), [_long(1)])
        assert _compression(old) == [("pglz",) * 3]
        old.close()
    store = Store(url)
    try:
        store.insert((), [_long(2)])
        assert _compression(store) == [("pglz",) * 3, ("lz4",) * 3]  # stored rows keep theirs
        with store.connection() as c:
            page = queries.event_page(c, queries.EventFilter(), sessions=store.sessions_lookup(c), limit=10)
            assert [(e["prompt"], e["generation"]) for e in page["events"]] == [
                (_long(n)["prompt"], _long(n)["generation"]) for n in (2, 1)]
            found = queries.event_page(c, queries.EventFilter(q="question"), sessions=store.sessions_lookup(c), limit=10)
            assert len(found["events"]) == 2
    finally:
        store.close()
    new = Store(postgres_cluster.create_database(template=True))
    try:
        new.insert((), [_long(3)])
        assert _compression(new) == [("lz4",) * 3]
    finally:
        new.close()


class _InTransaction:
    """A hook noting how many batches are inside their insert's transaction at once (each
    stays there 0.2 s)."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def ensure(self, connection) -> bool:
        return False

    def apply_side_by_side(self, connection, after_id: int) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.2)
        with self._lock:
            self.now -= 1

    def apply(self, connection, after_id: int, side_by_side: bool = True) -> None:
        pass


def test_a_process_has_at_most_a_few_batches_in_postgresql_at_once_and_stores_them_all(postgres_cluster):
    """Eight request threads' batches at once (serve's pool lends eight connections): three are
    in PostgreSQL at a time, the others wait their turn (PostgreSQL's CPU per LLM event grew with
    concurrent inserts: ~56 µs alone, ~69 with eight); every batch is stored."""
    hook = _InTransaction()
    store = Store(postgres_cluster.create_database(template=True), hooks=[hook])
    try:
        with contextlib.ExitStack() as held:  # the pool's eight connections open, as under load
            for _ in range(8):
                held.enter_context(store.connection())
        batches = [[{"user_id": f"u{k}", "event": "Open", "timestamp": T0.isoformat(), "properties": {}}] * 5
                   for k in range(8)]
        writers = [threading.Thread(target=store.insert, args=(batch,)) for batch in batches]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert hook.most == postgres.INSERTS == 3
        assert store.count()["events"] == 40
    finally:
        store.close()



class _Held(_InTransaction):
    """A hook keeping each batch inside its transaction until ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def apply_side_by_side(self, connection, after_id: int) -> None:
        with self._lock:
            self.now += 1
        self.go.wait(30)


def test_a_batch_waiting_behind_inserts_that_hang_is_answered_unavailable_not_kept_waiting(postgres_cluster):
    """Three batches stuck in PostgreSQL (a database that hangs): a fourth waits as long as it
    would for a pooled connection (2 s), then is refused as unavailable (the server's 503, which
    clients retry), not held forever; once the three go on, they are stored."""
    hook = _Held()
    store = Store(postgres_cluster.create_database(template=True), hooks=[hook])
    try:
        with contextlib.ExitStack() as held:  # the pool's connections open: none is waited for
            for _ in range(8):
                held.enter_context(store.connection())
        stuck = [threading.Thread(target=store.insert, args=([{"user_id": f"u{k}", "event": "Open",
                                                                "timestamp": T0.isoformat(), "properties": {}}],))
                 for k in range(postgres.INSERTS)]
        for writer in stuck:
            writer.start()
        deadline = time.monotonic() + 20
        while hook.now < postgres.INSERTS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hook.now == postgres.INSERTS
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="inserting for over 2 s"):
            store.insert([{"user_id": "late", "event": "Open", "timestamp": T0.isoformat(), "properties": {}}])
        assert 1.5 < time.monotonic() - started < 15
        hook.go.set()
        for writer in stuck:
            writer.join(30)
        assert store.count()["events"] == postgres.INSERTS
    finally:
        hook.go.set()
        store.close()
