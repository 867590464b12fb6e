"""Several ``serve`` processes, or one with ``--workers 2``, on one database, and that database failing.

Real parts: ``trubrics-otel serve --db postgresql://…`` processes, a real throwaway
cluster (conftest's ``postgres_cluster``), HTTP over loopback. The senders behave as our
clients do: a batch is sent until it is acknowledged (200), waiting Retry-After after a 503,
and a lost answer makes them send the same batch again (to the other worker).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from analytics_data import generate
from test_server_derived import T0, TABLES, dump, random_events

from trubrics_otel.server import Store
from trubrics_otel.server.analytics import feedback_rows

KEY = {"x-api-key": "k"}


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    banner: str = ""


@contextmanager
def served(command: list[str], **popen: Any) -> Iterator[Served]:
    """A ``serve`` ``command`` on a free port, until the block ends (then SIGTERM, if running)."""
    process = subprocess.Popen([*command, "--port", "0", "--no-grpc", "--log-level", "ERROR"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        banner = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", banner)
        assert found, (banner, process.stderr.read() if process.poll() is not None else "")
        yield Served(found.group(1), process, banner)
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)  # waits, and closes the pipes


@contextmanager
def serve(db: str, *options: str, env: dict | None = None) -> Iterator[Served]:
    """A real ``trubrics-otel serve`` process on ``db`` (``options``: e.g. ``--workers 2``)."""
    with served([sys.executable, "-m", "trubrics_otel.cli", "serve", "--db", db, *options],
                env={**os.environ, **(env or {})}) as server:
        assert db.rsplit("/", 1)[-1] in server.banner  # it says which database it writes to
        yield server


def workers_of(process: subprocess.Popen) -> list[int]:
    """The serve process's children (its workers), from the kernel."""
    with open(f"/proc/{process.pid}/task/{process.pid}/children") as children:
        return [int(pid) for pid in children.read().split()]


def batches(size: int = 25) -> list[tuple[str, list[dict]]]:
    plain, llm = random_events()
    out = [("publish_events", plain[i:i + size]) for i in range(0, len(plain), size)]
    return out + [("publish_llm_events", llm[i:i + size]) for i in range(0, len(llm), size)]


def send_until_acknowledged(workers: list[str], kind: str, batch: list[dict], n: int, seen: dict) -> None:
    """As a client does: retry on 503 (after Retry-After) or a lost connection, to another worker."""
    for attempt in itertools.count():
        worker = workers[(n + attempt) % len(workers)]
        try:
            response = requests.post(f"{worker}/{kind}", json=batch, headers=KEY, timeout=30)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):  # a worker killed
            time.sleep(0.2)
            continue
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        if response.status_code == 200:
            if n % 4 == 0 and attempt == 0:  # the answer "lost": the same batch again, elsewhere
                continue
            return
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        time.sleep(0.2)  # shorter than Retry-After: the test need not wait out a restart


def ingest(workers: list[str], work: list[tuple[str, list[dict]]]) -> dict[int, int]:
    """Every batch sent until acknowledged, six at a time; how often each status came back."""
    seen: dict[int, int] = {}
    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(send_until_acknowledged, workers, kind, batch, n, seen)
                       for n, (kind, batch) in enumerate(work)]:
            future.result(timeout=120)
    return seen


def expected_tables(tmp_path) -> dict:
    plain, llm = random_events()
    reference = Store(tmp_path / "reference.sqlite3")
    reference.insert(plain, llm)
    return dump(reference)


def test_two_workers_on_one_database_store_each_event_once(tmp_path, postgres_cluster):
    db = postgres_cluster.create_database(template=True)
    with serve(db) as first, serve(db) as second:  # e.g. on two machines
        seen = ingest([first.url, second.url], batches())
    assert seen[200] > len(batches())  # retried batches were acknowledged again, as duplicates
    store = Store(db)
    plain, llm = random_events()
    counts = store.count()
    assert (counts["events"], counts["llm_events"]) == (len(plain), len(llm))  # each exactly once
    assert dump(store) == expected_tables(tmp_path)  # sessions, users, threads, rollups: no lost update
    store.close()


