"""``trubrics-otel serve | events | sessions | threads`` and the README's quickstart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import load_quickstart

from trubrics_otel.cli import main
from trubrics_otel.server import LocalServer, Store

ROOT = Path(__file__).resolve().parent.parent
KEY = {"x-api-key": "local-dev-key"}


@pytest.fixture(scope="module")
def chat_db(tmp_path_factory):
    """A database holding what the quickstart's chat app sends, through the real client."""
    db = tmp_path_factory.mktemp("chat") / "events.sqlite3"
    with LocalServer(db) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("TRUBRICS_SPOOL", str(tmp_path_factory.mktemp("spool")))  # never ~/.cache
        load_quickstart().run_chat_app(server.url)
    return db


def cli_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_events_json_and_filters(chat_db, capsys):
    events = cli_json(capsys, "events", "--db", str(chat_db))
    assert len(events) == 10
    assert events == sorted(events, key=lambda e: (e["timestamp"], e["id"]))  # oldest first
    assert {e["user_id"] for e in cli_json(capsys, "events", "--db", str(chat_db), "--user", "bob")} == {"bob"}
    assert [e["event"] for e in cli_json(capsys, "events", "--db", str(chat_db), "--event", "Sign up")] == [
        "Sign up", "Sign up"]
    recipes = cli_json(capsys, "events", "--db", str(chat_db), "--thread", "recipes-1")
    assert [e["prompt"] for e in recipes][0] == "Suggest a quick vegetarian dinner."
    assert len(cli_json(capsys, "events", "--db", str(chat_db), "--kind", "llm")) == 7
    assert len(cli_json(capsys, "events", "--db", str(chat_db), "--since", "30m")) == 5  # recipes + bob
    assert len(cli_json(capsys, "events", "--db", str(chat_db), "--until", "30m")) == 5  # alice's first visit
    assert len(cli_json(capsys, "events", "--db", str(chat_db), "--limit", "3")) == 3


def test_events_table(chat_db, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["events", "--db", str(chat_db)]) == 0
    out = capsys.readouterr().out
    header, _rule, *rows = out.splitlines()
    assert header.split()[:5] == ["TIME", "USER", "EVENT", "THREAD", "SESSION"]
    assert len(rows) == 10
    assert "Thumbs up" in out and "Prompt → Generation" in out and "RateLimitError" in out
    (thumbs,) = [row for row in rows if "Thumbs up" in row]
    assert thumbs.endswith('{"$feedback": 1}'), thumbs  # what the feedback was, not its ids


@pytest.mark.parametrize("command, rows", [("events", 10), ("sessions", 3), ("threads", 2), ("users", 2)])
def test_a_limit_beyond_what_a_database_counts_lists_everything(chat_db, capsys, command, rows):
    assert len(cli_json(capsys, command, "--db", str(chat_db), "--limit", "99999999999999999999")) == rows


def test_sessions_and_threads(chat_db, capsys):
    sessions = cli_json(capsys, "sessions", "--db", str(chat_db))
    assert sorted((s["user_id"], s["events"]) for s in sessions) == [("alice", 4), ("alice", 5), ("bob", 1)]
    assert len(cli_json(capsys, "sessions", "--db", str(chat_db), "--session-timeout", "120")) == 2
    threads = cli_json(capsys, "threads", "--db", str(chat_db))
    assert {t["thread_id"]: t["turns"] for t in threads} == {"support-1": 3, "recipes-1": 4}
    assert main(["threads", "--db", str(chat_db), "recipes-1"]) == 0
    out = capsys.readouterr().out
    assert out.index("Suggest a quick vegetarian dinner.") < out.index("Chickpea curry") < out.index("And a side dish?")
    assert "ERROR RateLimitError" in out
    assert main(["threads", "--db", str(chat_db), "no-such-thread"]) == 2  # an error, like a missing --db


def test_funnel_table_shows_the_breakdown_it_was_asked_for(chat_db, capsys):
    assert main(["funnel", "--db", str(chat_db), "--steps", "Sign up,Thumbs up", "--breakdown", "property:plan"]) == 0
    steps, breakdown = capsys.readouterr().out.strip().split("\n\n")
    header, _rule, *rows = breakdown.splitlines()
    assert header.split() == ["PROPERTY:PLAN", "SIGN", "UP", "THUMBS", "UP"]
    assert sorted(row.split() for row in rows) == [["free", "1", "0"], ["pro", "1", "1"]]  # bob, alice


