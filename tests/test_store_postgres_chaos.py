"""PostgreSQL's deferred fold under faults, with real processes: ``serve --workers 2`` folding
often (its folder threads every few batches), clients sending until acknowledged, readers
polling the page's APIs, the database restarted (``-m immediate`` and ``-m fast``), a worker
killed with ``kill -9`` mid-run, the server stopped with SIGTERM while events are queued.

After each run: every acknowledged event stored exactly once (counted by ``(trace_id,
span_id)``), every table derived from ``events`` (sessions, users, threads, rollups, latency
histogram, the analytics' tables, funnel steps) equal to what a rebuild from ``events`` gives
(:func:`pg_chaos.rebuilt_tables`: rebuilt in a transaction rolled back), and each read's counts
holding every event acknowledged before it was sent (:mod:`pg_chaos` has the harness).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
import requests
from pg_chaos import KEY, TABLES, Load, check, events, key, rebuilt_tables, serve
from test_store_workers import PAUSE, served, workers_of

from trubrics_otel.server import Store


def test_restarts_and_a_killed_worker_mid_ingest_lose_nothing_double_nothing_and_fold_right(postgres_cluster):
    """``serve --workers 2`` and a second ``serve`` (another machine) folding every 60 queued
    events under a real load (batches going round both) and readers: the database stopped at
    once (``-m immediate``: no backend finishes its transaction) a quarter in, a worker killed
    with SIGKILL (its fold or batch under way) half-way, a fast restart at three quarters; then
    SIGTERM with events queued."""
    url = postgres_cluster.create_database(template=True)  # synchronous_commit = off, as the cluster's
    sent = events(users=40)
    work = [sent[k:k + 12] for k in range(0, len(sent), 12)]
    with serve(url, "--workers", "2") as server, serve(url) as other:
        load = Load(server.url, work, pace_s=0.03)
        load.urls.insert(0, other.url)
        pids = workers_of(server.process)

        def immediate() -> None:
            postgres_cluster.stop("immediate")
            time.sleep(2.5)  # longer than a request waits for a connection (2 s): answered 503
            postgres_cluster.start()

        faults = [load.when(0.25, immediate),
                  load.when(0.5, lambda: os.kill(pids[0], signal.SIGKILL)),
                  load.when(0.75, postgres_cluster.restart)]
        load.run()
        for fault in faults:
            fault.join(60)
        for running in (server, other):
            running.process.send_signal(signal.SIGTERM)
            assert running.process.wait(timeout=30) == 0
    assert load.statuses.get(503, 0) > 0  # the database was seen away
    assert all(load.served.get(u, 0) > 3 for u in load.urls), load.served  # both servers took batches
    store = Store(url)
    try:
        check(store, url, sent, load)
    finally:
        store.close()


def test_acknowledged_batches_survive_a_crash_of_a_database_that_commits_asynchronously(postgres_cluster):
    """A database set to ``synchronous_commit = off`` (this test cluster's setting, a common
    tuning) answers COMMIT before its WAL is written: a batch acknowledged then would be lost by a
    crash (``pg_ctl stop -m immediate``). The ingest transaction asks for its own commit to be
    written first (``local``); the folds, rebuilt from the events if lost, need not."""
    url = postgres_cluster.create_database(template=True)
    with psycopg.connect(url) as c:
        assert c.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    sent = [e for route, e in events(users=3) if route == "publish_events"][:40]
    with serve(url) as server:
        for k in range(0, len(sent), 8):
            answer = requests.post(f"{server.url}/publish_events", json=sent[k:k + 8], headers=KEY, timeout=30)
            assert answer.status_code == 200, answer.text
        postgres_cluster.stop("immediate")  # a crash: what the WAL does not hold is gone
        postgres_cluster.start()
    with psycopg.connect(url) as c:
        stored = {tuple(row) for row in c.execute("SELECT trace_id, span_id FROM events")}
    assert stored == {key(e) for e in sent}


def _pending(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT COALESCE(SUM(cardinality(ids)), 0) FROM fold_pending").fetchone()[0]


def test_sigterm_with_events_queued_folds_them_and_a_database_down_leaves_them_to_the_next_read(postgres_cluster):
    """Workers that never reached their fold threshold stopped with SIGTERM: each one's close
    folds what is queued. Stopped while the database is down: they still exit (0), promptly,
    the events left queued, and the next server's first read folds them, each once."""
    url = postgres_cluster.create_database(template=True)
    sent = events(users=8)
    half = len(sent) // 24 * 12
    with serve(url, "--workers", "2", fold_rows=10**9) as server:
        Load(server.url, [sent[k:k + 12] for k in range(0, half, 12)]).run(readers=0)
        assert _pending(url) == half
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    assert _pending(url) == 0  # folded at close, no read needed
    with serve(url, "--workers", "2", fold_rows=10**9) as server:
        load = Load(server.url, [sent[k:k + 12] for k in range(half, len(sent), 12)])
        load.run(readers=0)
        postgres_cluster.stop("fast")
        try:
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) == 0
            assert time.monotonic() - stopping < 15
        finally:
            postgres_cluster.start()
    assert _pending(url) == len(sent) - half  # acknowledged, stored, left queued
    with serve(url) as server:
        stats = requests.get(f"{server.url}/api/stats", timeout=30).json()
    assert stats["events"] + stats["llm_events"] == len(sent)
    load.acknowledged |= {key(e) for _, e in sent[:half]}
    store = Store(url)
    try:
        check(store, url, sent, load)
    finally:
        store.close()


