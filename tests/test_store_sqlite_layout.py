"""The SQLite file's layout, chosen for the write path's CPU: what a user relies on must hold
for new stores and for stores written by an earlier release."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from trubrics_otel.server.store import Store


def llm(i: int) -> dict:
    return {"user_id": f"u{i % 3}", "prompt": f"question {i} " + "words " * 300,
            "generation": f"answer {i} " + "more " * 300, "thread_id": f"t{i % 2}",
            "timestamp": "2026-05-01T10:00:00Z", "properties": {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}


def page_size(path) -> int:
    with sqlite3.connect(path) as c:
        return c.execute("PRAGMA page_size").fetchone()[0]


def test_a_new_store_uses_8_kb_pages_and_an_existing_one_keeps_its_own(tmp_path):
    """LLM rows of ~2 KB fill 8 KB pages (4 KB ones held one or two, half empty): a new file
    is made with them; a store made with SQLite's default stays as it is, fully usable."""
    new = Store(tmp_path / "new.sqlite3")
    assert new.insert((), [llm(i) for i in range(10)]) == (10, 0)
    assert page_size(new.path) == 8192
    new.close()

    old_path = tmp_path / "old.sqlite3"
    with sqlite3.connect(old_path) as c:  # as an earlier release left it: 4 KB pages, WAL
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE unrelated (x)")
    old = Store(old_path)
    assert old.insert((), [llm(i) for i in range(10)]) == (10, 0)
    assert old.insert((), [llm(i) for i in range(5, 15)]) == (5, 5)  # idempotent as ever
    assert page_size(old_path) == 4096
    assert [e["prompt"].split()[1] for e in old.thread("t1")] == [str(i) for i in range(1, 15, 2)]
    old.close()

    # what the guide says to do for 8 KB pages: migrate into a new file
    run = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "migrate", "--from", str(old_path),
                          "--to", str(tmp_path / "copy.sqlite3")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert page_size(tmp_path / "copy.sqlite3") == 8192
    copy = Store(tmp_path / "copy.sqlite3")
    assert copy.events(limit=None) == Store(old_path).events(limit=None)
    copy.close()
