"""SQLite's deferred fold: an ingest commits its events alone; the summary tables, the search
index and the analytics tables take them in later, in bulk. What a user relies on:

- a read right after an ingest sees every figure (users, sessions, threads, stats, search,
  analytics), whether it asks the store, the read API of a running server, or opens the file
  in another process;
- events committed but not folded when the process dies are folded when the file is next
  opened or read, each exactly once;
- several writers (threads, processes) and readers at once end with exact totals.
"""

from __future__ import annotations

import json
import random
from collections import Counter
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from old_schema import sqlite_file_before
from test_store_sqlite_connections import start_serve
from trubrics_otel.server import Store, queries
from trubrics_otel.server.store import derived
from trubrics_otel.server.store import sqlite as sqlite_engine
from trubrics_otel.server.store.rows import INSERT, llm_row

HEADERS = {"x-api-key": "k", "Content-Type": "application/json"}
TESTS = repr(str(Path(__file__).resolve().parent))  # for the other processes' code
USERS = 7


def turns(first: int, n: int, prefix: str = "") -> list[dict]:
    """``n`` LLM turns, ids ``first``..; user ``i % 7``, thread ``i % 11``, a minute apart
    within each user (one session per user), words ``w<i>`` and ``common`` to search."""
    return [{"user_id": f"{prefix}u{i % USERS}", "prompt": f"w{i} common", "generation": "answer",
             "thread_id": f"{prefix}t{i % 11}", "timestamp": f"2026-05-01T10:{(i // USERS) % 60:02d}:00Z",
             "latency": 0.5, "properties": {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}", "model": "m"}}
            for i in range(first, first + n)]


FIGURES = {  # what the derived tables say, and what the events say
    "users": ("SELECT COALESCE(SUM(events), 0) FROM users", "SELECT COUNT(*) FROM events"),
    "sessions": ("SELECT COALESCE(SUM(events), 0) FROM sessions", "SELECT COUNT(*) FROM events"),
    "threads": ("SELECT COALESCE(SUM(turns), 0) FROM threads",
                "SELECT COUNT(*) FROM events WHERE thread_id IS NOT NULL"),
    "hourly": ("SELECT COALESCE(SUM(events), 0) FROM hourly", "SELECT COUNT(*) FROM events"),
    "search": ("SELECT COUNT(*) FROM events_fts WHERE events_fts MATCH 'common'",
               "SELECT COUNT(*) FROM events WHERE kind = 'llm'"),
    "analytics": ("SELECT COALESCE(SUM(turns), 0) FROM threads",
                  "SELECT COUNT(*) FROM events WHERE thread_id IS NOT NULL"),
    "funnel steps": ("SELECT COUNT(*) FROM analytics_steps WHERE event = 'Generation'",
                     "SELECT COUNT(*) FROM events"),
}


def figures(store: Store) -> dict[str, tuple[int, int]]:
    with store.reader() as db:
        db.dialect.text_index_current(db)  # as a search does first: the text index lags by chunks
        return {name: (db.rows(derived)[0][0], db.rows(raw)[0][0]) for name, (derived, raw) in FIGURES.items()}


def assert_exact(store: Store, total: int) -> None:
    assert figures(store) == {name: (total, total) for name in FIGURES}
    assert sum(u["events"] for u in store.users(limit=None)) == total
    assert len(store.sessions(limit=None)) == min(total, USERS)


def search(store: Store, words: str) -> list[str]:
    """The prompts a search of the read API finds, newest first."""
    with store.connection() as c:
        page = queries.event_page(c, queries.EventFilter(q=words), sessions=store.sessions_lookup(c), limit=None)
    return [e["prompt"] for e in page["events"]]


def unindexed(path: Path) -> int:
    """Events stored and not yet in the text index, as the file says."""
    with sqlite3.connect(path) as c:
        return c.execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM events) - indexed_id FROM fold_state").fetchone()[0]