def test_conversations_table_shows_seconds_as_stats_does(chat_db, capsys):
    """The table rounds durations to hundredths (``stats``' P50 S), not to the microsecond."""
    got = cli_json(capsys, "conversations", "--db", str(chat_db))
    assert main(["conversations", "--db", str(chat_db)]) == 0
    header, _rule, row = capsys.readouterr().out.split("\n\n")[0].splitlines()
    cells = dict(zip(header.split(), row.split()))
    assert cells["DURATION_P50_S"] == f"{got['duration_p50_s']:.2f}", (cells, got["duration_p50_s"])


def test_stats_table_totals_row_is_labelled_all(chat_db, capsys):
    """The totals table's one row covers the whole range: labelled "all", not "days"."""
    assert main(["stats", "--db", str(chat_db), "--by", "day"]) == 0
    header, _rule, row = capsys.readouterr().out.strip().split("\n\n")[1].splitlines()
    assert header.split()[0] == "TOTAL" and row.split()[0] == "all", row


def test_an_empty_range_does_not_say_nothing_is_stored(chat_db, capsys):
    assert main(["stats", "--db", str(chat_db), "--since", "30d", "--until", "29d"]) == 0
    out = capsys.readouterr().out
    assert "(none)" in out and "nothing stored" not in out


def test_url_mode_matches_file_mode(chat_db, capsys):
    with LocalServer(chat_db) as server:
        for argv in (["events", "--user", "alice"], ["sessions"], ["threads"], ["threads", "support-1"]):
            from_file = cli_json(capsys, *argv, "--db", str(chat_db))
            over_http = cli_json(capsys, *argv, "--url", server.url)
            assert over_http == from_file, argv
        assert len(cli_json(capsys, "events", "--url", server.url, "--since", "30m")) == 5


