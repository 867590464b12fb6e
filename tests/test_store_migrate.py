"""``trubrics-otel migrate``: the SQLite store copied into a real PostgreSQL database, whole,
resumable after an interruption, verified."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_server_derived import dump, random_events

from trubrics_otel.server.store import Store
from trubrics_otel.server.store.copy import copy_events, source_timeout_s


class Interrupted(Exception):
    pass


def test_migrate_sqlite_to_postgresql_resumes_and_verifies(tmp_path, postgres_cluster):
    plain, llm = random_events()
    source = Store(tmp_path / "events.sqlite3", session_timeout_s=300)  # a serve --session-timeout 5 store
    for start in range(0, 400, 40):
        source.insert(plain[start // 2:start // 2 + 20], llm[start // 2:start // 2 + 20])
    source.insert(plain[200:], llm[200:])
    url = postgres_cluster.create_database(template=True)

    # a first run dies after two chunks (a crash, Ctrl-C): what it committed stays
    target = Store(url, session_timeout_s=source_timeout_s(source))
    chunks = []

    def crash_after_two(copied: int, last_id: int) -> None:
        chunks.append(last_id)
        if len(chunks) == 2:
            raise Interrupted
    with pytest.raises(Interrupted):
        copy_events(source, target, chunk=50, progress=crash_after_two)
    assert target.count()["last_id"] == chunks[-1] == 100
    with target.connection() as c:  # planner statistics gathered as the table grew, not only at the end
        assert c.execute("SELECT reltuples FROM pg_class WHERE relname = 'events'").fetchone()[0] == 100
    target.close()

    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from",
                          f"sqlite:///{tmp_path}/events.sqlite3", "--to", url, "--chunk", "64"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    total = len(plain) + len(llm)
    assert f"copied {total - 100} events" in run.stdout
    assert run.stderr.splitlines()[0] == "  64 copied (up to id 164)"  # resumed after id 100
    assert "DIFFERS" not in run.stdout and "sessions" in run.stdout

    target = Store(url)
    assert dump(target) == dump(source)  # sessions (for 5 min), users, threads, rollups: the source's
    assert [e["id"] for e in target.events(limit=None)] == [e["id"] for e in source.events(limit=None)]
    assert target.events(user="u1", limit=3) == source.events(user="u1", limit=3)
    target.insert([{"user_id": "after", "event": "New", "properties": {}}])  # ids continue after the copy
    assert target.count()["last_id"] == source.count()["last_id"] + 1
    target.close()

    again = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from",
                            str(tmp_path / "events.sqlite3"), "--to", url], capture_output=True, text=True)
    assert again.returncode == 2 and "copy into a new database" in again.stderr  # the target moved on
    assert again.stderr.count("\n") == 1


def test_migrate_from_nowhere_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from",
                          str(tmp_path / "none.sqlite3"), "--to", str(tmp_path / "copy.sqlite3")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no such database" in run.stderr


@pytest.mark.parametrize("source, target, says", [
    ("notes.txt", "copy.sqlite3", "--from {tmp}/notes.txt: file is not a database"),
    ("events.sqlite3", "notes.txt", "--to {tmp}/notes.txt: file is not a database"),
    ("events.sqlite3", "events.sqlite3", "--from and --to are the same database"),
])
def test_migrate_names_the_store_that_cannot_be_used(tmp_path, capsys, source, target, says):
    from trubrics_otel.cli import main

    (tmp_path / "notes.txt").write_text("not a database\n")
    store = Store(str(tmp_path / "events.sqlite3"))
    store.insert([{"user_id": "u1", "event": "Sign up", "properties": {}, "timestamp": "2026-03-01T09:00:00+00:00"}], [])
    store.close()
    assert main(["migrate", "--from", str(tmp_path / source), "--to", str(tmp_path / target)]) == 2
    assert capsys.readouterr().err == f"trubrics-otel migrate: {says.format(tmp=tmp_path)}" + (
        f" ({tmp_path}/events.sqlite3)\n" if "same" in says else "\n")
    assert not (tmp_path / "copy.sqlite3").exists()


def _users(url: str) -> list[str]:
    store = Store(url)
    try:
        return sorted(e["user_id"] for e in store.events(limit=None))
    finally:
        store.close()


def _sign_ups(url: str, users: str) -> None:
    store = Store(url)
    store.insert([{"user_id": u, "event": "Sign up", "properties": {},
                   "timestamp": f"2026-03-01T09:0{i}:00+00:00"} for i, u in enumerate(users)], [])
    store.close()


def test_migrate_refuses_a_target_holding_other_events(tmp_path, db_url):
    """A target with events of its own (a serve already run on it) is not taken for a resumed
    copy: copying only the source's ids above its count would lose the source's first events."""
    source = str(tmp_path / "source.sqlite3")
    _sign_ups(source, "abcde")
    _sign_ups(db_url, "xy")
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", source,
                          "--to", db_url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("trubrics-otel migrate: the target holds 2 events that are not "
                                 "the source's first 2") and "copy into a new database" in run.stderr
    assert run.stdout == "" and _users(db_url) == ["x", "y"]  # nothing written


def test_migrate_refuses_a_target_holding_other_events_under_the_same_ids(tmp_path, db_url):
    """An interrupted copy whose target then differs in one event between its first and last
    (the same count, the same two ends: another store's copy): refused in one line, nothing
    merged into it."""
    source_path = str(tmp_path / "source.sqlite3")
    _sign_ups(source_path, "abcdefg")
    source, target = Store(source_path), Store(db_url)

    def crash(copied: int, last_id: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        copy_events(source, target, chunk=4, progress=crash)  # ids 1-4 copied
    with target.connection() as t:
        t.execute("UPDATE events SET user_id = 'z' WHERE id = 2")  # autocommitted, on either engine
    source.close()
    target.close()
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", source_path,
                          "--to", db_url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr == (
        "trubrics-otel migrate: the target holds 4 events that are not the source's first 4 (ids up to 4): "
        "copy into a new database\n"), run.stderr
    assert run.stdout == "" and _users(db_url) == ["a", "c", "d", "z"]  # nothing written


def test_migrate_sqlite_to_sqlite_resumes_after_an_interruption(tmp_path):
    source_path = str(tmp_path / "source.sqlite3")
    _sign_ups(source_path, "abcdefg")
    source, target = Store(source_path), Store(str(tmp_path / "copy.sqlite3"))
    def crash(copied: int, last_id: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        copy_events(source, target, chunk=3, progress=crash)  # dies after the first chunk
    source.close()
    target.close()
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", source_path,
                          "--to", str(tmp_path / "copy.sqlite3")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "copied 4 events" in run.stdout and "DIFFERS" not in run.stdout
    assert _users(str(tmp_path / "copy.sqlite3")) == list("abcdefg")


def test_a_source_that_fails_mid_copy_is_named_and_the_target_password_never_shown(tmp_path, postgres_cluster):
    """The copy reads the source as it goes: a SQLite file damaged past its first chunk fails
    mid-copy. That is the source's failure (--from), and the target URL's password stays hidden."""
    import datetime as dt
    import os
    import sqlite3

    path = tmp_path / "damaged.sqlite3"
    source = Store(path)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for k in range(4):
        source.insert([{"user_id": f"u{i}", "event": "e", "properties": {"blob": "x" * 500, "i": i},
                        "timestamp": (start + dt.timedelta(seconds=i + k * 5000)).isoformat()} for i in range(5000)])
    source.close()
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as f:  # the later events' pages: opened and counted, broken when read
        f.seek(size // 2)
        f.write(os.urandom(size // 8))
    url = postgres_cluster.create_database().replace("@", ":hunter2secret@", 1)  # trust: any password
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", str(path), "--to", url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[-1] == f"trubrics-otel migrate: --from {path}: database disk image is malformed"
    assert "hunter2secret" not in run.stdout + run.stderr
