"""SQLite keeps one connection per thread between calls (issue 30: opening and closing one per
call cost ~5 ms of each batch): what a user relies on must still hold.

- every batch the server acknowledged is visible to another process at once (the CLI, a
  notebook), while the server's threads keep their connections open;
- an acknowledged batch survives the server being killed (WAL + ``synchronous=NORMAL``);
- a stopped server leaves one self-contained file: every thread's connection closed, the WAL
  folded back into the database.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading

import requests

from trubrics_otel.server import LocalServer
from trubrics_otel.server.store import Store

HEADERS = {"x-api-key": "k", "Content-Type": "application/json"}


def batch(sender: int, n: int) -> bytes:
    return json.dumps([{"user_id": f"u{sender}", "event": "Click", "timestamp": "2026-05-01T10:00:00Z",
                        "properties": {"n": i}} for i in range(n)]).encode()


def count_in_another_process(path) -> int:
    code = ("import sys; from trubrics_otel.server.store import Store; "
            "print(Store(sys.argv[1]).count()['events'])")
    return int(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              check=True, timeout=60).stdout)


def start_serve(path) -> tuple[subprocess.Popen, str]:
    """A real ``trubrics-otel serve`` on ``path`` (HTTP only, any free port) and its URL."""
    server = subprocess.Popen([sys.executable, "-m", "trubrics_otel", "serve", "--db", str(path), "--port", "0",
                               "--no-grpc", "--log-level", "WARNING"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    url = next(f"http://127.0.0.1:{m.group(1)}" for line in server.stdout
               if (m := re.search(r"http://127\.0\.0\.1:(\d+)", line)))
    return server, url


def test_threads_write_at_once_and_another_process_sees_every_acknowledged_event(tmp_path):
    path = tmp_path / "events.sqlite3"
    acknowledged: list[int] = []

    def send(url: str, sender: int) -> None:
        with requests.Session() as session:
            for _ in range(5):
                response = session.post(f"{url}/publish_events", data=batch(sender, 20), headers=HEADERS, timeout=30)
                assert response.status_code == 200, response.text
                acknowledged.append(response.json()["stored"])

    with LocalServer(path) as server:
        senders = [threading.Thread(target=send, args=(server.url, k)) for k in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        assert sum(acknowledged) == 400
        assert count_in_another_process(path) == 400  # while the server still holds its connections
        assert server.store.count()["events"] == 400


def test_an_acknowledged_batch_survives_the_server_being_killed(tmp_path):
    path = tmp_path / "events.sqlite3"
    server, url = start_serve(path)
    try:
        response = requests.post(f"{url}/publish_events", data=batch(0, 50), headers=HEADERS, timeout=30)
        assert response.status_code == 200 and response.json()["stored"] == 50
    finally:
        server.send_signal(signal.SIGKILL)  # no clean shutdown: no close, no checkpoint
        server.wait(10)
    assert Store(path).count()["events"] == 50


def test_a_stopped_server_leaves_one_self_contained_file(tmp_path):
    path = tmp_path / "events.sqlite3"
    with LocalServer(path) as server:  # its handler threads each keep a connection
        def send(sender: int) -> None:
            response = requests.post(f"{server.url}/publish_events", data=batch(sender, 10), headers=HEADERS,
                                     timeout=30)
            assert response.status_code == 200
            assert requests.get(f"{server.url}/api/events", timeout=30).status_code == 200

        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    assert not (tmp_path / "events.sqlite3-wal").exists()  # every connection closed: WAL folded in
    alone = tmp_path / "copy" / "events.sqlite3"
    alone.parent.mkdir()
    shutil.copy(path, alone)  # the file by itself holds everything
    assert Store(alone).count()["events"] == 40


def test_a_long_running_writer_keeps_its_wal_bounded_and_loses_nothing(tmp_path, monkeypatch):
    # checkpoints every CHECKPOINT_BYTES (scaled down here: the real one is ~40 MB of WAL) while
    # the store stays open, so the WAL never holds all that was written
    from trubrics_otel.server.store import sqlite as engine

    monkeypatch.setattr(engine, "CHECKPOINT_BYTES", 160 * 1024)
    path = tmp_path / "events.sqlite3"
    store = Store(path)
    text = "words of a prompt " * 100  # ~1.8 KB: about two events per page
    for n in range(30):
        store.insert((), [{"user_id": f"u{n}", "prompt": text, "generation": text,
                           "properties": {"$trace_id": f"{n:032x}", "$span_id": f"{i:016x}"}} for i in range(40)])
    written = 30 * 40 * 3_600  # bytes the events alone took
    assert (tmp_path / "events.sqlite3-wal").stat().st_size < written / 3
    assert store.count()["llm_events"] == 1_200
    store.close()


def test_a_wal_grown_by_a_large_transaction_is_cut_back_after_the_next_checkpoint(tmp_path, monkeypatch):
    from trubrics_otel.server.store import sqlite as engine

    monkeypatch.setattr(engine, "CHECKPOINT_BYTES", 160 * 1024)
    monkeypatch.setattr(engine, "WAL_KEEP_BYTES", 256 * 1024)
    path = tmp_path / "events.sqlite3"
    store = Store(path)
    text = "words of a prompt " * 100
    store.insert((), [{"user_id": "u", "prompt": text, "generation": text, "properties": {}} for _ in range(1_000)])
    wal = tmp_path / "events.sqlite3-wal"
    assert wal.stat().st_size > 1024 * 1024  # one transaction: the WAL holds it whole
    store.insert((), [{"user_id": "u", "prompt": "p", "generation": "g", "properties": {}}])
    assert wal.stat().st_size <= 256 * 1024
    assert store.count()["llm_events"] == 1_001
    store.close()
