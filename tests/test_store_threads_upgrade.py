"""A store of the schema before the merged ``threads`` table (SQLite 4, PostgreSQL 3: the
store's thread summary beside the analyses' ``analytics_threads``) opened by this release: its
threads are rebuilt from its events, and every answer about threads (the thread list page by
page, a conversation, conversations, their list, feedback rates) is that of a store that took
the same events in from the start. Real SQLite files and a real PostgreSQL cluster."""

from __future__ import annotations

from analytics_data import generate, rounded  # rounded: floats summed in another order, alike to 6 places
from old_schema import schema_before, sqlite_file_before
from trubrics_otel.server import Store, queries
from trubrics_otel.server.analytics.api import answer
from trubrics_otel.server.store import migrations, postgres
from trubrics_otel.server.store.rows import INSERT, event_row, llm_row

ANALYSES = ({"name": "conversations"}, {"name": "conversation_list", "limit": 1000},
            {"name": "conversation_list", "only": "abandoned"}, {"name": "feedback"},
            {"name": "conversations", "user": "user-003"}, {"name": "conversations", "since": "2026-03-20"})


def rows() -> list[tuple]:
    """The analytics data's events (feedback, costs, errors, times to first token, one of them
    text) as stored rows, in time order (the rows both stores hold, ids alike)."""
    plain, llm = generate(users=40)
    threaded = [e for e in llm if "$thread_id" in e["properties"]]
    threaded[0]["properties"]["time_to_first_token"] = "fast"  # no seconds: the upgrade leaves it out
    made = [event_row(e, 0) for e in plain] + [llm_row(e, 0) for e in llm]
    return sorted(made, key=lambda r: r[3])


def answers(store: Store) -> dict:
    found: dict = {"pages": []}
    with store.connection() as c:
        before = None
        while True:  # the thread list, 7 at a time, by its cursor
            page = queries.thread_list(c, limit=7, before=before)
            found["pages"].append(page["threads"])
            before = page["next"]
            if before is None:
                break
        sessions = store.sessions_lookup(c)
        ids = [t["thread_id"] for page in found["pages"] for t in page]
        found["detail"] = [queries.thread_detail(c, t, sessions=sessions) for t in ids[::9]]
        found["user"] = queries.thread_list(c, user="user-007", limit=None)["threads"]
    for p in ANALYSES:
        found[repr(p)] = answer(store, p["name"], p)
    return rounded(found)


def fresh(path, made: list[tuple]) -> dict:
    store = Store(path)
    store.engine.insert(made)
    try:
        return answers(store)
    finally:
        store.close()


OLD_ANALYTICS_THREADS = """CREATE TABLE IF NOT EXISTS analytics_threads (
    thread_id TEXT PRIMARY KEY, user_id TEXT, model TEXT, turns INTEGER NOT NULL,
    start_us BIGINT NOT NULL, end_us BIGINT NOT NULL, first_us BIGINT NOT NULL,
    first_id BIGINT NOT NULL, last_us BIGINT NOT NULL, last_id BIGINT NOT NULL,
    last_error INTEGER NOT NULL, errors INTEGER NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
    cost_turns INTEGER NOT NULL, ttft_s DOUBLE PRECISION NOT NULL, ttft_turns INTEGER NOT NULL)"""
"""The analyses' thread table the release before made (its hook's, not the store's schema)."""


MERGED = {"sqlite": 5, "postgresql": 4}
"""Each engine's schema version that merged the threads tables."""


def test_a_sqlite_store_from_before_the_merged_threads_answers_as_before(tmp_path):
    """Its events up to the fold's watermark are in its rebuilt threads, the others folded after."""
    made = rows()
    path = tmp_path / "old.sqlite3"
    with sqlite_file_before(path, MERGED["sqlite"]) as old:  # the schema the release before made
        old.execute(OLD_ANALYTICS_THREADS)
        old.executemany(INSERT, made)
        old.execute("UPDATE fold_state SET folded_id = ?", (len(made) - 300,))  # the last 300 not folded yet
        assert {"analytics_threads", "threads"} <= {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
    store = Store(path)
    try:
        with store.connection() as c:
            assert migrations.current(c) == migrations.latest("sqlite")
            assert c.rows("SELECT name FROM sqlite_master WHERE name = 'analytics_threads'") == []
        assert answers(store) == fresh(tmp_path / "fresh.sqlite3", made)
    finally:
        store.close()


def test_a_postgresql_store_from_before_the_merged_threads_answers_as_before(tmp_path, postgres_cluster,
                                                                           monkeypatch):
    made = rows()
    url = postgres_cluster.create_database()  # empty: not the template
    with monkeypatch.context() as m:
        schema_before(m, MERGED["postgresql"])
        old = Store(url)
        with old.connection() as c:  # the rows as stored, unfolded: the upgrade builds the threads
            c.raw.execute(postgres._unnest_insert(postgres.COLUMNS), postgres._columns(made, with_ids=False)[:-1])
            c.execute("DELETE FROM analytics_meta")  # the analyses' tables and sessions: rebuilt on opening
            c.execute("DELETE FROM meta WHERE key = 'session_timeout_us'")
            c.execute(OLD_ANALYTICS_THREADS)
            assert c.rows("SELECT COUNT(*) FROM analytics_threads") == [(0,)]
        old.close()
    store = Store(url)
    try:
        with store.connection() as c:
            assert c.rows("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'analytics_threads'") == [(0,)]
        assert answers(store) == fresh(tmp_path / "fresh.sqlite3", made)
    finally:
        store.close()
