"""``trubrics-otel`` command line: one subcommand per job.

    trubrics-otel serve      # local Trubrics-compatible server (SQLite + page)
    trubrics-otel bridge     # OTLP/HTTP receiver that forwards Trubrics batches
    trubrics-otel events | sessions | threads | users | stats   # the local server's store
    trubrics-otel migrate    # copy the store, e.g. SQLite into PostgreSQL
    trubrics-otel doctor     # what is wrong with this setup, and how to fix it

Each subcommand lives in the module that owns the job; this file only wires them up.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.metadata
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from trubrics_otel import settings
from trubrics_otel.cli_args import Parser, database_setting, empty_window, nearest, plain, sqlite_failure
from trubrics_otel.logs import on_stderr

# subcommand -> module (or ``module:object``) defining ``add_arguments(parser)`` and
# ``run(args) -> int``
SUBCOMMANDS: dict[str, str] = {
    "bridge": "trubrics_otel.receive.bridge",
    "serve": "trubrics_otel.server.cli.serve:serve",
    "events": "trubrics_otel.server.cli.read:events",
    "sessions": "trubrics_otel.server.cli.read:sessions",
    "threads": "trubrics_otel.server.cli.read:threads",
    "users": "trubrics_otel.server.cli.read:users",
    "stats": "trubrics_otel.server.cli.stats",
    "migrate": "trubrics_otel.server.cli.migrate",
    "doctor": "trubrics_otel.diagnose",
    "active": "trubrics_otel.server.cli.analyses:active",
    "retention": "trubrics_otel.server.cli.analyses:retention",
    "funnel": "trubrics_otel.server.cli.analyses:funnel",
    "feedback": "trubrics_otel.server.cli.analyses:feedback",
    "conversations": "trubrics_otel.server.cli.analyses:conversations",
    "topics": "trubrics_otel.server.cli.analyses:topics",
}


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def build_parser() -> tuple[Parser, dict[str, argparse.ArgumentParser]]:
    """The command line and each subcommand's parser (what ``--help`` shows, what the docs'
    commands are checked against)."""
    parser = Parser(prog="trubrics-otel", description=plain(__doc__.splitlines()[0]))
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # not {15 names}
    subparsers = {}
    for name, target in SUBCOMMANDS.items():
        command = _load(target)
        lines = (command.__doc__ or "").strip().splitlines()
        help_text = plain(lines[0]).removeprefix(f"trubrics-otel {name}: ") if lines else ""
        help_text = help_text[:1].upper() + help_text[1:]  # a module's docstring names its command first
        subparsers[name] = sub.add_parser(name, help=help_text or None, description=help_text or None)
        command.add_arguments(subparsers[name])
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. A failure the user can fix is one line on stderr and exit code 2,
    never a traceback; output cut short by a closed pipe (``| head``) and Ctrl-C (130) end quietly."""
    parser, subparsers = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # argparse would say "the following arguments are required: command"
        print(f"trubrics-otel: give a command: {', '.join(SUBCOMMANDS)} (--help says what each does)",
              file=sys.stderr)
        return 2
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would name only "trubrics-otel", not the subcommand they were given to
        flag = unknown[0].split("=", 1)[0]
        close = nearest(flag, list(subparsers[args.command]._option_string_actions)) if flag.startswith("--") else None
        hint = f"; did you mean {close}?" if close else ""
        print(f"trubrics-otel {args.command}: unrecognized arguments: {' '.join(unknown)}{hint}", file=sys.stderr)
        raise SystemExit(2)
    if problem := empty_window(args) or database_setting(args):  # beyond one argument's check
        print(f"trubrics-otel {args.command}: {problem}", file=sys.stderr)
        raise SystemExit(2)  # as argparse does for one bad argument
    # our own process: the PostgreSQL pool's reconnect warnings would bury the one line (or
    # the server's own "database unavailable; answering 503") under its retries
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
    logging.getLogger("psycopg.pool").propagate = False
    try:
        with _one_line_logs(args.command):
            code = int(_load(SUBCOMMANDS[args.command]).run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:  # Ctrl-C while a command waits (a probe, a slow database): the shell's code
        return 130
    except Exception as exc:
        message = _explain(exc, args)
        if message is None:
            raise
        print(f"trubrics-otel {args.command}: {message}", file=sys.stderr)
        return 2


class _OneLine(logging.Formatter):
    """A record and its exception's message on one line: no traceback for a command's user."""

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        line = self._fmt % {"message": record.getMessage()} if self._fmt else record.getMessage()
        return f"{line}: {error}" if error is not None else line


@contextmanager
def _one_line_logs(command: str) -> Iterator[None]:
    """While a reading command runs: the store's warnings (a read-only file, a fold that failed
    while reading) as one line each on stderr (the library's default shows errors only, with
    their traceback). ``serve`` and ``bridge`` set up their own logs."""
    server = logging.getLogger("trubrics.server")
    if command in ("serve", "bridge") or server.handlers:
        yield
        return
    with on_stderr(server, _OneLine(f"trubrics-otel {command}: %(message)s"), logging.WARNING):
        yield


def _explain(exc: Exception, args: argparse.Namespace) -> str | None:
    """One line saying what went wrong and with which argument; None for a bug (raised)."""
    import requests

    from trubrics_otel.diagnose import unanswered

    url = getattr(args, "url", None)
    if isinstance(exc, requests.ConnectionError):
        refused = "Connection refused" in str(exc)
        return f"cannot reach {url}: " + ("connection refused (is the server running?)" if refused
                                          else unanswered(exc, url))
    if isinstance(exc, requests.Timeout):
        return f"no answer from {url} in time"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        hint = " (pass the server's --api-key)" if exc.response.status_code in (401, 403) else ""
        return f"{url} answered HTTP {exc.response.status_code}{hint}"
    from trubrics_otel.server.cli.common import UnexpectedAnswer
    from trubrics_otel.server.store import StoreError

    if isinstance(exc, UnexpectedAnswer):
        return str(exc)

    if isinstance(exc, StoreError):  # a bad --db URL, a missing extra, a database down or too new
        return f"{_db_setting(args)} {_db_path(args)}: {exc}" if hasattr(args, "db") else str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        db = _db_path(args)
        return f"cannot use the database {db}: {sqlite_failure(db, exc)}"
    if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                                                  errno.EROFS, errno.ENOENT):
        return f"cannot use the database {_db_path(args)}: {exc.strerror}: {exc.filename}"
    return None


def _db_setting(args: argparse.Namespace) -> str:
    """Where the database was named: the argument, else the variable (else the default's)."""
    if getattr(args, "db", None):
        return "--db"
    named = settings.named_store()
    return named[0].name if named else "database"


def _db_path(args: argparse.Namespace) -> str:
    """The database as given (--db, $TRUBRICS_DB_URL, $TRUBRICS_DB), a URL's password hidden."""
    from trubrics_otel.server.store import default_location, shown

    return shown(getattr(args, "db", None) or default_location())


def _version() -> str:
    try:
        return importlib.metadata.version("trubrics-otel")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