def test_a_database_down_then_restarted_mid_ingest_loses_nothing_and_doubles_nothing(tmp_path, postgres_cluster):
    db = postgres_cluster.create_database(template=True)
    work = batches(size=4)
    third = len(work) // 3
    with serve(db, "--workers", "2") as server:
        url = [server.url]
        ingest(url, work[:third])
        postgres_cluster.stop()  # down: ingestion and reads answer 503 + Retry-After
        kind, batch = work[third]
        down = requests.post(f"{server.url}/{kind}", json=batch, headers=KEY, timeout=30)
        assert (down.status_code, down.headers.get("Retry-After")) == (503, "1"), down.text
        assert requests.get(f"{server.url}/api/events", timeout=30).status_code == 503
        threading.Timer(1.0, postgres_cluster.start).start()
        seen = ingest(url, work[third:2 * third])  # retried until the database is back
        restart = threading.Timer(0.2, postgres_cluster.restart)  # pg_ctl restart amid the last third
        restart.start()
        seen_last = ingest(url, work[2 * third:])
        restart.join()
        # a reader that follows Retry-After gets its answers once the pools have reconnected: each
        # worker's pool on its own, backing off (1 s, 2 s, 4 s…) while the database was away, so
        # one worker may answer 503 a few seconds after the other answers 200; four answers in a
        # row (each GET lands on either worker) show both back
        answers: list[int] = []
        for _ in range(40):
            answer = requests.get(f"{server.url}/api/stats", timeout=30)
            answers.append(answer.status_code)
            assert answer.status_code in (200, 503), answer.text
            if answers[-4:] == [200] * 4:
                break
            if answer.status_code == 503:
                time.sleep(float(answer.headers.get("Retry-After", "1")))
        assert answers[-4:] == [200] * 4, answers
    store = Store(db)
    plain, llm = random_events()
    counts = store.count()
    assert (counts["events"], counts["llm_events"]) == (len(plain), len(llm)), (seen, seen_last)
    assert dump(store) == expected_tables(tmp_path)
    store.close()


def test_serve_workers_store_each_event_once_and_replace_a_killed_worker(tmp_path, db_url):
    """``serve --workers 2`` (SQLite: by $TRUBRICS_SERVE_WORKERS): concurrent clients on one port,
    a worker killed mid-ingest; every acknowledged event is stored once, the worker replaced,
    and SIGTERM stops them all."""
    work = batches(size=4)
    options, env = (("--workers", "2"), None) if "://" in db_url else ((), {"TRUBRICS_SERVE_WORKERS": "2"})
    with serve(db_url, *options, env=env) as server:
        first = workers_of(server.process)
        assert len(first) == 2
        ingest([server.url], work[:20])
        kill = threading.Timer(0.1, os.kill, (first[0], signal.SIGKILL))  # mid-ingest
        kill.start()
        ingest([server.url], work[20:])  # the other worker, then the successor, take over
        kill.join()
        for _ in range(100):  # replaced after a pause (it died young)
            now = workers_of(server.process)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and first[0] not in now and first[1] in now, (first, now)
        assert requests.get(f"{server.url}/api/stats", timeout=30).status_code == 200
        server.process.terminate()
        assert server.process.wait(timeout=30) == 0
        assert all(not os.path.exists(f"/proc/{pid}") for pid in now)  # no worker outlives the parent
    store = Store(db_url)
    plain, llm = random_events()
    counts = store.count()
    assert (counts["events"], counts["llm_events"]) == (len(plain), len(llm))
    assert dump(store) == expected_tables(tmp_path)
    store.close()


ANALYTICS = ("analytics_activity", "analytics_daily", "analytics_first", "analytics_latency",
             "analytics_feedback", "analytics_steps")
EVENT_IDS = ("id", "event_id", "turn_id", "first_id", "last_id")  # columns holding an events.id


def every_table(store: Store) -> dict:
    """The store's and the analytics' tables, each event id replaced by its (trace, span): ids
    depend on arrival order, the event they point at does not."""
    tables = {}
    with store.connection() as c:
        key = {row[0]: (row[1], row[2]) for row in c.execute("SELECT id, trace_id, span_id FROM events")}
        for table in (*TABLES, *ANALYTICS):
            columns = [d[0] for d in c.execute(f"SELECT * FROM {table} LIMIT 0").description]
            rows = [tuple(key.get(v) if name in EVENT_IDS else round(v, 9) if isinstance(v, float) else v
                          for name, v in zip(columns, row)) for row in c.execute(f"SELECT * FROM {table}")]
            tables[table] = sorted(rows, key=repr)
    return tables


