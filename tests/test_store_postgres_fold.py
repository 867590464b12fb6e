"""PostgreSQL's deferred fold (store/postgres_fold.py): ingest queues, folds take the queue.

Real parts: a throwaway cluster (conftest's ``postgres_cluster``), the store's own pool and
folder thread, a second plain psycopg connection standing for another worker or a reader
that looks at the tables without folding.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from test_server_derived import dump, random_events

from trubrics_otel.server import Store
from trubrics_otel.server.analytics import schema
from trubrics_otel.server.store import postgres
from trubrics_otel.server.store.postgres_fold import WRITE_LOCK


def _llm(i: int) -> dict:
    return {"user_id": f"u{i % 3}", "prompt": "p", "generation": "g", "thread_id": f"t{i % 4}", "latency": 1.0,
            "timestamp": f"2026-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            "properties": {"$trace_id": "ab" * 16, "$span_id": f"{i:016x}"}}


def _raw(url: str, sql: str) -> int:
    """One number, read by a connection of its own: the tables as they are, nothing folded."""
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute(sql).fetchone()[0]


def _until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_ingest_queues_its_events_and_a_worker_folds_them_in_bulk_after_fold_rows(postgres_cluster, monkeypatch):
    """An acknowledged batch is stored and queued, not folded; once the process has queued
    FOLD_ROWS events its folder thread folds every pending one, no read needed."""
    monkeypatch.setattr(postgres, "FOLD_ROWS", 300)
    url = postgres_cluster.create_database(template=True)
    store = Store(url)
    try:
        for k in range(2):
            assert store.insert((), [_llm(i) for i in range(k * 100, k * 100 + 100)]) == (100, 0)
        assert store.insert((), [_llm(i) for i in range(100)]) == (0, 100)  # nothing new: nothing queued
        assert _raw(url, "SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending") == 200
        assert _raw(url, "SELECT COALESCE(SUM(llm_events), 0) FROM users") == 0  # deferred
        store.insert((), [_llm(i) for i in range(200, 300)])
        assert _until(lambda: _raw(url, "SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending") == 0)
        assert _until(lambda: _raw(url, "SELECT COALESCE(SUM(llm_events), 0) FROM users") == 300)
        assert _raw(url, "SELECT SUM(turns) FROM threads") == 300
    finally:
        store.close()


def test_ingest_never_waits_for_a_fold_and_a_read_waits_for_it_then_sees_every_event(postgres_cluster):
    """While another folder holds the fold's lock, batches are stored and acknowledged (ingest
    takes no lock); a read waits for that fold to end, then folds what is pending: its counts
    hold every acknowledged event."""
    url = postgres_cluster.create_database(template=True)
    store = Store(url)
    store.count()  # opened (its open folds under the lock) before the lock is taken below
    read: list[dict] = []
    try:
        with psycopg.connect(url, autocommit=True) as folder:
            folder.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))  # a fold under way elsewhere
            stored: list[tuple[int, int]] = []
            ingest = threading.Thread(target=lambda: stored.extend(
                store.insert((), [_llm(i) for i in range(k * 50, k * 50 + 50)]) for k in range(3)))
            ingest.start()
            ingest.join(10)  # (a batch waiting for the lock would wait until the end of the block)
            assert stored == [(50, 0)] * 3
            reader = threading.Thread(target=lambda: read.append(store.count()))
            reader.start()
            assert _until(lambda: _raw(url, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                            "AND wait_event_type = 'Lock'") == 1)
            assert not read  # waiting for the fold under way, not answering from tables lacking 150 events
            folder.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
            reader.join(30)
        assert read and read[0]["llm_events"] == 150
    finally:
        store.close()


def test_events_pending_when_a_hook_refills_its_tables_at_open_are_counted_once(postgres_cluster, monkeypatch):
    """A worker stopped with events queued (a crash: no fold at close); the next open refills
    the analytics tables from every stored event (a new version of them): the pending events
    go into the store's derived tables by the open's fold, not into the refilled ones twice."""
    url = postgres_cluster.create_database(template=True)
    plain, llm = random_events()
    crashed = Store(url)
    crashed.insert(plain, llm)
    assert _raw(url, "SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending") == len(plain) + len(llm)
    crashed.engine._ready = False  # its close folds nothing: as if the process had died
    crashed.close()
    monkeypatch.setattr(schema, "VERSION", schema.VERSION + "-next")
    store = Store(url)
    try:
        with_latency = sum(1 for e in llm if e.get("latency") is not None)
        with store.reader() as db:
            assert db.rows("SELECT SUM(n) FROM analytics_latency") == [(with_latency,)]
            assert db.rows("SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending") == [(0,)]
        counts = store.count()
        assert (counts["events"], counts["llm_events"]) == (len(plain), len(llm))
    finally:
        store.close()


@pytest.mark.parametrize("workers", [2])
def test_two_stores_folding_while_they_ingest_and_read_keep_every_table_exact(
        tmp_path, postgres_cluster, monkeypatch, workers):
    """Two stores (two workers' engines) insert batches side by side, their folder threads fold
    every 40 events each (taking turns, or skipping while the other folds), reads fold in
    between: every derived table equals one ordered load's on SQLite."""
    monkeypatch.setattr(postgres, "FOLD_ROWS", 40)
    plain, llm = random_events()
    reference = Store(tmp_path / "reference.sqlite3")
    reference.insert(plain, llm)
    url = postgres_cluster.create_database(template=True)
    stores = [Store(url) for _ in range(workers)]
    items = [("e", e) for e in plain] + [("l", e) for e in llm]
    work = [items[k:k + 10] for k in range(0, len(items), 10)]

    def run(n: int) -> None:
        store = stores[n % workers]
        for k, batch in enumerate(work[n::4]):
            store.insert([e for kind, e in batch if kind == "e"], [e for kind, e in batch if kind == "l"])
            if k % 5 == 4:
                store.count()  # a read: folds first

    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert dump(stores[0]) == dump(reference)
    finally:
        for store in stores:
            store.close()
        reference.close()


class _Stuck:
    """A hook whose fold fails (a bug, a full disk) until ``stuck`` is cleared."""

    stuck = True

    def ensure(self, connection) -> None:
        pass

    def apply(self, connection, after_id: int) -> None:
        if self.stuck:
            raise RuntimeError("stuck")


def test_a_fold_failing_each_time_is_not_paid_by_every_read(postgres_cluster, monkeypatch, caplog):
    """Reads after a second failed fold in a row answer from the tables as they are (and log
    nothing more) until FOLD_RETRY_S has passed, as SQLite's: each would otherwise take the lock
    and try every pending event again; a fold that succeeds ends the pause."""
    monkeypatch.setattr(postgres, "FOLD_RETRY_S", 3600.0)
    hook = _Stuck()
    store = Store(postgres_cluster.create_database(template=True), hooks=[hook])
    try:
        store.insert((), [_llm(i) for i in range(50)])
        for _ in range(4):
            assert store.count()["llm_events"] == 0  # nothing folded, nothing half-folded
        assert sum("could not fold" in r.getMessage() for r in caplog.records) == 2  # then paused
        hook.stuck = False
        assert store.engine.fold() == 50  # the worker's or close's fold still tries (and ends the pause)
        store.insert((), [_llm(i) for i in range(50, 60)])
        assert store.count()["llm_events"] == 60
    finally:
        store.close()


class _Refilled:
    """A hook rebuilt from every stored event at each open (a new version of its table): counts
    the events it holds. Its refill waits for ``go`` (the test lets another worker commit then)."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.refilling = False

    def ensure(self, connection) -> bool:
        self.refilling = True
        connection.execute("CREATE TABLE IF NOT EXISTS refilled (n BIGINT NOT NULL)")
        connection.execute("DELETE FROM refilled")
        connection.execute("INSERT INTO refilled SELECT COUNT(*) FROM events")
        self.go.wait(10)
        return True

    def apply(self, connection, after_id: int) -> None:
        connection.execute(f"INSERT INTO refilled SELECT COUNT(*) FROM {connection.dialect.new_rows()} WHERE id > ?",
                           [after_id])


def test_a_batch_committing_while_a_worker_opens_and_refills_a_table_is_counted_once(postgres_cluster):
    """Worker A's batch is about to commit while worker B opens and rebuilds a hook's table from
    every stored event: B's open waits for A's commit (the queue locked), so the batch is in the
    rebuilt table and not folded into it again; without the wait, it committed between the
    rebuild and B's fold, which took it from the queue, so the rebuilt table never had it."""
    url = postgres_cluster.create_database(template=True)
    a = Store(url, hooks=())
    a.count()
    hook = _Refilled()
    with psycopg.connect(url, autocommit=True) as c:  # A's transaction waits at COMMIT for the test's lock
        c.execute("CREATE FUNCTION test_pause() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM pg_advisory_xact_lock_shared(7); RETURN NULL; END $$")
        c.execute("CREATE CONSTRAINT TRIGGER test_pause AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED "
                  "FOR EACH ROW EXECUTE FUNCTION test_pause()")
        c.execute("SELECT pg_advisory_lock(7)")
        inserted = threading.Thread(target=a.insert, args=((), [_llm(i) for i in range(30)]))
        inserted.start()
        assert _until(lambda: _raw(url, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'") == 1)
        b = Store(url, hooks=[hook])
        opened = threading.Thread(target=b.count)
        opened.start()
        waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        assert _until(lambda: hook.refilling or _raw(url, waiting) == 2)  # B waits for A's commit (or refills now)
        c.execute("SELECT pg_advisory_unlock(7)")
        inserted.join(10)
        hook.go.set()
        opened.join(10)
        c.execute("DROP TRIGGER test_pause ON events")
    try:
        with b.reader() as db:
            assert db.rows("SELECT SUM(n) FROM refilled") == [(30,)]
    finally:
        a.close()
        b.close()


def test_a_fold_that_would_not_wait_takes_nothing_while_another_folder_holds_the_lock(postgres_cluster):
    """One folder at a time: the folder thread's fold (``wait=False``) finds the lock held by
    another worker's fold and leaves every pending event to it, folding none; once that one is
    done, the next fold takes them all, once."""
    url = postgres_cluster.create_database(template=True)
    store = Store(url)
    try:
        store.count()  # opened (its open folds under the lock) before the lock is taken below
        assert store.insert((), [_llm(i) for i in range(100)]) == (100, 0)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))  # another worker's fold under way
            assert store.engine.fold(wait=False) == 0
            assert _raw(url, "SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending") == 100
            assert _raw(url, "SELECT COALESCE(SUM(llm_events), 0) FROM users") == 0
            other.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
        assert store.engine.fold(wait=False) == 100
        assert _raw(url, "SELECT COALESCE(SUM(llm_events), 0) FROM users") == 100
        assert store.engine.fold(wait=False) == 0
    finally:
        store.close()


class _WideReads:
    """A hook reading the fold's batch with the columns its copy lacks (as the feedback's
    look-up does), kept to plain events; it notes how many rows it read from ``events``."""

    def __init__(self) -> None:
        self.looked_up: list[int] = []

    def ensure(self, connection) -> bool:
        return False

    def apply(self, connection, after_id: int) -> None:
        plan = [row[0] for row in connection.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id, properties FROM "
            f"{connection.dialect.new_rows(wide=True)} WHERE id > ? AND kind = 'event'", (after_id,)).fetchall()]
        scans = [line for line in plan if "on events" in line]
        assert scans, plan
        self.looked_up.append(sum(0 if "never executed" in line else int(line.split("loops=")[1].rstrip(")"))
                                  for line in scans))


def test_a_folds_wide_read_of_plain_events_reads_no_llm_event_from_events(postgres_cluster):
    """The feedback's look-up of a fold's plain events reads each from ``events`` (their
    properties), and none of its LLM events: its condition on the kind applies to the fold's
    copy first (it read every LLM event of each fold, ~1.7 µs of PostgreSQL's CPU each)."""
    hook = _WideReads()
    store = Store(postgres_cluster.create_database(template=True), hooks=[hook])
    try:
        store.insert((), [_llm(i) for i in range(30)])
        store.insert([{"user_id": "u", "event": "Open", "timestamp": "2026-03-01T11:00:00+00:00",
                       "properties": {"plan": "pro"}} for _ in range(3)])
        store.count()  # a read: one fold of the 33 events
        assert hook.looked_up == [3]
    finally:
        store.close()