def test_a_search_right_after_an_ingest_finds_the_newest_event(tmp_path):
    """The text index takes events in chunks (text_index.CHUNK), not at every read's fold: a
    search still finds every stored event, the one stored just before it too."""
    store = Store(tmp_path / "events.sqlite3")
    store.insert((), turns(0, 40))
    assert store.count()["llm_events"] == 40  # a read: the summary tables folded...
    assert unindexed(store.path) == 40  # ...the text index left for a chunk or a search
    assert search(store, "w39") == ["w39 common"]
    assert unindexed(store.path) == 0
    store.insert((), turns(40, 2))
    assert search(store, "common") == [f"w{i} common" for i in reversed(range(42))]
    store.insert((), turns(42, 1))
    store.close()  # the file left behind is whole: its index too
    assert unindexed(store.path) == 0


def pending(path: Path) -> int:
    """Events committed and not folded, as the file says (no store: nothing folds)."""
    with sqlite3.connect(path) as c:
        return c.execute("SELECT (SELECT COALESCE(MAX(id), 0) FROM events) - folded_id FROM fold_state").fetchone()[0]


def in_another_process(code: str, path: Path) -> str:
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_a_read_right_after_an_ingest_sees_every_figure(tmp_path):
    store = Store(tmp_path / "events.sqlite3")
    for first in range(0, 300, 50):
        store.insert((), turns(first, 50))
    assert pending(store.path) == 300  # committed, not folded: under the writer's threshold
    assert store.count() == {"events": 0, "llm_events": 300, "users": USERS, "last_id": 300}
    assert pending(store.path) == 0
    assert_exact(store, 300)
    assert {t["thread_id"]: t["turns"] for t in store.threads(limit=None)} == {f"t{k}": 28 - (k > 2) for k in range(11)}
    store.insert((), turns(300, 7))
    assert search(store, "w303") == ["w303 common"]  # a search makes the text index whole first
    store.insert((), turns(307, 3))
    store.close()  # folds: the file left behind is whole for any reader
    assert pending(store.path) == 0


def test_the_writer_folds_in_bulk_once_enough_events_are_pending(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_engine, "FOLD_ROWS", 120)
    store = Store(tmp_path / "events.sqlite3")
    left = []
    for first in range(0, 300, 50):
        store.insert((), turns(first, 50))
        left.append(pending(store.path))
    assert left == [50, 100, 0, 50, 100, 0]  # folded after the commit that reached 120
    assert_exact(store, 300)
    store.close()


