"""Every subcommand refuses a bad argument before doing anything: exit code 2, exactly one line
on stderr naming the argument, nothing on stdout, never a traceback, nothing created.

The table runs the real command line (``trubrics_otel.cli.main``, the entry point's function)
in-process for speed; one row also runs the installed ``trubrics-otel`` script.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trubrics_otel import cli_args
from trubrics_otel.cli import SUBCOMMANDS, build_parser, main

MISSING_DIR = "/nonexistent-trubrics-dir/x.sqlite3"

BAD = [  # argv, the argument the one line must name
    (["serve", "--bind", "not-an-ip"], "--bind"),
    (["serve", "--log-level", "LOUD"], "--log-level"),
    (["bridge", "--log-level", "LOUD"], "--log-level"),
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--grpc-port", "-1"], "--grpc-port"),
    (["serve", "--max-body-bytes", "-5"], "--max-body-bytes"),
    (["serve", "--max-body-bytes", "0"], "--max-body-bytes"),
    (["serve", "--session-timeout", "0"], "--session-timeout"),
    (["serve", "--session-timeout", "-10"], "--session-timeout"),
    (["serve", "--session-timeout", "nan"], "--session-timeout"),
    (["serve", "--db", MISSING_DIR], "--db"),
    (["serve", "--workers", "0"], "--workers"),
    (["serve", "--workers", "two"], "--workers"),
    (["serve", "--workers", "2", "--db", MISSING_DIR], "--db"),  # refused before any worker starts
    (["events", "--limit", "0"], "--limit"),
    (["events", "--limit", "-3"], "--limit"),
    (["events", "--limit", "ten"], "--limit"),
    (["sessions", "--limit", "-3"], "--limit"),
    (["threads", "--limit", "0"], "--limit"),
    (["users", "--limit", "-1"], "--limit"),
    (["events", "--session-timeout", "-1"], "--session-timeout"),
    (["sessions", "--session-timeout", "0"], "--session-timeout"),
    (["events", "--db", "missing.sqlite3"], "--db"),
    (["sessions", "--db", "missing.sqlite3"], "--db"),
    (["threads", "--db", "missing.sqlite3"], "--db"),
    (["users", "--db", "missing.sqlite3"], "--db"),
    (["stats", "--db", "missing.sqlite3"], "--db"),
    (["events", "--url", "not-a-url"], "--url"),
    (["stats", "--url", "ftp://x"], "--url"),
    (["events", "--since", "last tuesday"], "--since"),
    (["stats", "--by", "month"], "--by"),
    (["stats", "--since", "1d", "--until", "2d"], "argument --since"),  # not an empty table, exit 0
    (["events", "--since", "1d", "--until", "2d"], "argument --since"),
    (["active", "--since", "1d", "--until", "2d"], "argument --since"),
    (["retention", "--since", "2026-02-01", "--until", "2026-01-01"], "argument --since"),
    (["funnel", "--steps", "a,b", "--since", "1d", "--until", "2d"], "argument --since"),
    (["feedback", "--since", "1d", "--until", "2d"], "argument --since"),
    (["conversations", "--since", "1d", "--until", "2d"], "argument --since"),
    (["topics", "--since", "1d", "--until", "2d"], "argument --since"),
    (["feedback", "--since", "last tuesday"], "argument --since"),  # like stats, not "feedback: since: …"
    (["conversations", "--until", "soon"], "argument --until"),
    (["funnel", "--steps", "a,b", "--within", "a week"], "argument --within"),
    (["bridge", "--host", "not-a-url"], "--host"),
    (["bridge", "--host", "ftp://x"], "--host"),
    (["bridge", "--timeout", "-1"], "--timeout"),
    (["bridge", "--client-timeout", "0"], "--client-timeout"),
    (["bridge", "--max-body", "0"], "--max-body"),
    (["bridge", "--listen", "nowhere"], "--listen"),
    (["bridge", "--grpc-listen", "127.0.0.1:70000"], "--grpc-listen"),
    (["doctor", "--host", "ftp://x"], "--host"),
    (["doctor", "--host", "http://127.0.0.1:99999"], "--host"),  # not "did not answer: InvalidURL"
    (["bridge", "--host", "http://127.0.0.1:99999"], "--host"),  # not a 503 at every export
    (["serve", "--db", "postgresql:/oops"], "--db: 'postgresql:/oops': a database URL is scheme://"),
    (["events", "--db", "postgres:user@host/db"], "--db: 'postgres:user@host/db': a database URL"),
    (["serve", "--db", "sqlite:////nonexistent-trubrics-dir/x.sqlite3"], "the directory '/nonexistent-trubrics-dir'"),
    (["events", "--db", "sqlite:///missing.sqlite3"], "--db: 'sqlite:///missing.sqlite3': no store there (the file does not exist)"),
    (["events", "--db", "mysql://u:hunter2@h/db"], "--db: 'mysql://u:***@h/db': mysql:// is not a store"),
    (["serve", "--db", "postgresql://"], "--db: 'postgresql://': a postgresql:// URL names a host or a database"),
    (["stats", "--db", "postgresql://u:hunter2@h:99999/db"], "'postgresql://u:***@h:99999/db': its port"),
    (["serve", "--db", "sqlite://x.sqlite3"], "--db: 'sqlite://x.sqlite3': expected sqlite:///relative/path"),
    (["events", "--db", "postgres:u:hunter2@h"], "--db: 'postgres:u:***@h': a database URL is scheme://"),
    (["migrate", "--from", "x.sqlite3", "--to", "postgresql:/db"], "--to: 'postgresql:/db': a database URL"),
    (["migrate", "--from", "postgres:x", "--to", "y.sqlite3"], "--from: 'postgres:x': a database URL"),
    (["migrate", "--from", "x.sqlite3", "--to", "sqlite:////nonexistent-trubrics-dir/x.sqlite3"], "argument --to"),
    (["serve", "--api-key", ""], "--api-key"),  # not "any key" with local-dev-key in the banner
    (["serve", "--api-key", "  "], "--api-key"),
    (["bridge", "--api-key", ""], "--api-key"),
    (["bridge", "--receive-key", ""], "--receive-key"),
    (["events", "--url", "http://127.0.0.1:1", "--api-key", ""], "--api-key"),
    (["funnel", "--steps", "a,b", "--within", "1e400d"], "argument --within"),  # not an OverflowError
    (["funnel", "--steps", "a,b", "--within", "-1d"], "argument --within: a duration like"),  # not "expected one argument"
    (["events", "--since", "-1d"], "argument --since: a duration ago is 0 or more"),  # not a window ahead, empty
    (["stats", "--until", "-2h"], "argument --until: a duration ago is 0 or more"),
    (["retention", "--since", "nand"], "argument --since"),
    (["events", "--limit", "-3"], "argument --limit: '-3'"),
    (["serve", "--port", "-1"], "argument --port: '-1'"),
    (["migrate", "--from", "x.sqlite3", "--to", "y.sqlite3", "--chunk", "-1"], "argument --chunk: '-1'"),
    (["migrate", "--from", "x.sqlite3", "--to", "y.sqlite3", "--chunk", "abc"], "argument --chunk: 'abc': expected"),
    (["threads", ""], "argument thread_id: empty"),  # an unset $ID: not the list of every thread
    (["events", "--user", ""], "argument --user: empty"),  # not "no events found"
    (["events", "--db", ""], "argument --db: empty"),  # an unset $DB: not "'': it is a directory"
    (["serve", "--db", " "], "argument --db: empty"),
    (["migrate", "--from", "x.sqlite3", "--to", ""], "argument --to: empty"),
    (["events", "--thread", " "], "argument --thread: empty"),
    (["sessions", "--user", ""], "argument --user: empty"),
    (["active", "--user", ""], "argument --user: empty"),  # not every user's figures
    (["stats", "--model", ""], "argument --model: empty"),
    (["feedback", "--event", ""], "argument --event: empty"),
    (["funnel", "--steps", "a,b", "--breakdown", ""], "argument --breakdown: empty"),
    (["events", "--no-such-option"], "trubrics-otel events: unrecognized arguments: --no-such-option"),
    (["stats", "--db", MISSING_DIR, "extra"], "--db"),  # the first mistake, like argparse
    (["threads", "a", "b"], "trubrics-otel threads: unrecognized arguments: b"),
    (["serve", "--foo", "--bar=1"], "trubrics-otel serve: unrecognized arguments: --foo --bar=1"),
    (["no-such-command"], "no-such-command"),
    # a typo names what it is close to (not the fifteen commands)
    (["serv"], "trubrics-otel: argument COMMAND: invalid choice: 'serv'; did you mean 'serve'?"),
    (["serve", "--prot", "1"], "trubrics-otel serve: unrecognized arguments: --prot 1; did you mean --port?"),
    (["events", "--kind", "llms"], "argument --kind: invalid choice: 'llms'; did you mean 'llm'?"),
    (["events", "--kind=LLM"], "argument --kind: invalid choice: 'LLM'; did you mean 'llm'?"),
    (["doctor", "--hots=x"], "unrecognized arguments: --hots=x; did you mean --host?"),
]


@pytest.mark.parametrize("argv, names", BAD, ids=[" ".join(argv) for argv, _ in BAD])
def test_a_bad_argument_is_one_line_and_exit_2(argv, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --db values point into an empty directory
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    out, err = capsys.readouterr()
    assert stopped.value.code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trubrics-otel") and names in lines[0], err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing created, no database, no directory
    assert not Path(MISSING_DIR).parent.exists()
    assert "hunter2" not in err  # a URL's password is never shown


MALFORMED_DB_URLS = ["mysql://u:hunter2@h/db", "postgresql://u:hunter2@", "postgres:u:hunter2@h/db",
                     "sqlite://x.sqlite3", "https://u:hunter2@db.example/db"]


@pytest.fixture
def default_store(tmp_path, monkeypatch):
    """The default file holds events: a malformed TRUBRICS_DB_URL must not be read as "use it"."""
    from trubrics_otel.server import Store

    monkeypatch.delenv("TRUBRICS_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "data" / "trubrics-otel").mkdir(parents=True)
    store = Store()
    store.insert([{"user_id": "alice", "event": "Sign up", "timestamp": "2026-01-01T00:00:00Z"}])
    store.close()
    return store.path


@pytest.mark.parametrize("value", MALFORMED_DB_URLS)
@pytest.mark.parametrize("command", [["serve", "--port", "0", "--no-grpc"], ["events"], ["stats"],
                                     ["funnel", "--steps", "a,b"], ["users"]], ids=" ".join)
def test_a_malformed_db_url_setting_is_refused_never_the_default_file(command, value, default_store,
                                                                      monkeypatch, capsys):
    monkeypatch.setenv("TRUBRICS_DB_URL", value)
    before = default_store.stat().st_mtime_ns
    with pytest.raises(SystemExit) as stopped:
        main(command)
    out, err = capsys.readouterr()
    assert stopped.value.code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"trubrics-otel {command[0]}: TRUBRICS_DB_URL="), err
    assert "is not usable" in err and "hunter2" not in err
    assert default_store.stat().st_mtime_ns == before


@pytest.mark.parametrize("command, says", [
    (["serve", "--port", "0", "--no-grpc"], "the directory '/nonexistent-trubrics-dir' does not exist"),
    (["events"], "the file does not exist"),  # a typo is not shown as an empty store
    (["funnel", "--steps", "a,b"], "the file does not exist"),
], ids=["serve", "events", "funnel"])
def test_the_db_url_setting_file_is_checked_as_db_is(command, says, default_store, monkeypatch, capsys):
    monkeypatch.setenv("TRUBRICS_DB_URL", f"sqlite:///{MISSING_DIR}")
    with pytest.raises(SystemExit) as stopped:
        main(command)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"trubrics-otel {command[0]}: TRUBRICS_DB_URL='sqlite:///{MISSING_DIR}': ") and says in err and not Path(MISSING_DIR).parent.exists()


READING_COMMANDS = [["events"], ["sessions"], ["threads"], ["threads", "t-1"], ["users"], ["stats"],
                    ["active"], ["retention"], ["funnel", "--steps", "a,b"], ["feedback"], ["conversations"],
                    ["topics"]]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_a_db_setting_naming_no_store_is_refused_not_read_as_empty(command, default_store, tmp_path,
                                                                  monkeypatch, capsys):
    """TRUBRICS_DB (a plain path) is checked as --db: a typo is one line naming it, exit 2,
    nothing created; never "no events found" from an empty store (nor the default file's)."""
    typo = tmp_path / "typo" / "events.sqlite3"
    monkeypatch.setenv("TRUBRICS_DB", str(typo))
    with pytest.raises(SystemExit) as stopped:
        main(command)
    out, err = capsys.readouterr()
    assert stopped.value.code == 2 and out == ""
    assert err == f"trubrics-otel {command[0]}: TRUBRICS_DB={str(typo)!r}: no store there (the file does not exist)\n"
    assert not typo.parent.exists()


def test_serve_creates_the_store_a_db_setting_names(tmp_path, monkeypatch):
    """serve's job is to create the store (not its directory): TRUBRICS_DB naming a new file passes."""
    import argparse

    serve = argparse.Namespace(db=None, url=None, db_check=cli_args.new_database)  # as serve parses
    monkeypatch.delenv("TRUBRICS_DB_URL", raising=False)
    monkeypatch.setenv("TRUBRICS_DB", str(tmp_path / "new.sqlite3"))
    assert cli_args.database_setting(serve) is None
    monkeypatch.setenv("TRUBRICS_DB", str(tmp_path / "none" / "new.sqlite3"))
    assert "the directory" in cli_args.database_setting(serve)


def test_a_malformed_db_url_setting_is_a_store_error_in_the_library(default_store, monkeypatch, caplog):
    from trubrics_otel.server.store import Store, StoreError

    monkeypatch.setenv("TRUBRICS_DB_URL", "mysql://u:hunter2@h/db")
    with pytest.raises(StoreError, match=r"TRUBRICS_DB_URL='mysql://u:\*\*\*@h/db' is not usable"):
        Store()
    assert "hunter2" not in caplog.text


def test_a_db_url_argument_wins_over_a_malformed_setting(default_store, monkeypatch, capsys):
    monkeypatch.setenv("TRUBRICS_DB_URL", "mysql://u:hunter2@h/db")
    assert main(["events", "--db", str(default_store), "--json"]) == 0
    assert "Sign up" in capsys.readouterr().out


def test_no_command_is_one_line_naming_the_commands(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert "give a command: bridge, serve, events" in err and "topics" in err


def test_the_command_list_says_what_each_does_once(capsys):
    """``trubrics-otel --help``: one short usage line, each command with a sentence that does
    not repeat its name ("stats  trubrics-otel stats: …")."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "usage: trubrics-otel [-h] [--version] COMMAND ...", out
    listed = {a.dest: a.help for a in build_parser()[0]._subparsers._group_actions[0]._choices_actions}
    assert set(listed) == set(SUBCOMMANDS), listed
    assert all(" ".join(h.split()) in " ".join(out.split()) for h in listed.values())  # as --help shows them
    for name, sentence in listed.items():
        assert "trubrics-otel" not in sentence.lower() and sentence[0].isupper(), (name, sentence)


def test_a_missing_database_is_named_not_shown_as_empty(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["events", "--db", "typo.sqlite3"])
    assert capsys.readouterr().err == "trubrics-otel events: argument --db: 'typo.sqlite3': no store there (the file does not exist)\n"


def test_the_installed_script_refuses_the_same_way(tmp_path):
    script = shutil.which("trubrics-otel", path=str(Path(sys.executable).parent)) or "trubrics-otel"
    done = subprocess.run([script, "serve", "--bind", "not-an-ip", "--db", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "trubrics-otel serve: argument --bind: 'not-an-ip': expected an IP address such as 127.0.0.1, "
        "0.0.0.0 (every interface) or ::1"]
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("value", ["postgresql://u@127.0.0.1/db", "sqlite:///x.db"])
def test_database_urls_pass_through_to_the_store(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.db").touch()  # sqlite:///x.db names it: a reading command needs it to exist
    assert cli_args.new_database(value) == value
    assert cli_args.existing_database(value) == value


def test_good_values_are_read_as_given(tmp_path):
    assert cli_args.positive_int("7") == 7 and cli_args.positive_number("0.5") == 0.5
    assert cli_args.log_level("debug") == "DEBUG" and cli_args.ip_address("::1") == "::1"
    assert cli_args.http_url("http://127.0.0.1:8787/") == "http://127.0.0.1:8787"
    assert cli_args.address_or_off("no") == "off" and cli_args.address("127.0.0.1:0") == "127.0.0.1:0"
    assert cli_args.new_database(str(tmp_path / "new.db")) == str(tmp_path / "new.db")


@pytest.mark.parametrize("bind, dial", [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("127.0.0.1", "127.0.0.1"),
                                        ("::1", "[::1]"), ("10.1.2.3", "10.1.2.3")])
def test_the_banner_gives_an_address_a_client_can_dial(bind, dial):
    """``serve --bind 0.0.0.0`` prints ``host="http://127.0.0.1:…"``: the SDK refuses 0.0.0.0."""
    assert cli_args.reachable_host(bind) == dial


@pytest.mark.parametrize("command", ["", "serve", "bridge", "events", "sessions", "threads", "users", "stats", "doctor"])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"] if command else ["--help"])
    out = capsys.readouterr().out
    assert stopped.value.code == 0 and out.startswith("usage: trubrics-otel")
    assert "``" not in out and ":mod:" not in out and ":class:" not in out


@pytest.mark.parametrize("bind, everywhere", [("0.0.0.0", True), ("::", True), ("[::]", True), ("::1", False),
                                              ("[::1]", False), ("127.0.0.2", False), ("10.1.2.3", False)])
def test_only_unspecified_addresses_listen_on_every_interface(bind, everywhere):
    assert cli_args.every_interface(bind) is everywhere


def test_an_empty_key_in_the_environment_is_no_key(monkeypatch):
    """``TRUBRICS_API_KEY=""`` counts as unset, like every empty variable; ``--api-key ""`` is refused."""
    from trubrics_otel import settings

    monkeypatch.setenv("TRUBRICS_API_KEY", "")
    assert settings.read(settings.API_KEY) is None
    assert cli_args.key(" k1 ") == "k1"


FILTERS = ("--since", "--until", "--user", "--model", "--event")


def _filter_help(command: list[str], capsys) -> list[str]:
    """The ``--help`` lines of the shared filters, each option with its text."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps at different columns
    return [text[text.index(f"{name} ", text.index("options:")):].split(" --", 1)[0] for name in FILTERS]


@pytest.mark.parametrize("command", [["active"], ["retention"], ["funnel"], ["feedback"], ["conversations"],
                                     ["topics"]], ids=" ".join)
def test_stats_and_every_analysis_describe_their_filters_alike(command, capsys):
    assert _filter_help(command, capsys) == _filter_help(["stats"], capsys)