def test_query_without_a_database_creates_nothing(tmp_path, capsys, monkeypatch):
    """The default database (no TRUBRICS_DB) before anything was stored (an explicit --db or
    TRUBRICS_DB that does not exist is refused instead: tests/test_cli_arguments.py)."""
    monkeypatch.delenv("TRUBRICS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    db = tmp_path / "xdg" / "trubrics-otel" / "events.sqlite3"
    for command in ("events", "threads", "stats"):  # after the quickstart, which keeps its own store
        assert main([command]) == 0
        what = "events" if command == "stats" else command
        assert capsys.readouterr().out == (f"no {what} found in {db}: nothing stored there yet "
                                           "(pass --db or --url, or send events to trubrics-otel serve)\n")
    assert not (tmp_path / "xdg").exists()


def test_default_db_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUBRICS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Store().path == tmp_path / "xdg" / "trubrics-otel" / "events.sqlite3"
    assert not (tmp_path / "xdg").exists()  # nothing created before first use
    monkeypatch.setenv("TRUBRICS_DB", str(tmp_path / "chosen.sqlite3"))
    assert Store().path == tmp_path / "chosen.sqlite3"


def test_serve_as_a_child_process(tmp_path):
    db = tmp_path / "served.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-m", "trubrics_otel", "serve", "--port", "0", "--grpc-port", "0", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = child.stdout.readline()  # "trubrics-otel local server: http://127.0.0.1:NNNN  (db: …)"
        url = first.split()[3]
        assert url.startswith("http://127.0.0.1:"), first
        response = requests.post(f"{url}/publish_events", headers=KEY, timeout=10,
                                 json=[{"user_id": "u1", "event": "Sign up"}])
        assert response.status_code == 200
        assert requests.post(f"{url}/publish_events", timeout=10, json=[]).status_code == 401
        assert [e["event"] for e in Store(db).events()] == ["Sign up"]
    finally:
        child.send_signal(signal.SIGINT)
        try:
            code = child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
    assert code == 0


def _banner(tmp_path: Path, *argv: str) -> list[str]:
    """What ``serve`` prints before it serves, up to its "look at them" line; then Ctrl-C."""
    child = subprocess.Popen([sys.executable, "-m", "trubrics_otel", "serve", "--db", str(tmp_path / "b.db"), *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [child.stdout.readline().rstrip("\n")]
        while lines[-1] and "look at them" not in lines[-1]:
            lines.append(child.stdout.readline().rstrip("\n"))
        return lines
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(15)


def test_serve_stopped_by_sigterm_stops_as_ctrl_c_does(tmp_path):
    """``kill`` / ``docker stop`` send SIGTERM: serve stops cleanly (exit 0, the SQLite store
    closed, so no -wal file is left next to it), not killed mid-way by the default action."""
    db = tmp_path / "t.sqlite3"
    child = subprocess.Popen([sys.executable, "-m", "trubrics_otel", "serve", "--db", str(db), "--port", "0",
                              "--no-grpc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "look at them" not in (line := child.stdout.readline()) and line:
            pass
        child.send_signal(signal.SIGTERM)
        err = child.communicate(timeout=30)[1]
    finally:
        child.kill()
    assert child.returncode == 0 and "Traceback" not in err, err
    assert db.exists() and not Path(f"{db}-wal").exists()


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_on_ipv6_loopback_says_loopback(tmp_path):
    banner = _banner(tmp_path, "--bind", "::1", "--port", "0", "--no-grpc")
    assert banner[0].startswith("trubrics-otel local server: http://[::1]:"), banner
    assert not any("every interface" in line or "not loopback" in line for line in banner), banner


def test_serve_calls_only_port_4317_the_default(tmp_path):
    grpc = [line for line in _banner(tmp_path, "--port", "0", "--grpc-port", "0") if "OTLP/gRPC" in line]
    assert len(grpc) == 1 and "127.0.0.1:" in grpc[0], grpc
    assert not grpc[0].endswith(":4317") and "default" not in grpc[0], grpc  # a random port is nobody's default


def test_serve_reports_a_port_in_use(tmp_path, capsys):
    with LocalServer(tmp_path / "a.sqlite3", grpc_port=0) as running:
        db = str(tmp_path / "b.sqlite3")
        assert main(["serve", "--port", str(running.port), "--no-grpc", "--db", db]) == 2
        error = capsys.readouterr().err  # the address, and the option that picks another
        assert f"cannot listen on 127.0.0.1:{running.port}: Address already in use" in error
        assert "--port picks another" in error and "Errno" not in error
        # in a process of its own: grpcio's bind failure also writes a C-level line to fd 2
        done = subprocess.run([sys.executable, "-m", "trubrics_otel", "serve", "--port", "0", "--grpc-port",
                               str(running.grpc_port), "--db", db], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"trubrics-otel serve: cannot listen on 127.0.0.1:{running.grpc_port} for OTLP/gRPC: Address already"
            " in use (in use? --grpc-port picks another, 0 any free; --no-grpc turns it off)"]


def test_serve_gives_back_the_logging_it_set_up(tmp_path, capsys):
    """``main(["serve", ...])`` in a caller's own process (a test) leaves ``trubrics.server``'s
    logging as it found it: a handler left on the captured stderr broke later commands' lines."""
    import logging

    server_log = logging.getLogger("trubrics.server")
    before = (list(server_log.handlers), server_log.level, server_log.propagate)
    with LocalServer(tmp_path / "a.sqlite3", grpc_port=None) as running:
        assert main(["serve", "--port", str(running.port), "--no-grpc", "--db", str(tmp_path / "b.sqlite3")]) == 2
    assert (list(server_log.handlers), server_log.level, server_log.propagate) == before


def test_quickstart_prints_what_the_server_stored(tmp_path, capsys):
    db = tmp_path / "quickstart.sqlite3"
    assert load_quickstart().main(["--db", str(db)]) == 0
    out = capsys.readouterr().out
    for heading in ("== 3 events ==", "== 7 LLM events ==", "== 3 sessions", "== 2 threads =="):
        assert heading in out
    assert "-- thread recipes-1 (4 turns, gpt-4o) --" in out
    assert "ERROR RateLimitError: 429: rate limit reached" in out
    counts = Store(db).count()
    assert (counts["events"], counts["llm_events"], counts["users"]) == (3, 7, 2)


def test_quickstart_mistakes_are_one_line_and_exit_2(tmp_path, capsys):
    quickstart = load_quickstart()
    with pytest.raises(SystemExit) as stopped:  # argparse's own exit
        quickstart.main(["--db", str(tmp_path / "missing" / "chat.sqlite3")])
    assert stopped.value.code == 2 and not (tmp_path / "missing").exists()
    assert "the directory" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    assert quickstart.main(["--db", str(tmp_path / "notes.txt")]) == 2
    assert capsys.readouterr().err == "quickstart: --db: file is not a database\n"
    with LocalServer(tmp_path / "a.sqlite3") as running:
        assert quickstart.main(["--port", str(running.port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quickstart: cannot listen on 127.0.0.1:{running.port}") and err.count("\n") == 1


def test_quickstart_runs_as_a_script():
    """The README's first command, exactly as a user runs it."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "== 7 LLM events ==" in result.stdout
    assert "Use Greek yoghurt stirred in off the heat." in result.stdout
