"""The command line's first hour: every mistake is one line and exit code 2, never a traceback.

Runs the installed ``trubrics-otel`` entry point (as a user would) against real files, real
closed ports and a real ``serve`` process on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from loopback_server import LoopbackServer, QuietHandler

from trubrics_otel.cli import main
from trubrics_otel.server import LocalServer
from trubrics_otel.server.store import Store

CLI = shutil.which("trubrics-otel", path=str(Path(sys.executable).parent)) or "trubrics-otel"


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=timeout)


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    return path


@pytest.mark.parametrize("argv, says", [
    (lambda tmp, f: ["events", "--url", _closed_port_url()], "connection refused"),
    (lambda tmp, f: ["events", "--url", "notaurl"], "expected an http:// or https:// URL"),
    (lambda tmp, f: ["events", "--db", str(f)], "file is not a database"),
    (lambda tmp, f: ["stats", "--db", str(f)], "file is not a database"),
    (lambda tmp, f: ["serve", "--port", "99999", "--db", str(tmp / "s.db")], "99999"),
    (lambda tmp, f: ["serve", "--port", "0", "--db", str(tmp)], "it is a directory"),
    (lambda tmp, f: ["serve", "--port", "0", "--db", str(f / "under-a-file.db")], "notes.txt"),
], ids=["refused url", "not a url", "events on a text file", "stats on a text file",
        "port out of range", "db is a directory", "db under a file"])
def test_mistakes_are_one_line_and_exit_2(tmp_path, not_sqlite, argv, says):
    done = _run(*argv(tmp_path, not_sqlite))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trubrics-otel ") and says in lines[0], done.stderr


def _first_line_of_bridge(argv: list[str], env: dict[str, str]) -> str:
    """The first line a bridge that starts logs; it is stopped at once."""
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    try:
        return child.stderr.readline()
    finally:
        child.terminate()
        child.wait(15)


def test_a_bridge_stopped_before_any_request_says_so_not_an_empty_dict():
    import os
    import signal

    env = {**os.environ, "TRUBRICS_API_KEY": "k"}
    child = subprocess.Popen([CLI, "bridge", "--listen", "127.0.0.1:0", "--grpc-listen", "off"], text=True,
                             stderr=subprocess.PIPE, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        assert "Bridge listening" in child.stderr.readline()
        child.send_signal(signal.SIGINT)  # Ctrl-C
        rest = child.communicate(timeout=30)[1]
    finally:
        child.kill()
    assert child.returncode == 0 and rest.splitlines()[-1].endswith("Bridge stopped: nothing received"), rest


@pytest.mark.parametrize("argv, env", [
    (["--listen", "0.0.0.0:0"], {}),
    (["--listen", "127.0.0.1:0", "--grpc-listen", "[::]:0"], {}),
    (["--listen", "127.0.0.1:0"], {"TRUBRICS_BRIDGE_LISTEN": "0.0.0.0:0"}),  # the argument wins: loopback
], ids=["http off loopback", "grpc off loopback", "argument over environment"])
def test_a_bad_bridge_setting_is_one_line_before_anything_starts(argv, env):
    """Not a log line a second later, after an INFO line about gRPC: the one line, exit 2."""
    import os

    if env:  # a good setting: the bridge starts; stop it at once
        first = _first_line_of_bridge([CLI, "bridge", *argv, "--grpc-listen", "off"], {**os.environ, **env})
        assert "Bridge listening on http://127.0.0.1:" in first
        return
    done = _run("bridge", *argv)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("trubrics-otel bridge: listening on ") and "--receive-key" in done.stderr


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "TRUBRICS_ALLOW_INSECURE=1"])
def test_the_bridge_sends_no_api_key_over_plain_http_off_loopback(allowed):
    """As the exporter: http:// to another machine would put the key on the wire readable."""
    import os

    argv = [CLI, "bridge", "--host", "http://192.0.2.7:8000", "--listen", "127.0.0.1:0", "--grpc-listen", "off"]
    env = {**os.environ, "TRUBRICS_API_KEY": "bridge-secret-key", "TRUBRICS_ALLOW_INSECURE": "1" if allowed else "0"}
    if allowed:  # the operator's explicit opt-in, as the exporter honours it: the bridge starts
        assert "forwarding to http://192.0.2.7:8000" in _first_line_of_bridge(argv, env)
        return
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("trubrics-otel bridge: http://192.0.2.7:8000: plain http:// off loopback ")
    assert "would expose the API key" in done.stderr and "bridge-secret-key" not in done.stderr