def test_a_server_a_second_process_and_a_restart_after_a_kill_each_see_every_event(tmp_path):
    """A real ``serve``: its read API and another process opening the file see what was just
    acknowledged; killed with events pending, the next open folds them, each once."""
    path = tmp_path / "events.sqlite3"
    server, url = start_serve(path)
    try:
        def send(first: int, n: int) -> None:
            response = requests.post(f"{url}/publish_llm_events", data=json.dumps(turns(first, n)),
                                     headers=HEADERS, timeout=30)
            assert response.status_code == 200 and response.json()["stored"] == n, response.text

        send(0, 40)
        assert pending(path) == 40
        seen = in_another_process(
            "import sys, json; from trubrics_otel.server import Store; s = Store(sys.argv[1]); "
            "print(json.dumps([s.count(), sorted((u['user_id'], u['events']) for u in s.users())]))", path)
        assert json.loads(seen) == [{"events": 0, "llm_events": 40, "users": USERS, "last_id": 40},
                                    [[f"u{k}", 6 - (k > 4)] for k in range(USERS)]]
        send(40, 30)

        def get(route: str, **params) -> Any:
            response = requests.get(f"{url}/api/{route}", params=params, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()

        assert get("stats")["llm_events"] == 70
        assert sum(u["events"] for u in get("users", limit=100)) == 70
        assert sum(s["events"] for s in get("sessions", limit=100)) == 70
        assert sum(t["turns"] for t in get("threads", limit=100)) == 70
        assert [e["prompt"] for e in get("events", q="w65")] == ["w65 common"]
        assert get("analytics", since="2026-05-01T00:00:00Z", until="2026-05-02T00:00:00Z")["totals"]["llm_events"] == 70
        assert get("conversations", since="2026-05-01T00:00:00Z", until="2026-05-02T00:00:00Z")["threads"] == 11
        send(70, 30)
        assert pending(path) == 30
    finally:
        server.send_signal(signal.SIGKILL)  # no clean shutdown: 30 events committed, not folded
        server.wait(10)
    assert pending(path) == 30
    store = Store(path)
    assert_exact(store, 100)
    store.close()


def test_events_left_unfolded_by_a_killed_writer_are_folded_once_when_the_file_is_next_opened(tmp_path):
    path = tmp_path / "events.sqlite3"
    in_another_process(  # writes, then dies without closing (no fold on close)
        f"import os, sys; sys.path.insert(0, {TESTS}); from test_store_deferred_fold import turns; "
        "from trubrics_otel.server import Store; s = Store(sys.argv[1]); s.insert((), turns(0, 90)); "
        "sys.stdout.flush(); os._exit(0)", path)
    assert pending(path) == 90
    first, second = Store(path), Store(path)  # two engines on one file, as two processes
    first.engine.fold()  # opening folds what it finds pending
    assert pending(path) == 0
    first.insert((), turns(90, 10))
    assert_exact(second, 100)  # the second folds the first's pending events
    assert_exact(first, 100)  # and the first finds nothing left to fold
    first.engine.fold()
    second.engine.fold()
    assert_exact(first, 100)
    first.close(), second.close()


def test_writers_in_threads_and_another_process_with_reads_between_end_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_engine, "FOLD_ROWS", 150)  # writers fold too, between the reads
    path = tmp_path / "events.sqlite3"
    store = Store(path)
    store.count()
    other = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys; sys.path.insert(0, {TESTS}); from test_store_deferred_fold import turns; "
         "from trubrics_otel.server import Store; from trubrics_otel.server.store import sqlite; "
         "sqlite.FOLD_ROWS = 150; s = Store(sys.argv[1]); s.count(); print('ready', flush=True); "
         "[s.insert((), turns(10_000 + k * 40, 40, prefix='p')) or s.users() for k in range(15)]; s.close()",
         str(path)], stdout=subprocess.PIPE, text=True)
    assert other.stdout is not None and other.stdout.readline() == "ready\n"  # writing from now on
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for b in range(10):
                store.insert((), turns(k * 1000 + b * 30, 30))
        except BaseException as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(20):
                got = figures(store)
                assert got["users"][0] >= 0 and got["search"][0] <= got["search"][1]
        except BaseException as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert other.wait(120) == 0
    assert not errors, errors
    total = 4 * 10 * 30 + 15 * 40
    assert figures(store) == {name: (total, total) for name in FIGURES}
    assert {u["user_id"]: u["events"] for u in store.users(limit=None) if u["user_id"].startswith("p")} \
        == Counter(e["user_id"] for e in turns(10_000, 600, prefix="p"))
    store.close()


def test_a_fold_that_is_rolled_back_folds_nothing(tmp_path):
    """The watermark moves in the fold's transaction: a fold that fails part-way leaves every
    table as it was, and the retry counts each event once."""
    store = Store(tmp_path / "events.sqlite3")
    store.insert((), turns(0, 50))
    with sqlite3.connect(store.path) as c:  # a fold can no longer commit its watermark
        c.execute("CREATE TRIGGER stuck BEFORE UPDATE ON fold_state BEGIN SELECT RAISE(ABORT, 'stuck'); END")
    assert figures(store)["users"] == (0, 50)  # the failed fold: no half of it stays
    with sqlite3.connect(store.path) as c:
        c.execute("DROP TRIGGER stuck")
    assert_exact(store, 50)
    store.close()


def test_a_store_opened_with_events_pending_rebuilds_without_counting_them_twice(tmp_path):
    """Opening folds the pending events before it rebuilds sessions for another timeout, and
    leaves them out of the fold for analytics tables it refills from every event."""
    path = tmp_path / "events.sqlite3"
    in_another_process(
        f"import os, sys; sys.path.insert(0, {TESTS}); from test_store_deferred_fold import turns; "
        "from trubrics_otel.server import Store; s = Store(sys.argv[1]); s.insert((), turns(0, 60)); "
        "s.close(); s.insert((), turns(60, 40)); os._exit(0)", path)
    assert pending(path) == 40
    with sqlite3.connect(path) as c:  # as if written by another version of the analytics tables
        c.execute("UPDATE analytics_meta SET value = 'older' WHERE key = 'version'")
    store = Store(path, session_timeout_s=3600)
    assert_exact(store, 100)
    store.close()


