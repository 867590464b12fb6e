"""SQLite's by-user and by-thread look-up tables (kept by its deferred fold, schema 009) against
the events themselves: every read by user or by thread answers what it answers from ``events``.

A store is built through folds of random sizes from shuffled, retried batches (late events with
older times, duplicates, threads shared by users, events without a thread); each read then runs
twice on it, through the look-ups and as the SQL read ``events`` before them (``Dialect.keyed``
answering ``events`` itself, as on PostgreSQL), and the events by user and by thread are checked
against a plain filter of the stored rows. The fold's own look-ups (a feedback's turn, a
thread's first and last turn) are checked against a store built the same way without them.
"""

from __future__ import annotations

import random
import sqlite3

import pytest
from analytics_data import generate, rounded
from old_schema import sqlite_file_before

from trubrics_otel.server import Store, queries
from trubrics_otel.server.analytics.api import answer
from trubrics_otel.server.stats import StatsQuery, stats
from trubrics_otel.server.store.dialect import Dialect

USERS = 14
SINCE, SINCE_US = "2026-03-20", 1_773_964_800_000_000


def batches(seed: int) -> list[tuple[list[dict], list[dict]]]:
    """The analytics data's events, some moved to another user's thread or out of their thread,
    shuffled into batches of 1-60 that overlap (a retry sends some again)."""
    rng = random.Random(seed)
    plain, llm = generate(seed=seed, users=USERS)
    threads = sorted({e["properties"]["$thread_id"] for e in llm})
    for e in rng.sample(llm, len(llm) // 6):  # a thread shared by users
        e["properties"]["$thread_id"] = rng.choice(threads)
    for e in rng.sample(plain, len(plain) // 4):  # feedback and events in a thread, or in none
        e["properties"].pop("$thread_id", None) if rng.random() < 0.5 else e["properties"].update(
            {"$thread_id": rng.choice(threads)})
    items = [("e", e) for e in plain] + [("l", e) for e in llm]
    rng.shuffle(items)  # late events: older times after newer ones, in the same and later folds
    found, start = [], 0
    while start < len(items):
        size = rng.choice((1, 3, 10, 25, 60))
        batch = items[start:start + size] + items[max(0, start - rng.randrange(4)):start]  # retries
        found.append(([e for k, e in batch if k == "e"], [e for k, e in batch if k == "l"]))
        start += size
    return found


def build(path, seed: int) -> Store:
    """A store fed the batches, folded after a random number of them (a read folds first)."""
    rng = random.Random(seed + 1)
    store = Store(path)
    for plain, llm in batches(seed):
        store.insert(plain, llm)
        if rng.random() < 0.3:
            store.count()
    with store.connection() as c:  # topics as a fit would set them: a conversation filter by topic
        c.execute("UPDATE analytics_prompts SET topic = event_id % 3")
    return store


@pytest.fixture
def from_events(monkeypatch):
    """Within it, reads find one user's or thread's events in ``events`` (the SQL before the
    look-ups, PostgreSQL's)."""
    def patched():
        monkeypatch.setattr(Dialect, "keyed", lambda self, key, alias="e": (f"events {alias}", alias))
        monkeypatch.setattr(Dialect, "key_table", lambda self, key: "events")
    return patched


def reads(store: Store) -> dict:
    """Every read by user or by thread, with the lists that read them row by row."""
    found: dict = {}
    with store.connection() as c:
        users = [u for (u,) in c.execute("SELECT DISTINCT user_id FROM events ORDER BY 1")]
        threads = [t for (t,) in c.execute("SELECT DISTINCT thread_id FROM events WHERE thread_id IS NOT NULL "
                                           "ORDER BY 1")]
        times = sorted(t for (t,) in c.execute("SELECT ts_us FROM events"))
        middle = times[len(times) // 2]
        for timeout in (None, 600.0):  # the sessions table, and sessions computed for another timeout
            sessions = store.sessions_lookup(c, timeout)
            for user in users:
                found[user, timeout] = pages(c, queries.EventFilter(user=user), sessions)
                found[user, timeout, "since"] = pages(c, queries.EventFilter(user=user, since_us=middle), sessions)
                found[user, timeout, "llm"] = pages(c, queries.EventFilter(user=user, kind="llm",
                                                                           until_us=middle), sessions)
            for thread in threads:
                found[thread, timeout] = pages(c, queries.EventFilter(thread=thread), sessions, newest_first=False)
                found[thread, timeout, "detail"] = queries.thread_detail(c, thread, sessions=sessions)
            found["both", timeout] = pages(c, queries.EventFilter(user=users[1], thread=threads[2]), sessions)
        sessions = store.sessions_lookup(c)
        for session in queries.session_list(c, limit=None)["sessions"][::5]:
            found[session["session_id"]] = pages(c, queries.EventFilter(session=session["session_id"]), sessions)
        found["sessions"] = queries.session_list(c, limit=None)["sessions"]
        found["users"] = queries.user_list(c, limit=None)["users"]
        for user in users:
            found[user, "profile"] = queries.user_profile(c, user, sessions=sessions)
            found[user, "threads"] = queries.thread_list(c, user=user, limit=None)
            found[user, "sessions"] = queries.session_list(c, user=user, limit=None)
            found[user, "stats"] = stats(c, StatsQuery(user=user, by="day"), by_model=True)
        found["threads"] = queries.thread_list(c, limit=None)
    for user in users[:3]:
        found[user, "computed"] = store.sessions(user=user, timeout_s=600.0, limit=None)
        found[user, "analysis"] = answer(store, "conversations", {"user": user})
        found[user, "feedback"] = answer(store, "feedback", {"user": user, "since": SINCE})
    for p in ({"name": "conversation_list", "limit": 1000}, {"name": "conversation_list", "q": "refund"},
              {"name": "conversation_list", "topic": "1"}, {"name": "feedback"}, {"name": "conversations"}):
        found[repr(p)] = answer(store, p["name"], p)
    return rounded(found)


def pages(c, f: queries.EventFilter, sessions, newest_first: bool = True) -> list[dict]:
    """Every page of the filter's events, 7 at a time, by the cursor."""
    found, before = [], None
    while True:
        page = queries.event_page(c, f, sessions=sessions, limit=7, before=before, newest_first=newest_first)
        found += page["events"]
        before = page["next"]
        if before is None:
            return found


def folded(store: Store) -> dict:
    """What the fold looked up by thread: each feedback's turn, each thread's first and last."""
    with store.connection() as c:
        return {"feedback": c.rows("SELECT event_id, turn_id, link, thread_id FROM analytics_feedback ORDER BY 1"),
                "threads": c.rows("SELECT * FROM threads ORDER BY thread_id")}


@pytest.mark.parametrize("seed", [5, 11])
def test_every_read_by_user_or_thread_answers_what_the_events_hold(tmp_path, from_events, seed):
    store = build(tmp_path / "events.sqlite3", seed)
    try:
        with store.connection() as c:
            rows = c.rows("SELECT id, user_id, thread_id, ts_us FROM events")
            assert len(rows) > 300 and c.rows("SELECT COUNT(DISTINCT user_id) FROM events") == [(USERS,)]
            shared = c.rows("SELECT COUNT(*) FROM (SELECT thread_id FROM events WHERE thread_id IS NOT NULL "
                            "GROUP BY thread_id HAVING COUNT(DISTINCT user_id) > 1) AS t")[0][0]
            assert shared > 5
            # each user's and thread's events, newest first, as a plain filter of the stored rows finds them
            for key, column in ((1, "user_id"), (2, "thread_id")):
                for value in {r[key] for r in rows if r[key] is not None}:
                    events = c.execute(f"SELECT e.* FROM {c.dialect.keyed(column)[0]} WHERE k.{column} = ? "
                                       "ORDER BY k.ts_us DESC, k.id DESC", (value,)).fetchall()
                    assert [e["id"] for e in events] == [
                        r[0] for r in sorted(rows, key=lambda r: (r[3], r[0]), reverse=True) if r[key] == value]
        through_lookups = reads(store)
        with store.connection() as c:  # one user's LLM turns since a day, as their feedback analysis counts them
            for key, found in through_lookups.items():
                if key[1:] == ("feedback",):
                    assert found["totals"]["llm_turns"] == c.rows(
                        "SELECT COUNT(*) FROM events WHERE kind = 'llm' AND user_id = ? AND ts_us >= ?",
                        (key[0], SINCE_US))[0][0] > 0
        from_events()
        assert reads(store) == through_lookups
        before = build(tmp_path / "before.sqlite3", seed)  # the fold's look-ups in events too
        try:
            assert folded(before) == folded(store)
        finally:
            before.close()
    finally:
        store.close()


def test_a_copy_into_another_sqlite_store_answers_the_same(tmp_path):
    """``migrate``'s copy (ids kept, folded as ingestion folds, in chunks): the copy's look-ups
    hold every event, and every read by user or thread answers as the source's."""
    from trubrics_otel.server.store.copy import copy_events, source_timeout_s

    source = build(tmp_path / "source.sqlite3", 5)
    target = Store(tmp_path / "copy.sqlite3", session_timeout_s=source_timeout_s(source))
    try:
        copy_events(source, target, chunk=97)
        with target.connection() as c:  # as a fit would set them (the copy's topics are its own)
            c.execute("UPDATE analytics_prompts SET topic = event_id % 3")
        assert reads(target) == reads(source)
    finally:
        source.close()
        target.close()


def test_a_store_from_before_the_lookups_gains_them_with_every_event(tmp_path):
    """A file of schema 8 (the two indexes; events folded, and pending after the watermark)
    opened by this release: the look-ups hold each event once, and the indexes are gone."""
    from trubrics_otel.server.store.rows import INSERT, event_row, llm_row

    path = tmp_path / "events.sqlite3"
    plain, llm = generate(seed=3, users=6)
    made = sorted([event_row(e, 0) for e in plain] + [llm_row(e, 0) for e in llm], key=lambda r: r[3])
    with sqlite_file_before(path, 9) as old:
        old.executemany(INSERT, made)
        old.execute("UPDATE fold_state SET folded_id = ?", (len(made) - 40,))  # the last 40 pending
        assert {"events_user_time", "events_thread"} <= {n for (n,) in old.execute("SELECT name FROM sqlite_master")}
    store = Store(path)
    try:
        with store.connection() as c:
            names = {n for (n,) in c.execute("SELECT name FROM sqlite_master")}
            assert {"events_by_user", "events_by_thread"} <= names
            assert not {"events_user_time", "events_thread"} & names
            assert c.rows("SELECT user_id, ts_us, id FROM events_by_user ORDER BY 1, 2, 3") == c.rows(
                "SELECT user_id, ts_us, id FROM events ORDER BY 1, 2, 3")
            assert c.rows("SELECT thread_id, ts_us, id FROM events_by_thread ORDER BY 1, 2, 3") == c.rows(
                "SELECT thread_id, ts_us, id FROM events WHERE thread_id IS NOT NULL ORDER BY 1, 2, 3")
        assert len(store.events(user="user-002", limit=None)) == sum(1 for r in made if r[1] == "user-002")
    finally:
        store.close()


def test_a_fold_of_the_release_before_cannot_move_the_watermark_past_the_lookups(tmp_path):
    """A server of the release before still running on the file folds without adding to the
    look-ups: its fold fails (its events stay pending), and this release's fold takes them in."""
    from trubrics_otel.server.store.rows import INSERT, llm_row

    store = Store(tmp_path / "events.sqlite3")
    plain, llm = generate(seed=4, users=3)
    store.insert(plain, llm[:20])
    store.close()
    old = sqlite3.connect(store.path, isolation_level=None)  # its connection: none of this release's functions
    old.execute("BEGIN IMMEDIATE")
    old.executemany(INSERT, [llm_row(e, 0) for e in llm[20:]])
    last = old.execute("SELECT MAX(id) FROM events").fetchone()[0]
    with pytest.raises(sqlite3.OperationalError, match="trubrics_lookups"):
        old.execute("UPDATE fold_state SET folded_id = ?", (last,))
    old.execute("COMMIT")
    old.close()
    with store.connection() as c:
        assert c.rows("SELECT folded_id FROM fold_state") == [(last,)]
        assert c.rows("SELECT COUNT(*) FROM events_by_user") == c.rows("SELECT COUNT(*) FROM events")
    assert len(store.events(user=llm[-1]["user_id"], kind="llm", limit=None)) == sum(
        1 for e in llm if e["user_id"] == llm[-1]["user_id"])
    store.close()
