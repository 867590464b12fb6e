"""A SQLite file the reading process cannot write (another user's, a read-only copy): every
read answers from it as it is, with a warning naming what its summary tables lack; a writer
(a server) is still refused.

Run as root (CI), the reader is another process run as ``nobody`` (``setpriv``), as root can
write any file; otherwise the file is made read-only for the test's own user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from test_store_deferred_fold import TESTS, in_another_process, pending

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
if AS_ROOT and not shutil.which("setpriv"):
    pytest.skip("running as root without setpriv to read as another user", allow_module_level=True)


def as_reader(*argv: str) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if AS_ROOT else []
    return subprocess.run([*prefix, sys.executable, *argv], capture_output=True, text=True, timeout=120)


if AS_ROOT and as_reader("-c", "import trubrics_otel.server").returncode != 0:
    # a checkout under a directory only root may enter (/root): nobody cannot run this Python
    pytest.skip("user nobody cannot import this checkout (its directory is closed to others)",
                allow_module_level=True)


@pytest.fixture
def read_only_file():
    """A file of 90 LLM events, 60 of them folded and 30 pending, that the reader cannot write,
    in a directory where it may make the WAL's side files (as in a shared /tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="trubrics-ro-"))
    folder.chmod(0o1777)
    path = folder / "events.sqlite3"
    in_another_process(
        f"import os, sys; sys.path.insert(0, {TESTS}); from test_store_deferred_fold import turns; "
        "from trubrics_otel.server import Store; s = Store(sys.argv[1]); s.insert((), turns(0, 60)); "
        "s.count(); s.insert((), turns(60, 30)); sys.stdout.flush(); os._exit(0)", path)
    assert pending(path) == 30
    import sqlite3
    with sqlite3.connect(path) as c:  # the WAL into the file: the reader finds the file alone
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    yield path
    shutil.rmtree(folder)


def test_every_read_answers_from_a_file_it_cannot_write_and_warns_what_the_summaries_lack(read_only_file):
    path = str(read_only_file)
    code = ("import logging, sys; logging.basicConfig(); logging.getLogger('trubrics').setLevel(logging.WARNING); "
            "from trubrics_otel.server import Store; s = Store(sys.argv[1]); "
            "print(s.count()['last_id'], len(s.events(limit=None)), sum(u['events'] for u in s.users())); s.close()")
    done = as_reader("-c", code, path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["90", "90", "60"]  # every event; the summaries as last folded
    assert "is read-only" in done.stderr and "the last 30 stored events" in done.stderr
    for command in ("events", "users", "sessions", "threads", "stats", "feedback", "active"):
        done = as_reader("-m", "trubrics_otel", command, "--db", path)
        assert done.returncode == 0 and done.stderr.startswith(f"trubrics-otel {command}: {path} is read-only"), \
            (command, done.stderr)
        assert "the last 30 stored events" in done.stderr and done.stderr.count("\n") == 1  # one line
    done = as_reader("-m", "trubrics_otel", "topics", "--db", path)  # fitting them would write
    assert done.returncode == 0 and "the topics as last fitted" in done.stderr, done.stderr
    assert pending(read_only_file) == 30  # nothing written


def test_a_server_is_still_refused_a_file_it_cannot_write(read_only_file):
    code = "import sys; from trubrics_otel.server import Store; Store(sys.argv[1], session_timeout_s=1800).count()"
    done = as_reader("-c", code, str(read_only_file))
    assert done.returncode != 0 and "readonly database" in done.stderr


@pytest.fixture
def read_only_directory():
    """A folded store, closed (SQLite removed its -wal and -shm), alone in a directory the
    reader cannot write: SQLite cannot make the -shm file it reads a WAL store through."""
    from trubrics_otel.server import Store

    from test_store_deferred_fold import turns

    folder = Path(tempfile.mkdtemp(prefix="trubrics-ro-dir-"))
    path = folder / "events.sqlite3"
    store = Store(path)
    store.insert([{"user_id": "alice", "event": "Sign up", "timestamp": "2026-01-01T00:00:00Z"}], turns(0, 5))
    store.close()
    assert [p.name for p in folder.iterdir()] == ["events.sqlite3"]
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(0o555)
    yield path
    folder.chmod(0o755)
    shutil.rmtree(folder)


def test_a_store_alone_in_a_directory_the_reader_cannot_write_is_read_with_a_one_line_note(read_only_directory):
    path, answers = str(read_only_directory), {}
    for command in ("events", "users", "sessions", "threads", "stats", "feedback", "active", "conversations"):
        done = as_reader("-m", "trubrics_otel", command, "--db", path, "--json")
        assert done.returncode == 0, (command, done.stderr)
        assert done.stderr == (f"trubrics-otel {command}: {path}: its directory is not writable and no process has "
                               "the store open: reading the file as it is now (a server that starts writing it "
                               "meanwhile is not seen until the next command)\n"), (command, done.stderr)
        answers[command] = json.loads(done.stdout)
    assert len(answers["events"]) == 6 and sum(u["events"] for u in answers["users"]) == 6
    assert "alice" in {u["user_id"] for u in answers["users"]} and len(answers["threads"]) == 5
    assert [p.name for p in read_only_directory.parent.iterdir()] == ["events.sqlite3"]  # nothing made there


def test_serve_without_a_session_timeout_is_refused_a_file_it_cannot_write(read_only_file):
    """``serve`` passes no session timeout unless given one (the store's is kept): it is still
    a writer, refused in one line at start, not a server answering every write with a 500."""
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if AS_ROOT else []
    server = subprocess.Popen([*prefix, sys.executable, "-m", "trubrics_otel.cli", "serve", "--port", "0",
                               "--no-grpc", "--db", str(read_only_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it serves: say what it printed
        server.kill()
        out, err = server.communicate()
        pytest.fail(f"serve started on a file it cannot write:\n{out}\n{err}")
    assert server.returncode == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "read" in err, err
    assert pending(read_only_file) == 30  # nothing written
