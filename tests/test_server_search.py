"""The read API's event lists on both engines, whichever plan a query takes: a text search
matching few events (found through the text index, then sorted) or many (the time index,
testing each row), page after page; an event name that is also a prompt's name."""

from __future__ import annotations

import datetime as dt

import pytest

from trubrics_otel.server import queries
from trubrics_otel.server.store import Store

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def _llm(i: int) -> dict:
    words = "refund order" if i % 3 else "rebook flight"
    return {"user_id": f"user-{i % 4}", "prompt": f"{words} {i}", "generation": f"answer {i % 7}",
            "timestamp": (T0 + dt.timedelta(minutes=i // 2)).isoformat(),  # ties on time: ids order them
            "prompt_event_name": "Ask" if i % 5 == 0 else None,
            "properties": {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}


@pytest.fixture(scope="module")
def store(module_db_url):
    store = Store(module_db_url)
    llm = [{k: v for k, v in _llm(i).items() if v is not None} for i in range(90)]
    plain = [{"user_id": "user-9", "event": "Ask", "timestamp": (T0 + dt.timedelta(hours=2)).isoformat()}]
    store.insert(plain, llm)
    yield store
    store.close()


def pages(store: Store, **kwargs: str) -> list[list[int]]:
    """Every page of 7, newest first, following the cursors."""
    found, before = [], None
    with store.connection() as c:
        lookup = store.sessions_lookup(c)
        while True:
            page = queries.event_page(c, queries.EventFilter(**kwargs), sessions=lookup, limit=7, before=before)
            found.append([e["id"] for e in page["events"]])
            before = page["next"]
            if before is None:
                return found


def _words(e: dict) -> list[str]:
    return f"{e['prompt']} {e['generation']}".split()


def newest_first(store: Store, keep) -> list[int]:
    events = store.events(limit=None)
    return [e["id"] for e in events if keep(e)]


@pytest.mark.parametrize("few", [0, 3, queries.FEW_MATCHES])
def test_a_search_pages_through_every_match_whichever_plan(store, monkeypatch, few):
    """``few``: 0 and 3 take the time index for every search here, the default the text index."""
    monkeypatch.setattr(queries, "FEW_MATCHES", few)
    for words, keep in (("refund", lambda e: "refund" in e["prompt"]), ("rebook fli", lambda e: "rebook" in e["prompt"]),
                        ("order 4", lambda e: "order" in _words(e) and any(w.startswith("4") for w in _words(e))),
                        ("nowhere", lambda e: False)):
        want = newest_first(store, lambda e, keep=keep: e["kind"] == "llm" and keep(e))
        got = pages(store, q=words)
        assert [i for page in got for i in page] == want, words
        assert all(len(page) == 7 for page in got[:-1])


def test_a_word_whose_letters_sqlite_splits_is_searched_not_refused(store):
    """New Tai Lue's vowel signs: letters to Python's Unicode tables, separators to SQLite's
    (its index then holds ``refund`` and ``order``, PostgreSQL's one word): an answer, never an
    error from a phrase the index without positions cannot look up."""
    found = [i for page in pages(store, q="refund\u19b0order") for i in page]
    assert found == (newest_first(store, lambda e: e["kind"] == "llm" and "refund order" in e["prompt"])
                     if store.engine.name == "sqlite" else [])


def test_an_event_name_also_matches_prompts_of_that_name(store):
    want = newest_first(store, lambda e: e["event"] == "Ask" or e.get("prompt_event_name") == "Ask")
    assert len(want) == 1 + 18
    assert [i for page in pages(store, event="Ask") for i in page] == want


def test_a_sqlite_store_from_before_the_search_merge_settings_finds_what_it_found(tmp_path, monkeypatch):
    """A store of the release before (schema 3) opened by this one: its full-text index gains
    the fold's merge settings (schema 4: fewer, larger merges of each fold's prompts), and a
    search finds what it found before, and the events stored after."""
    from trubrics_otel.server.store import migrations

    every = migrations.steps
    with monkeypatch.context() as before:
        # every step but the merge settings (this release's fold needs the later steps' tables)
        before.setattr(migrations, "steps", lambda engine: tuple(s for s in every(engine) if s[0] != 4))
        old = Store(tmp_path / "events.sqlite3")
        old.insert((), [{k: v for k, v in _llm(i).items() if v is not None} for i in range(30)])
        found = {words: pages(old, q=words) for words in ("refund", "rebook fli", "order 4", "nowhere")}
        old.close()
    store = Store(tmp_path / "events.sqlite3")
    with store.connection() as c:
        assert dict(c.rows("SELECT k, v FROM events_fts_config WHERE k IN ('hashsize', 'automerge')")) == {
            "hashsize": 8 * 1024 * 1024, "automerge": 8}
    assert {words: pages(store, q=words) for words in found} == found
    store.insert((), [{k: v for k, v in _llm(i).items() if v is not None} for i in range(30, 40)])
    newest = [e["id"] for e in store.events(limit=None) if "refund" in (e.get("prompt") or "")]
    assert [i for page in pages(store, q="refund") for i in page] == newest
    store.close()


def test_a_sqlite_store_from_before_search_words_finds_every_event_once(tmp_path, monkeypatch):
    """A store of the release before (schema 7: a full-text index with positions, some events
    indexed, the newest above its watermark) opened by this one: the index is rebuilt without
    positions, and every event, old or new, indexed before or not, is found once, by words
    apart in the event too."""
    import sqlite3

    from trubrics_otel.server.store import migrations, text_index

    every = migrations.steps
    path = tmp_path / "events.sqlite3"
    with monkeypatch.context() as before:
        # schema 8 left out (the look-ups of 9 kept: this release's fold, writing the old file, reads them)
        before.setattr(migrations, "steps", lambda engine: tuple(s for s in every(engine) if s[0] != 8))
        old = Store(path)
        old.insert((), [{k: v for k, v in _llm(i).items() if v is not None} for i in range(20)])
        assert pages(old, q="refund")  # indexes the events stored so far
        before.setattr(text_index, "catch_up", lambda connection, every=False: None)
        old.insert((), [{k: v for k, v in _llm(i).items() if v is not None} for i in range(20, 30)])
        old.close()
    with sqlite3.connect(path) as db:  # as the release before left it
        assert "detail" not in db.execute("SELECT sql FROM sqlite_master WHERE name = 'events_fts'").fetchone()[0]
        assert db.execute("SELECT indexed_id FROM fold_state").fetchone() == (20,)
    store = Store(path)
    store.insert((), [{k: v for k, v in _llm(i).items() if v is not None} for i in range(30, 40)])
    events = store.events(limit=None)
    assert len(events) == 40
    for words, keep in (("refund", lambda e: "refund" in e["prompt"]), ("order.answer", lambda e: "order" in e["prompt"]),
                        ("rebook fli", lambda e: "rebook" in e["prompt"]), ("answer", lambda e: True)):
        assert [i for page in pages(store, q=words) for i in page] == [e["id"] for e in events if keep(e)], words
    with store.connection() as c:
        assert "detail=none" in c.rows("SELECT sql FROM sqlite_master WHERE name = 'events_fts'")[0][0]
        assert dict(c.rows("SELECT k, v FROM events_fts_config WHERE k IN ('hashsize', 'automerge')")) == {
            "hashsize": 8 * 1024 * 1024, "automerge": 8}
    store.close()