def test_a_server_of_an_older_release_still_running_on_the_file_cannot_fold_its_batches_again(tmp_path):
    """Once this release has migrated the file, an older server still running on it (which
    folds each batch as it commits) has its batches refused rather than counted twice."""
    from trubrics_otel.server.store import derived
    from trubrics_otel.server.store.dialect import SQLITE

    store = Store(tmp_path / "events.sqlite3")
    store.insert((), turns(0, 10))
    store.count()
    old = sqlite3.connect(store.path, isolation_level=None)  # an older release: no such function
    old.execute("BEGIN IMMEDIATE")
    old.execute("INSERT INTO events (kind, user_id, event, ts_us, received_us, properties) "
                "VALUES ('event', 'late', 'Click', 1, 1, '{}')")
    with pytest.raises(sqlite3.OperationalError, match="trubrics_deferred_fold"):
        old.execute(derived.updates(SQLITE)[0], (10,))  # its inline fold: the users upsert
    old.execute("ROLLBACK")
    old.close()
    assert_exact(store, 10)
    store.close()


def test_an_upgrade_rebuilding_the_summary_tables_of_a_file_with_events_pending_counts_each_once(tmp_path):
    """A later release that rebuilds the summary tables (``PRAGMA user_version`` below its own)
    opening a file a killed server left events pending in: the rebuild took them all in."""
    path = tmp_path / "events.sqlite3"
    in_another_process(
        f"import os, sys; sys.path.insert(0, {TESTS}); from test_store_deferred_fold import turns; "
        "from trubrics_otel.server import Store; s = Store(sys.argv[1]); s.insert((), turns(0, 60)); "
        "s.count(); s.insert((), turns(60, 30)); sys.stdout.flush(); os._exit(0)", path)
    assert pending(path) == 30
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {derived.VERSION - 1}")
    store = Store(path)
    assert_exact(store, 90)
    store.close()


def test_folds_of_any_size_over_late_events_and_feedback_leave_the_tables_one_fold_leaves(tmp_path):
    """Events in random order (late turns, feedback before or after its turn, in another fold),
    read (folded) after every 37, give every summary and analytics table, feedback links
    included, exactly as one fold of them all."""
    from analytics_data import generate
    from trubrics_otel.server.analytics.schema import TABLES

    plain, llm = generate(users=30)
    items = [(False, e) for e in plain] + [(True, e) for e in llm]
    random.Random(5).shuffle(items)
    skipped = ("analytics_meta", "analytics_topics", "analytics_prompts")  # topics: fitted lazily
    tables = (*derived._DERIVED, *(t for t in TABLES if t not in skipped), "analytics_steps")

    def tables_after(name: str, read_between: bool) -> dict[str, list[str]]:
        store = Store(tmp_path / name)
        for i in range(0, len(items), 37):
            part = items[i:i + 37]
            store.insert([e for llm, e in part if not llm], [e for llm, e in part if llm])
            if read_between:
                store.count()
        with store.reader() as db:
            found = {t: sorted(repr([round(v, 6) if isinstance(v, float) else v for v in row])
                               for row in db.rows(f"SELECT * FROM {t}")) for t in tables}
            found["search"] = db.rows("SELECT COUNT(*) FROM events_fts")
        store.close()
        return found

    assert tables_after("many.sqlite3", read_between=True) == tables_after("one.sqlite3", read_between=False)


def test_a_fold_failing_each_time_is_not_paid_by_every_read(tmp_path, monkeypatch, caplog):
    """Reads after a second failed fold in a row answer from the tables as they are (and log
    nothing more) until FOLD_RETRY_S has passed: a fold failing each time cost every read (the
    page polls) all the pending events over, under the write lock the ingest waits for, and a
    logged traceback."""
    monkeypatch.setattr(sqlite_engine, "FOLD_RETRY_S", 3600.0)
    store = Store(tmp_path / "events.sqlite3")
    store.insert((), turns(0, 50))
    with sqlite3.connect(store.path) as c:
        c.execute("CREATE TRIGGER stuck BEFORE UPDATE ON fold_state BEGIN SELECT RAISE(ABORT, 'stuck'); END")
    for _ in range(4):
        assert store.count()["last_id"] == 50 and figures(store)["users"] == (0, 50)
    assert sum("could not fold" in r.getMessage() for r in caplog.records) == 2  # then paused
    with sqlite3.connect(store.path) as c:
        c.execute("DROP TRIGGER stuck")
    store.engine.fold()  # the writer's or close's fold still tries (and clears the pause)
    assert_exact(store, 50)
    store.close()


