"""SQLite group commit: batches that arrive while another is being written share its next
transaction, and each caller still gets its own answer, only once its rows are committed.

What a user relies on: every acknowledged event is stored exactly once (a retry racing the
original counts as a duplicate), the summary tables count each event once, and a batch that
fails (in its rows, or in the work shared by the group) fails alone. The summary tables take
the events in later, in bulk (the deferred fold): a fold that fails loses nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from trubrics_otel.server.store import Store
from trubrics_otel.server.store.rows import event_row


def events(user: str, first: int, n: int) -> list[dict]:
    return [{"user_id": user, "event": "Click", "timestamp": "2026-05-01T10:00:00Z",
             "properties": {"$trace_id": "ab" * 16, "$span_id": f"{i:016x}"}} for i in range(first, first + n)]


class Gate:
    """A store hook that records the rows of each fold and can refuse a user's rows."""

    def __init__(self) -> None:
        self.folds: list[list[str]] = []
        self.refuse: str | None = None

    def ensure(self, connection) -> None:
        pass

    def apply(self, connection, after_id: int) -> None:
        users = [r[0] for r in connection.execute("SELECT user_id FROM events WHERE id > ? ORDER BY id", [after_id])]
        if self.refuse in users:
            raise ValueError(f"refused {self.refuse}")
        self.folds.append(users)


@pytest.fixture
def begun(monkeypatch) -> list[str]:
    """Every transaction begun on an engine's connections, in order (their BEGIN statements)."""
    from trubrics_otel.server.store.sqlite import SQLiteEngine

    statements: list[str] = []
    connect = SQLiteEngine._connect

    def tracing(self):
        connection = connect(self)
        connection.set_trace_callback(lambda sql: statements.append(sql) if sql.startswith("BEGIN") else None)
        return connection
    monkeypatch.setattr(SQLiteEngine, "_connect", tracing)
    return statements


def run_behind_a_held_transaction(store: Store, calls) -> list:
    """``calls`` (functions) in threads while another writer holds the write lock, all queued,
    in their order, before it lets go; each call's result or exception."""
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as error:
            results[i] = error

    store.count()  # opened (and its connection made) before the lock is held
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    deadline = time.monotonic() + 30
    with store.engine._write_lock:
        for queued, thread in enumerate(threads, 1):  # one at a time: they queue in the calls' order
            thread.start()
            while len(store.engine._queue) < queued and time.monotonic() < deadline:
                time.sleep(0.01)
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def gated(tmp_path, begun):
    gate = Gate()
    store = Store(tmp_path / "events.sqlite3", hooks=[gate])
    yield store, gate, begun
    store.close()


def test_waiting_batches_share_one_transaction_and_each_gets_its_answer(gated):
    store, gate, begun = gated
    store.insert(events("a", 0, 10))
    store.count()  # folds a
    begun.clear()
    results = run_behind_a_held_transaction(store, [
        lambda: store.insert(events("b", 100, 10)),
        lambda: store.insert(events("c", 5, 10)),  # 5 retried from the first batch, 5 new
        lambda: store.insert(events("d", 100, 3)),  # a retry of the second batch's first three
    ])
    assert results == [(10, 0), (5, 5), (0, 3)]
    assert begun == ["BEGIN IMMEDIATE"]  # one transaction for the three, nothing folded yet
    assert store.count()["events"] == 25
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 10, "b": 10, "c": 5}
    assert [sorted(rows) for rows in gate.folds] == [["a"] * 10, ["b"] * 10 + ["c"] * 5]  # one fold per read


def test_a_batch_whose_rows_fail_fails_alone(gated):
    store, gate, begun = gated
    bad = [event_row(e, 0) for e in events("bad", 200, 3)]
    bad[1] = ("not a kind", *bad[1][1:])  # refused by the table's CHECK
    results = run_behind_a_held_transaction(store, [
        lambda: store.insert(events("b", 100, 5)),
        lambda: store.engine.insert(bad),
        lambda: store.insert(events("c", 300, 5)),
    ])
    assert results[0] == (5, 0) and results[2] == (5, 0)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert {u["user_id"]: u["events"] for u in store.users()} == {"b": 5, "c": 5}
    assert begun.count("BEGIN IMMEDIATE") == 1 + 1 + 1  # the store's opening, the group, the read's fold


def test_a_fold_that_fails_keeps_every_acknowledged_event_and_the_next_read_folds_them(gated, caplog):
    """The fold runs after the batches were acknowledged: its error is logged, the events stay
    stored and pending, and the next read folds each of them once."""
    store, gate, _ = gated
    gate.refuse = "poison"
    results = [store.insert(events(user, first, 5)) for user, first in
               (("a", 0), ("poison", 200), ("b", 100))]
    assert results == [(5, 0)] * 3
    with caplog.at_level("ERROR", logger="trubrics.server"):
        assert store.users() == []  # the fold failed: nothing half-folded
    assert "could not fold" in caplog.text and "refused poison" in caplog.text
    assert store.insert(events("b", 100, 5)) == (0, 5)  # stored once: a retry is a duplicate
    gate.refuse = None
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 5, "poison": 5, "b": 5}
    assert store.count()["events"] == 15
    assert [sorted(rows) for rows in gate.folds] == [["a"] * 5 + ["b"] * 5 + ["poison"] * 5]


def test_a_groups_callers_get_their_answer_while_its_writer_folds(tmp_path, monkeypatch):
    """The fold that a group's commit sets off runs after every batch of the group is answered:
    a sender waits for its own commit, not for the summary tables."""
    from trubrics_otel.server.store import sqlite as engine

    monkeypatch.setattr(engine, "FOLD_ROWS", 10)
    folding, hold = threading.Event(), threading.Event()

    class Slow:
        def ensure(self, connection) -> None:
            pass

        def apply(self, connection, after_id: int) -> None:
            folding.set()
            assert hold.wait(30)

    store = Store(tmp_path / "events.sqlite3", hooks=[Slow()])
    store.count()
    results: dict[str, object] = {}

    def send(user: str, first: int) -> None:
        results[user] = store.insert(events(user, first, 6))

    writer, queued = (threading.Thread(target=send, args=args) for args in (("a", 0), ("b", 100)))
    with store.engine._write_lock:  # both wait: the first to write, the second in the queue
        writer.start()
        while not store.engine._writing:
            time.sleep(0.01)
        queued.start()
        while len(store.engine._queue) < 2:
            time.sleep(0.01)
    try:
        assert folding.wait(30)  # the group (12 events) committed, its writer folds them
        queued.join(30)
        assert not queued.is_alive() and results == {"b": (6, 0)}  # answered during the fold
    finally:
        hold.set()
        writer.join(30)
    assert results == {"a": (6, 0), "b": (6, 0)}
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 6, "b": 6}
    store.close()


def test_more_waiting_rows_than_a_group_holds_are_written_in_several_and_each_caller_answered(gated, monkeypatch):
    from trubrics_otel.server.store import sqlite as engine

    store, gate, begun = gated
    monkeypatch.setattr(engine, "GROUP_ROWS", 8)
    store.count()
    begun.clear()
    results = run_behind_a_held_transaction(store, [
        lambda user=user, k=k: store.insert(events(user, 100 * k, 5)) for k, user in enumerate("abcdef")])
    assert results == [(5, 0)] * 6
    assert begun == ["BEGIN IMMEDIATE"] * 3  # groups of 8 rows or more: two batches each
    assert {u["user_id"]: u["events"] for u in store.users()} == dict.fromkeys("abcdef", 5)
