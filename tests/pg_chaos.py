"""Real processes and faults for PostgreSQL's tests (:mod:`test_store_postgres_chaos`): a ``serve``
whose workers fold often, clients sending until acknowledged and readers checking each answer
(:class:`Load`), and every promise checked after a run (:func:`check`), the derived tables
against a rebuild from ``events`` (:func:`rebuilt_tables`).

::

    with serve(url, "--workers", "2") as server:
        load = Load(server.url, batches, pace_s=0.03)
        load.when(0.5, fault)                    # once half the events are acknowledged
        load.run()
    check(Store(url), url, sent, load)
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import requests
from analytics_data import generate
from test_store_workers import KEY, served

from trubrics_otel.server import Store
from trubrics_otel.server.analytics import schema
from trubrics_otel.server.store import derived

FOLD_ROWS = 60
"""The workers' folder threads fold every this many queued events (5,000 in production): a run
of a few hundred events folds dozens of times, so a fault lands during folds too."""
_SERVE = ("import sys; from trubrics_otel.server.store import postgres; postgres.FOLD_ROWS = int(sys.argv.pop(1)); "
          "from trubrics_otel.cli import main; sys.exit(main(sys.argv[1:]))")
SKIPPED = ("analytics_meta", "analytics_topics", "analytics_prompts")  # topics: fitted lazily, not folded
TABLES = (*derived._DERIVED, *(t for t in schema.TABLES if t not in SKIPPED), "analytics_steps")


def serve(db: str, *options: str, fold_rows: int = FOLD_ROWS) -> Any:
    """``trubrics-otel serve`` whose workers fold every ``fold_rows`` queued events."""
    return served([sys.executable, "-c", _SERVE, str(fold_rows), "serve", "--db", db, *options])


def events(users: int) -> list[tuple[str, dict]]:
    """(route, event) for a generated product's users: LLM turns in threads, feedback, product
    events; every event with its own (trace, span), as our clients send them."""
    plain, llm = generate(users=users)
    for n, event in enumerate(plain):
        event["properties"].setdefault("$trace_id", f"p{n:031x}")
        event["properties"].setdefault("$span_id", f"p{n:015x}")
    return [("publish_events", e) for e in plain] + [("publish_llm_events", e) for e in llm]


def key(event: dict) -> tuple[str, str]:
    return event["properties"]["$trace_id"], event["properties"]["$span_id"]


class Load:
    """Clients sending batches until acknowledged (a 503: again after a pause; a lost
    connection: again, maybe to another worker; one acknowledged batch in four sent once more,
    as after a lost answer), and readers polling the page's APIs meanwhile, each answer's counts
    checked against what was acknowledged before it was asked."""

    READS = ("/api/stats", "/api/sessions", "/api/threads", "/api/users", "/api/events?limit=5",
             "/api/analytics")

    def __init__(self, url: str, work: list[list[tuple[str, dict]]], pace_s: float = 0.0) -> None:
        self.urls, self.work = [url], work  # batches go round them; reads go to the last
        self.pace_s = pace_s  # a sender's pause after each batch: a run long enough for faults to land in
        self.acknowledged: set[tuple[str, str]] = set()
        self.statuses: dict[int, int] = {}
        self.served: dict[str, int] = {}  # batches acknowledged, by server
        self.short: list[tuple[int, int]] = []  # (stats' events, acknowledged before the read)
        self.odd: list[tuple[str, int, str]] = []  # an answer neither 200 nor 503 (+ Retry-After)
        self.done = threading.Event()
        self._lock = threading.Lock()

    def send(self, n: int, batch: list[tuple[str, dict]]) -> None:
        for route in ("publish_events", "publish_llm_events"):
            part = [e for r, e in batch if r == route]
            if not part:
                continue
            resend = n % 4 == 0
            for attempt in itertools.count():
                url = self.urls[(n + attempt) % len(self.urls)]
                try:
                    answer = requests.post(f"{url}/{route}", json=part, headers=KEY, timeout=30)
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                    time.sleep(0.1)
                    continue
                with self._lock:
                    self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
                    if answer.status_code == 200:
                        self.acknowledged.update(key(e) for e in part)
                        self.served[url] = self.served.get(url, 0) + 1
                if answer.status_code == 200:
                    if resend:
                        resend = False
                        continue
                    time.sleep(self.pace_s)
                    break
                if answer.status_code != 503 or answer.headers.get("Retry-After") != "1":
                    self.odd.append((route, answer.status_code, answer.text[:200]))
                time.sleep(0.1)

    def read(self) -> None:
        for n in range(10**9):
            if self.done.is_set():
                return
            path = self.READS[n % len(self.READS)]
            with self._lock:
                before = len(self.acknowledged)
            try:
                answer = requests.get(f"{self.urls[-1]}{path}", timeout=30)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                time.sleep(0.05)
                continue
            if answer.status_code == 200 and path == "/api/stats":
                stats = answer.json()
                if stats["events"] + stats["llm_events"] < before:
                    self.short.append((stats["events"] + stats["llm_events"], before))
            elif answer.status_code != 200 and (answer.status_code != 503 or "Retry-After" not in answer.headers):
                self.odd.append((path, answer.status_code, answer.text[:200]))

    def run(self, senders: int = 4, readers: int = 2) -> None:
        """Send :attr:`work` (again after a run: more batches, e.g. once another server is up)."""
        self.done.clear()
        reading = [threading.Thread(target=self.read) for _ in range(readers)]
        for thread in reading:
            thread.start()
        try:
            with ThreadPoolExecutor(senders) as pool:
                for future in [pool.submit(self.send, n, batch) for n, batch in enumerate(self.work)]:
                    future.result(timeout=120)
        finally:
            self.done.set()
            for thread in reading:
                thread.join(30)

    def when(self, fraction: float, action: Any) -> threading.Thread:
        """``action()`` once ``fraction`` of the events are acknowledged (in a thread)."""
        total = sum(len(batch) for batch in self.work)

        def wait_then_act() -> None:
            while len(self.acknowledged) < fraction * total and not self.done.is_set():
                time.sleep(0.01)
            action()
        thread = threading.Thread(target=wait_then_act)
        thread.start()
        return thread


def table_rows(c: Any) -> dict[str, list[str]]:
    return {t: sorted(repr([round(v, 6) if isinstance(v, float) else v for v in row])
                      for row in c.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def rebuilt_tables(store: Store) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every derived table as folded (after a read's fold of what is pending), and as rebuilt
    from ``events`` alone (emptied and refilled by the rebuilds an upgrade runs, in a
    transaction rolled back)."""
    store.count()  # a read: what is pending folded first
    with store.engine._transaction() as c:
        folded = table_rows(c)
        assert c.execute("SELECT COUNT(*) FROM fold_pending").fetchone()[0] == 0
        timeout_us = derived.stored_timeout_us(c)
        for table in derived._DERIVED:
            c.execute(f"DELETE FROM {table}")
        derived.apply(c, 0, None)
        derived._rebuild_sessions(c, timeout_us)
        c.execute("DELETE FROM analytics_steps")
        schema.rebuild(c)
        rebuilt = table_rows(c)
        c.raw.rollback()
    return folded, rebuilt


def check(store: Store, url: str, sent: list[tuple[str, dict]], load: Load) -> None:
    """Every promise after a run: each acknowledged event stored once, nothing else stored,
    the tables those of a rebuild, every read's counts complete, every answer 200 or 503."""
    assert not load.odd, load.odd[:5]
    assert not load.short, load.short[:5]
    with psycopg.connect(url) as c:
        stored = c.execute("SELECT trace_id, span_id, COUNT(*) FROM events GROUP BY 1, 2").fetchall()
    assert [row for row in stored if row[2] != 1] == []  # nothing stored twice
    assert {(t, s) for t, s, _ in stored} == {key(e) for _, e in sent}  # every batch acknowledged in the end
    assert load.acknowledged == {key(e) for _, e in sent}
    folded, rebuilt = rebuilt_tables(store)
    for table in TABLES:
        assert folded[table] == rebuilt[table], table
    counts = store.count()
    assert counts["events"] + counts["llm_events"] == len(sent)
