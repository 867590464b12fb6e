"""How PostgreSQL stores long LLM events: their text compressed with lz4 (schema 8), in a new
store and in one upgraded in place, old and new events read and found alike.

With pglz, PostgreSQL's default, an LLM event with ~5 KB of context cost PostgreSQL 191-212 µs of
CPU to store, with lz4 120-156 (benchmarks/bench_postgres_store.py --modes long). Skipped without
PostgreSQL binaries or psycopg.
"""

from __future__ import annotations

import datetime as dt
import random

from old_schema import schema_before

from trubrics_otel.server import queries
from trubrics_otel.server.store import Store

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