def test_a_fold_failing_at_open_opens_the_store_ingests_and_says_what_the_summaries_lack(tmp_path, capsys,
                                                                                       monkeypatch):
    """A fold that fails when the file is opened (a full disk, a trigger that raises) no longer
    makes it unusable: the server starts and acknowledges (and commits) new events, every read
    answers with one line naming how many events the summaries lack, and once the cause is gone
    the next fold counts each event once."""
    import logging

    from trubrics_otel.cli import main
    from trubrics_otel.server import LocalServer

    server_log = logging.getLogger("trubrics.server")  # as in a new process: an in-process serve run
    monkeypatch.setattr(server_log, "handlers", [])  # by an earlier test leaves its handler there
    monkeypatch.setattr(server_log, "propagate", True)
    path = tmp_path / "events.sqlite3"
    writer = Store(path)
    writer.insert((), turns(0, 50))  # committed, not folded: under the writer's threshold
    with sqlite3.connect(path) as c:  # every fold from now on fails
        c.execute("CREATE TRIGGER stuck BEFORE UPDATE ON fold_state BEGIN SELECT RAISE(ABORT, 'stuck'); END")

    assert main(["users", "--db", str(path), "--json"]) == 0  # opening folds first: it fails
    out, err = capsys.readouterr()
    assert sum(u["events"] for u in json.loads(out)) == 0  # the summaries as they are
    assert err.count("\n") == 1 and "lack the last 50 stored events" in err and "stuck" in err, err
    assert main(["events", "--db", str(path), "--json", "--limit", "100"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 50  # every stored event

    with LocalServer(path, port=0, grpc_port=None) as server:  # serve starts on it
        response = requests.post(f"{server.url}/publish_llm_events", data=json.dumps(turns(50, 10)),
                                 headers=HEADERS, timeout=30)
        assert response.status_code == 200, response.text
    assert pending(path) == 60  # acknowledged and committed, nothing lost

    store = Store(path, session_timeout_s=3600)  # another timeout: its sessions wait for a fold
    assert store.count()["last_id"] == 60
    with sqlite3.connect(path) as c:
        c.execute("DROP TRIGGER stuck")
    store.engine.fold()  # the next fold goes through, sessions rebuilt for the hour with it
    with store.reader() as db:
        assert derived.stored_timeout_us(db) == 3600 * 10**6
    assert_exact(store, 60)
    store.close(), writer.close()


def test_a_store_whose_fold_indexed_its_text_gains_the_text_watermark_and_indexes_each_event_once(
        tmp_path):
    """A file of the schema before the text index's own watermark (6), whose fold indexed each
    event it folded, opened by this release: each event is in the index once, those folded and
    those stored after the last fold alike."""
    path = tmp_path / "events.sqlite3"
    with sqlite_file_before(path, 7) as old:
        old.executemany(INSERT, [llm_row(e, 0) for e in turns(0, 45)])
        for key in ("user_id", "thread_id"):  # today's fold reads schema 9's look-ups: for its statements
            old.execute(f"CREATE TEMP TABLE events_by_{key[:-3]} ({key}, ts_us, id)")  # to run here, empty ones
        old.execute("CREATE TEMP TABLE latency_hist (hour_us, model, event, bin, n, total, "  # and schema 10's
                    "PRIMARY KEY (hour_us, model, event, bin))")  # histogram (its migration refills it)
        derived.apply(old, 0, None)  # its fold, the text index with it
        old.execute("INSERT INTO events_fts (rowid, prompt, generation) SELECT id, prompt, generation FROM events")
        old.execute("UPDATE fold_state SET folded_id = 45")
        old.executemany(INSERT, [llm_row(e, 0) for e in turns(45, 15)])  # stored after its last fold
    store = Store(path)
    assert store.count()["llm_events"] == 60
    assert unindexed(path) == 15  # the 45 its fold indexed are not indexed again
    assert search(store, "common") == [f"w{i} common" for i in reversed(range(60))]
    with store.reader() as db:
        assert db.rows("SELECT COUNT(*) FROM events_fts WHERE events_fts MATCH 'common'") == [(60,)]
    store.close()