def _folding_worker(url: str, workers: list[int]) -> int | None:
    """The worker whose connection is running a fold's statement (slowed by the test's trigger)."""
    import psutil

    with psycopg.connect(url, autocommit=True) as c:
        ports = [row[0] for row in c.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND query LIKE 'INSERT INTO users%'")]
    for pid in workers:
        try:
            if any(conn.laddr.port in ports for conn in psutil.Process(pid).net_connections("tcp")):
                return pid
        except psutil.NoSuchProcess:
            pass
    return None


def test_a_worker_killed_while_its_folder_thread_folds_leaves_its_fold_to_the_next(postgres_cluster):
    """``kill -9`` of a worker while its folder thread is inside a fold (found by its
    connection, running the fold's statement on ``users``, held there by a trigger waiting for a
    lock the test releases after the kill): the fold is rolled back whole, its events stay
    queued, and the next fold takes them, once."""
    url = postgres_cluster.create_database(template=True)
    held = psycopg.connect(url, autocommit=True)  # the lock: a fold waits in it whatever the load (no time window)
    held.execute("CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS "
                 f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({PAUSE}); RETURN NULL; END $$")
    held.execute("CREATE TRIGGER test_slow AFTER INSERT ON users FOR EACH STATEMENT EXECUTE FUNCTION test_slow()")
    held.execute("SELECT pg_advisory_lock(%s)", (PAUSE,))
    sent = events(users=25)
    half = len(sent) // 24 * 12
    killed: list[int] = []
    with held, serve(url, "--workers", "2") as server:
        load = Load(server.url, [sent[k:k + 12] for k in range(0, half, 12)])
        workers = workers_of(server.process)

        def kill_a_folder() -> None:
            try:
                deadline = time.monotonic() + 60
                while not killed and time.monotonic() < deadline:
                    pid = _folding_worker(url, workers)
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    time.sleep(0.005)
            finally:  # the fold's statement ends (in a backend whose client is gone: rolled back)
                held.execute("SELECT pg_advisory_unlock(%s)", (PAUSE,))
        killer = threading.Thread(target=kill_a_folder)
        killer.start()
        load.run(readers=0)
        killer.join(90)
        rest = Load(server.url, [sent[k:k + 12] for k in range(half, len(sent), 12)])  # the successor too
        rest.run(readers=0)
        load.acknowledged |= rest.acknowledged
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    assert killed
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TRIGGER test_slow ON users")
    store = Store(url)
    try:
        check(store, url, sent, load)
    finally:
        store.close()


def test_a_migrate_killed_mid_copy_resumes_and_the_copy_is_the_sources(tmp_path, postgres_cluster):
    """``trubrics-otel migrate`` killed with SIGKILL mid-copy (a chunk committed, its fold maybe
    not; a chunk half sent), then run again: it resumes, verifies, and the target holds each of
    the source's events once under its id, its tables those of the source and of a rebuild."""
    from test_server_derived import dump

    source = Store(tmp_path / "events.sqlite3")
    sent = events(users=30)
    for k in range(0, len(sent), 100):
        part = sent[k:k + 100]
        source.insert([e for r, e in part if r == "publish_events"], [e for r, e in part if r == "publish_llm_events"])
    url = postgres_cluster.create_database(template=True)
    migrate = [sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", f"sqlite:///{tmp_path}/events.sqlite3",
               "--to", url, "--chunk", "30"]
    first = subprocess.Popen(migrate, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while first.poll() is None and time.monotonic() < deadline:
            with psycopg.connect(url, autocommit=True) as c:
                if c.execute("SELECT COUNT(*) FROM events").fetchone()[0] >= len(sent) // 3:
                    break
            time.sleep(0.005)
        first.kill()
    finally:
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL  # killed mid-copy, not finished
    run = subprocess.run(migrate, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "DIFFERS" not in run.stdout and "copied" in run.stdout, run.stdout
    target = Store(url)
    try:
        with psycopg.connect(url) as c:
            stored = c.execute("SELECT id, trace_id, span_id FROM events ORDER BY id").fetchall()
        with source.connection() as c:
            assert stored == [tuple(row) for row in c.execute("SELECT id, trace_id, span_id FROM events ORDER BY id")]
        assert dump(target) == dump(source)
        folded, rebuilt = rebuilt_tables(target)
        for table in TABLES:
            assert folded[table] == rebuilt[table], table
    finally:
        target.close()
        source.close()


def serve_release(commit: str, db: str, directory) -> Any:
    """``serve`` of an older release (``commit``'s package, from git), e.g. the one before the
    deferred fold, folding each batch in its own transaction."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(["git", "archive", commit, "trubrics_otel"], capture_output=True, cwd=root)
    if archive.returncode:  # not a clone with its history (an unpacked release)
        pytest.skip(f"the release before needs this repository's history: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return served([sys.executable, "-m", "trubrics_otel.cli", "serve", "--db", db], cwd=directory,
                   env={**os.environ, "PYTHONPATH": str(directory)})


BEFORE_THE_QUEUE = "9dfec9a426e702ac5bdbbc1a70aef833305e65c3"
"""The release before the deferred fold (schema 6): each batch folded in its own transaction."""


def test_a_schema_6_database_upgraded_while_the_release_before_still_ingests(tmp_path, postgres_cluster):
    """The release before the deferred fold serving a schema-6 database under load; this
    release's ``serve --workers 2`` starts on it mid-run (migrating it to 7) and both take
    batches side by side (the old one folding its own inline, this one queuing), readers on this
    one: every event once, every table that of a rebuild."""
    url = postgres_cluster.create_database()  # empty: made by the old release
    sent = events(users=30)
    work = [sent[k:k + 12] for k in range(0, len(sent), 12)]
    both = len(work) * 2 // 5  # the last batches: sent once this release answers, round both servers
    with serve_release(BEFORE_THE_QUEUE, url, tmp_path) as old:
        load = Load(old.url, work[:-both], pace_s=0.1)
        servers: list[Any] = []

        def start_this_release() -> None:
            with psycopg.connect(url, autocommit=True) as c:  # the old release's schema, its events folded
                assert c.execute("SELECT MAX(version), to_regclass('fold_pending') FROM schema_version").fetchone() == (
                    6, None)
            servers.append(serve(url, "--workers", "2"))
            load.urls.append(servers[0].__enter__().url)
        starting = load.when(1 / 3, start_this_release)  # a fifth of all in: the old one ingests as this one starts
        try:
            load.run()  # the old one alone, then (once this release answers) both
            starting.join(60)
            assert len(load.urls) == 2, "this release did not start"
            load.work = work[-both:]  # however long the start took under load (seconds): the rest round both
            load.run()
        finally:
            for server in servers:
                server.__exit__(None, None, None)
        assert load.served.get(load.urls[1], 0) > 3, load.served  # both took batches
    store = Store(url)
    try:
        check(store, url, sent, load)
    finally:
        store.close()
