"""SQLite group commit: batches that arrive while another is being written share its next
transaction, and each caller still gets its own answer, only once its rows are committed.

What a user relies on: every acknowledged event is stored exactly once (a retry racing the
original counts as a duplicate), the summary tables count each event once, and a batch that
fails (in its rows, or in the work shared by the group) fails alone.
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
    """A store hook that holds the first transaction open until released (so later batches
    queue up behind it), records each transaction's new rows and can refuse a user's rows."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.transactions: list[list[str]] = []
        self.refuse: str | None = None

    def ensure(self, connection) -> None:
        pass

    def apply(self, connection, after_id: int) -> None:
        users = [r[0] for r in connection.execute("SELECT user_id FROM events WHERE id > ? ORDER BY id", [after_id])]
        if self.refuse in users:
            raise ValueError(f"refused {self.refuse}")
        self.transactions.append(users)
        if len(self.transactions) == 1:
            assert self.release.wait(30)


def run_behind_a_held_transaction(store: Store, gate: Gate, calls) -> list:
    """``calls`` (functions) in threads while the first one's transaction is held open, all
    queued, in their order, before it commits; each call's result or exception."""
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    threads[0].start()
    deadline = time.monotonic() + 30
    while not gate.transactions and time.monotonic() < deadline:
        time.sleep(0.01)
    for queued, thread in enumerate(threads[1:], 1):  # one at a time: they queue in the calls' order
        thread.start()
        while len(store.engine._queue) < queued and time.monotonic() < deadline:
            time.sleep(0.01)
    gate.release.set()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def gated(tmp_path):
    gate = Gate()
    store = Store(tmp_path / "events.sqlite3", hooks=[gate])
    yield store, gate
    gate.release.set()
    store.close()


def test_waiting_batches_share_one_transaction_and_each_gets_its_answer(gated):
    store, gate = gated
    results = run_behind_a_held_transaction(store, gate, [
        lambda: store.insert(events("a", 0, 10)),
        lambda: store.insert(events("b", 100, 10)),
        lambda: store.insert(events("c", 5, 10)),  # 5 retried from the first batch, 5 new
        lambda: store.insert(events("d", 100, 3)),  # a retry of the second batch's first three
    ])
    assert results == [(10, 0), (10, 0), (5, 5), (0, 3)]
    assert len(gate.transactions) == 2 and sorted(gate.transactions[1]) == ["b"] * 10 + ["c"] * 5
    assert store.count()["events"] == 25
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 10, "b": 10, "c": 5}


def test_a_batch_whose_rows_fail_fails_alone(gated):
    store, gate = gated
    bad = [event_row(e, 0) for e in events("bad", 200, 3)]
    bad[1] = ("not a kind", *bad[1][1:])  # refused by the table's CHECK
    results = run_behind_a_held_transaction(store, gate, [
        lambda: store.insert(events("a", 0, 5)),
        lambda: store.insert(events("b", 100, 5)),
        lambda: store.engine.insert(bad),
        lambda: store.insert(events("c", 300, 5)),
    ])
    assert results[:2] == [(5, 0), (5, 0)] and results[3] == (5, 0)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 5, "b": 5, "c": 5}
    assert sorted(gate.transactions[1]) == ["b"] * 5 + ["c"] * 5  # one transaction, the bad batch rolled back


def test_when_the_shared_work_fails_each_batch_is_tried_alone(gated):
    store, gate = gated
    gate.refuse = "poison"
    results = run_behind_a_held_transaction(store, gate, [
        lambda: store.insert(events("a", 0, 5)),
        lambda: store.insert(events("b", 100, 5)),
        lambda: store.insert(events("poison", 200, 5)),
        lambda: store.insert(events("c", 300, 5)),
    ])
    assert results[:2] == [(5, 0), (5, 0)] and results[3] == (5, 0)
    assert isinstance(results[2], ValueError)
    assert {u["user_id"]: u["events"] for u in store.users()} == {"a": 5, "b": 5, "c": 5}
    assert store.insert(events("b", 100, 5)) == (0, 5)  # stored once: a retry is a duplicate