def test_batches_inserted_side_by_side_fold_as_one_load(tmp_path, postgres_cluster, monkeypatch):
    """Many batches inserted at once on one PostgreSQL database (each worker's insert runs
    beside the others'; only the fold takes turns), in shuffled order, feedback often before
    the turn it names and retries overlapping: every table, the analytics' and their feedback
    links included, is that of one ordered load on SQLite (feedback looked up 2 at a time, not
    all at once)."""
    plain, llm = generate(users=30)
    for n, event in enumerate(plain):  # ids for all: a retry is stored once, rows compare by them
        event["properties"].setdefault("$trace_id", f"p{n:031x}")
        event["properties"].setdefault("$span_id", f"p{n:015x}")
    ordered = Store(tmp_path / "ordered.sqlite3")
    ordered.insert(plain, llm)
    items = [("e", e) for e in plain] + [("l", e) for e in llm]
    monkeypatch.setattr(feedback_rows, "_PER_ROUND", 2)
    random.Random(5).shuffle(items)
    work = [items[start:start + 6] + items[max(0, start - 2):start] for start in range(0, len(items), 6)]
    store = Store(postgres_cluster.create_database(template=True))

    def insert(batch: list) -> None:
        store.insert([e for k, e in batch if k == "e"], [e for k, e in batch if k == "l"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(insert, work))
    assert every_table(store) == every_table(ordered)
    assert store.count()["events"] + store.count()["llm_events"] == len(items)
    store.close()


def test_workers_stop_when_the_serve_process_is_killed(tmp_path):
    """SIGKILL leaves the parent no chance to stop its workers: they stop by themselves rather
    than keep the port as orphans."""
    with serve(str(tmp_path / "events.sqlite3"), "--workers", "2") as server:
        workers = workers_of(server.process)
        server.process.kill()
        server.process.wait(timeout=30)
        for _ in range(100):
            if not any(_running(pid) for pid in workers):
                break
            time.sleep(0.1)
        assert not any(_running(pid) for pid in workers), workers
        try:
            requests.get(f"{server.url}/api/stats", timeout=5)
            raise AssertionError("the port still answers")
        except requests.ConnectionError:
            pass


def test_ctrl_c_stops_the_workers_without_a_traceback(tmp_path):
    """Ctrl-C reaches every worker and the supervisor, which then sends them SIGTERM: a worker
    gets SIGINT and SIGTERM back to back. It stops once, cleanly: exit 0, stderr empty (the
    second signal inside the first one's stop printed a traceback in 9 stops of 10)."""
    for _ in range(3):
        with serve(str(tmp_path / "events.sqlite3"), "--workers", "2") as server:
            for pid in workers_of(server.process):
                os.kill(pid, signal.SIGINT)
                os.kill(pid, signal.SIGTERM)
            server.process.send_signal(signal.SIGINT)
            _, err = server.process.communicate(timeout=30)
        assert (server.process.returncode, err) == (0, ""), err


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by init, maybe later)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


PAUSE = 0x7465_7374  # an advisory lock key of the test's own ("test"), not one the store uses


@contextmanager
def commits_paused(url: str) -> Iterator[Callable[[int], None]]:
    """Each transaction that inserted events waits at COMMIT (a deferred constraint trigger,
    test-only, in this database) for a lock the test holds; yields ``release(n)``, which
    returns once ``n`` transactions are blocked on a lock (this one, or any the store takes)
    and lets them commit."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE FUNCTION test_pause() RETURNS trigger LANGUAGE plpgsql AS "
                  f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({PAUSE}); RETURN NULL; END $$")
        c.execute("CREATE CONSTRAINT TRIGGER test_pause AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED "
                  "FOR EACH ROW EXECUTE FUNCTION test_pause()")
        c.execute("SELECT pg_advisory_lock(%s)", (PAUSE,))

        def release(n: int) -> None:
            try:
                for _ in range(3000):  # a condition polled, not a guessed delay
                    blocked = c.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'").fetchone()[0]
                    if blocked == n:
                        break
                    time.sleep(0.01)
                assert blocked == n, f"{blocked} transactions blocked, not {n}"
            finally:  # even on failure: the paused transactions end, the test does not hang
                c.execute("SELECT pg_advisory_unlock(%s)", (PAUSE,))

        yield release


def test_feedback_on_another_users_turn_inserted_side_by_side_is_linked(tmp_path, postgres_cluster):
    """Bob's thumbs-up names Alice's LLM turn; the two batches are stored at the same moment,
    neither committed until both are blocked. They share no summary row (other users, other
    kinds, no thread on the feedback), so no row lock orders them: only the fold taking turns
    (the second waits for the first's commit) lets one see the other's row, and the feedback
    is linked to its turn as in one ordered load."""
    turn = {"user_id": "alice", "prompt": "p", "generation": "g", "thread_id": "t1", "timestamp": T0.isoformat(),
            "latency": 1.0, "properties": {"$trace_id": "a" * 32, "$span_id": "b" * 16, "model": "m"}}
    thumbs = {"user_id": "bob", "event": "Thumbs up", "timestamp": (T0 + dt.timedelta(minutes=1)).isoformat(),
              "properties": {"$feedback": 1, "$trace_id": "a" * 32, "$span_id": "c" * 16,
                             "$parent_span_id": "b" * 16}}
    ordered = Store(tmp_path / "ordered.sqlite3")
    ordered.insert([thumbs], [turn])
    url = postgres_cluster.create_database(template=True)
    store = Store(url)
    store.count()  # created before the pause: the inserts below are the batches' own
    with commits_paused(url) as release, ThreadPoolExecutor(2) as pool:
        batches = [pool.submit(store.insert, [], [turn]), pool.submit(store.insert, [thumbs], [])]
        release(2)  # one at COMMIT, the other waiting for the fold; without the lock, both folded
        assert [b.result(timeout=30) for b in batches] == [(1, 0), (1, 0)]
    with store.connection() as c:  # linked by the span it names (without the lock: by nothing)
        assert c.rows("SELECT link FROM analytics_feedback") == [("turn",)]
    assert every_table(store) == every_table(ordered)
    store.close()
    ordered.close()