def test_version():
    done = _run("--version")
    assert done.returncode == 0 and re.fullmatch(r"trubrics-otel \d+\.\d+\.\d+\S*\n", done.stdout)


def test_an_empty_result_names_where_it_looked(tmp_path):
    db = tmp_path / "empty.db"
    Store(db).count()  # an empty database (a missing file is refused: tests/test_cli_arguments.py)
    for command in ("events", "sessions", "threads"):
        done = _run(command, "--db", str(db))
        assert done.returncode == 0 and done.stdout.strip() == f"no {command} found in {db}"


def test_output_cut_by_a_closed_pipe_ends_quietly(tmp_path):
    db = tmp_path / "busy.db"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    Store(db).insert([{"user_id": f"u{i}", "event": "e", "properties": {"i": i},
                       "timestamp": (start + dt.timedelta(seconds=i)).isoformat()} for i in range(3000)])
    done = subprocess.run(
        f"'{CLI}' events --db '{db}' --limit 3000 | head -2; echo \"status ${{PIPESTATUS[0]}}\"",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
    )
    assert done.stderr == ""  # no BrokenPipeError traceback
    assert done.stdout.splitlines()[-1] in ("status 0", "status 141")


def test_ctrl_c_while_a_command_waits_ends_quietly_with_130():
    """Ctrl-C while ``doctor`` waits for a server that never answers: exit 130, no traceback."""
    import signal
    import socket

    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUBRICS_")}
        env.update(TRUBRICS_HOST=f"http://127.0.0.1:{silent.getsockname()[1]}", TRUBRICS_API_KEY="k")
        # Ctrl-C is a KeyboardInterrupt even when pytest runs where SIGINT is ignored (a background job)
        doctor = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                  "from trubrics_otel.cli import main; sys.exit(main(['doctor']))")
        command = subprocess.Popen([sys.executable, "-c", doctor], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        connection, _ = silent.accept()  # doctor is waiting for the answer now
        command.send_signal(signal.SIGINT)
        _, stderr = command.communicate(timeout=30)
        connection.close()
    assert command.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr


def test_serve_shows_the_key_it_requires_and_logs_each_batch(tmp_path):
    server = subprocess.Popen(
        [CLI, "serve", "--port", "0", "--no-grpc", "--api-key", "team-key-1", "--db", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = [server.stdout.readline() for _ in range(2)]
        url = re.search(r"(http://127\.0\.0\.1:\d+)", banner[0]).group(1)
        assert f'Trubrics(api_key="team-key-1", host="{url}")' in banner[1]
        batch = [{"user_id": "u", "event": "e", "timestamp": "2026-01-01T00:00:00+00:00",
                  "properties": {"$trace_id": "ab" * 16, "$span_id": f"{i:016x}"}} for i in range(2)]
        for _ in range(2):  # the second time, as a retry: both are duplicates
            response = requests.post(f"{url}/publish_events", json=batch,
                                     headers={"x-api-key": "team-key-1"}, timeout=10)
            assert response.status_code == 200
        lines = _lines_within(server.stderr, 2, seconds=20)
        assert [line.split(" INFO ", 1)[1] for line in lines] == [
            "/publish_events: 2 events stored, 0 duplicates dropped",
            "/publish_events: 0 events stored, 2 duplicates dropped",
        ]
    finally:
        server.terminate()
        server.wait(10)


def _lines_within(stream, n: int, seconds: float) -> list[str]:
    """The next ``n`` lines of a child's stream, or fewer if they do not come in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in stream], daemon=True).start()
    got: list[str] = []
    end = time.monotonic() + seconds
    while len(got) < n and (left := end - time.monotonic()) > 0:
        try:
            got.append(lines.get(timeout=left))
        except queue.Empty:
            break
    return got


class _NotOurs(LoopbackServer):
    """Another web server on the port --url names: what each path prefix answers."""

    ANSWERS = {"/html404": (404, "text/html", b"<h1>Not Found</h1>"),
               "/page": (200, "text/html; charset=utf-8", b"<html>a dashboard</html>"),
               "/other": (200, "application/json", b'{"status": "ok"}'),
               "/rows": (200, "application/json", b'[{"a": 1}]'),
               "/broken": (200, "application/json", b'[{"a": '),
               "/crash": (502, "text/plain", b"bad gateway")}

    def handler(self):
        answers = self.ANSWERS

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                status, kind, body = answers["/" + self.path.split("/")[1]]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    db = tmp_path_factory.mktemp("ours") / "events.sqlite3"
    Store(db).insert([{"user_id": "u", "event": "e", "timestamp": "2026-01-01T00:00:00+00:00"}])
    with LocalServer(db) as ours, _NotOurs() as other:
        yield ours.url, other.base_url


READ_COMMANDS = [["events"], ["users"], ["sessions"], ["threads"], ["threads", "t1"], ["stats"], ["active"],
                 ["funnel", "--steps", "a,b"]]
WRONG = [("our server, a path after it", lambda ours, other: ours + "/typo", "HTTP 404"),
         ("another server's 404 page", lambda ours, other: other + "/html404", "HTTP 404 (text/html)"),
         ("another server's page", lambda ours, other: other + "/page", "HTTP 200 (text/html)"),
         ("other JSON", lambda ours, other: other + "/other", "JSON of another shape"),
         ("cut JSON", lambda ours, other: other + "/broken", "HTTP 200 (application/json)"),
         ("a proxy's 502", lambda ours, other: other + "/crash", "HTTP 502 (text/plain)")]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("url, says", [(u, s) for _, u, s in WRONG], ids=[w[0] for w in WRONG])
def test_a_url_that_is_not_our_read_api_is_one_line_never_an_empty_answer(servers, command, url, says, capsys):
    """A typo in --url, or another program on the port, is not "no events found" (exit 0)."""
    wrong = url(*servers)
    assert main([*command, "--url", wrong]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith(f"trubrics-otel {command[0]}: {wrong}"), err
    assert says in err, err


@pytest.mark.parametrize("command", [["events"], ["users"], ["sessions"], ["threads"]], ids=" ".join)
def test_rows_without_our_columns_are_named_not_a_traceback(servers, command, capsys):
    assert main([*command, "--url", servers[1] + "/rows"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"trubrics-otel {command[0]}: {servers[1]}/rows/api/{command[0]} answered rows "
                                "without our columns: not a trubrics-otel server's read API (is --url the address "
                                "serve printed, without a path?)"]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_refused_connection_is_one_line(command, capsys):
    url = _closed_port_url()
    assert main([*command, "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"trubrics-otel {command[0]}: cannot reach {url}: connection refused "
                                "(is the server running?)"]


def test_https_to_a_plain_http_server_is_named_in_words(servers, capsys):
    ours, _ = servers
    url = ours.replace("http://", "https://")
    assert main(["events", "--url", url]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"trubrics-otel events: cannot reach {url}: the TLS handshake failed "
        "(a certificate problem, or https:// to a plain-http server)"]  # not urllib3's "HTTPSConnectionPool(…"


@pytest.mark.parametrize("source", ["db", "url"])
def test_a_missing_thread_is_an_error_naming_where_it_looked(servers, tmp_path, source, capsys):
    db = tmp_path / "one.sqlite3"
    Store(db).insert([{"user_id": "u", "event": "e"}])
    where = str(db) if source == "db" else servers[0]
    assert main(["threads", "no-such-thread", f"--{source}", where]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"trubrics-otel threads: no thread 'no-such-thread' in {where}\n"


def test_a_query_our_server_refuses_is_shown_with_its_reason(servers, capsys):
    assert main(["funnel", "--steps", "a", "--url", servers[0]]) == 2
    assert capsys.readouterr().err == (f"trubrics-otel funnel: {servers[0]} refused the query: a funnel needs 2 to 10 "
                                       "non-empty steps, got ['a']\n")


UNPRIVILEGED = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


@pytest.mark.skipif(bool(UNPRIVILEGED) and not shutil.which("setpriv"), reason="root without setpriv: no permission applies")
@pytest.mark.parametrize("command, names", [
    (["events", "--db", "{locked}"], "cannot use the database {locked}: permission denied: this user may not read and write it"),
    (["serve", "--port", "0", "--no-grpc", "--db", "{readonly}/new.sqlite3"],
     "cannot use the database {readonly}/new.sqlite3: permission denied: this user may not create files in {readonly}"),
    (["migrate", "--from", "{good}", "--to", "{readonly}/copy.sqlite3"],  # not the default database
     "--to {readonly}/copy.sqlite3: permission denied: this user may not create files in {readonly}"),
    (["migrate", "--from", "{locked}", "--to", "{good}.copy"], "--from {locked}: permission denied"),
], ids=["events: unreadable file", "serve: unwritable directory", "migrate: unwritable target", "migrate: unreadable source"])
def test_a_database_this_user_may_not_use_is_named_with_the_reason(tmp_path, command, names):
    """SQLite says "unable to open database file" for both; the line says which permission is
    missing, on the database the command was given. Run unprivileged (root drops the
    capabilities that override file modes)."""
    good, locked, readonly = tmp_path / "good.sqlite3", tmp_path / "locked.sqlite3", tmp_path / "ro"
    for path in (good, locked):
        store = Store(path)
        store.insert([{"user_id": "u", "event": "e", "timestamp": "2026-01-01T00:00:00+00:00"}])
        store.close()
    locked.chmod(0)
    readonly.mkdir(mode=0o555)
    paths = {"good": good, "locked": locked, "readonly": readonly}
    argv = [part.format(**paths) for part in command]
    env = {**os.environ, "HOME": str(tmp_path / "home")}  # no default database to blame instead
    done = subprocess.run([*UNPRIVILEGED, CLI, *argv], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and done.stdout == "", done
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"trubrics-otel {command[0]}: {names.format(**paths)}"), line


@pytest.fixture
def folded_store(tmp_path: Path) -> Path:
    """A closed store with nothing pending and nothing to migrate: its open writes nothing."""
    path = tmp_path / "store" / "events.sqlite3"
    path.parent.mkdir()
    store = Store(path)
    store.insert([{"user_id": "u", "event": "e", "timestamp": "2026-01-01T00:00:00+00:00"}])
    store.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["events.sqlite3"]  # no -wal, no -shm
    yield path
    path.parent.chmod(0o755)


@pytest.mark.skipif(bool(UNPRIVILEGED) and not shutil.which("setpriv"), reason="root without setpriv: no permission applies")
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["serve", "serve --workers"])
@pytest.mark.parametrize("locked, missing", [
    ("file", "may not read and write it"),
    ("directory", "may not create files in {dir}"),  # WAL: the -wal and -shm cannot be made
    ("shm", "may not read and write {path}-shm"),  # made read-only (as the file was) by a reader
], ids=["read-only file", "writable file in a read-only directory", "read-only -shm left by a reader"])
def test_serve_is_refused_a_store_it_cannot_write_even_when_its_open_writes_nothing(folded_store, locked, missing,
                                                                                     workers):
    """It used to start and answer every ingested batch with a 500 (a traceback in its log).
    The reading commands still read the same file, writing nothing."""
    (folded_store if locked != "directory" else folded_store.parent).chmod(0o444 if locked != "directory" else 0o555)
    if locked == "shm":  # a reading command while the file was read-only: SQLite made them so, and kept them
        subprocess.run([*UNPRIVILEGED, CLI, "events", "--db", str(folded_store)], capture_output=True, timeout=60)
        folded_store.chmod(0o644)
    before = folded_store.read_bytes()
    server = subprocess.Popen([*UNPRIVILEGED, CLI, "serve", "--port", "0", "--no-grpc", *workers, "--db",
                               str(folded_store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"serve started on a store it cannot write: {server.communicate()}")
    assert server.returncode == 2 and out == "", (out, err)
    (line,) = err.splitlines()
    assert line.startswith(f"trubrics-otel serve: cannot use the database {folded_store}: permission denied: "
                           f"this user {missing.format(dir=folded_store.parent, path=folded_store)} ("), line
    answers = {}
    for command in ("events", "stats"):
        done = subprocess.run([*UNPRIVILEGED, CLI, command, "--db", str(folded_store), "--json"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
        answers[command] = json.loads(done.stdout)
    assert [e["user_id"] for e in answers["events"]] == ["u"] and answers["stats"]
    assert folded_store.read_bytes() == before


@pytest.mark.parametrize("command", [["events"], ["stats"], ["serve", "--port", "0", "--no-grpc"]])
def test_a_fifo_given_as_the_database_is_one_line_not_a_wait(tmp_path, command):
    fifo = tmp_path / "events.sqlite3"
    os.mkfifo(fifo)
    done = _run(*command, "--db", str(fifo), timeout=30)
    assert done.returncode == 2 and done.stderr == (f"trubrics-otel {command[0]}: cannot use the database {fifo}: "
                                                    "it is not a regular file\n"), done.stderr
