"""``trubrics-otel migrate``: copy a store into another, e.g. the SQLite file into PostgreSQL.

::

    trubrics-otel migrate --from sqlite:///~/.local/share/trubrics-otel/events.sqlite3 \\
                          --to postgresql://trubrics@db.internal:5432/trubrics
    # copied 1000000 events (resumed after id 0)
    # check                 source     target
    # events                700000     700000    ...

Every event, LLM event and feedback event keeps its id; the sessions, users, threads,
rollups and search index are built in the target as it receives them (:mod:`.store.copy`).
Interrupted (Ctrl-C, a crash, the database restarting), run the same command again: it
resumes after the highest id copied. A target holding other events is refused. Exit 0 when
every count matches, 2 otherwise.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from trubrics_otel import cli_args as checks
from trubrics_otel.server.cli import common as cli
from trubrics_otel.server.store import Store, StoreError, shown
from trubrics_otel.server.store.copy import copy_events, source_timeout_s, verify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="PATH|URL", type=checks.database_location,
                        help="the store to copy: a SQLite path, sqlite:///path or postgresql://…")
    parser.add_argument("--to", dest="target", required=True, metavar="URL", type=checks.new_database,
                        help="the store to copy into (new, or the one an interrupted copy left)")
    parser.add_argument("--chunk", type=checks.positive_int, default=5000, help="events per transaction (default 5000)")


def run(args: argparse.Namespace) -> int:
    source = Store(args.source)
    if not source.exists():
        return _refused(f"--from {source.location}: no such database")
    target = None
    try:
        try:
            timeout_s = source_timeout_s(source)
        except sqlite3.DatabaseError as exc:  # named here, not as the default --db
            return _refused(f"--from {source.location}: {checks.sqlite_failure(args.source, exc)}")
        try:
            target = Store(args.target, session_timeout_s=timeout_s)
            if target.location == source.location:
                return _refused(f"--from and --to are the same database ({source.location})")
            if target.exists():
                target.count()  # a file that is not a database is refused before any copy
            copied = copy_events(source, target, chunk=args.chunk, progress=_progress)
        except sqlite3.DatabaseError as exc:
            # the copy reads the source as it goes: into PostgreSQL, a SQLite failure is the source's
            source_failed = target is not None and target.engine.name != "sqlite"
            side, location = ("--from", args.source) if source_failed else ("--to", args.target)
            reason = checks.sqlite_failure(location, exc) if isinstance(exc, sqlite3.OperationalError) else exc
            return _refused(f"{side} {shown(location)}: {reason}")
        counts = verify(source, target)
    finally:
        source.close()
        if target is not None:
            target.close()
    print(f"copied {copied} events from {source.location} to {target.location}")
    print(cli.format_table(["check", "source", "target", ""],
                           [[name, a, b, "" if a == b else "DIFFERS"] for name, a, b in counts]))
    if any(a != b for _, a, b in counts):
        raise StoreError("the copy differs from the source (see above)")
    return 0


def _refused(problem: str) -> int:
    print(f"trubrics-otel migrate: {problem}", file=sys.stderr)
    return 2


def _progress(copied: int, last_id: int) -> None:
    print(f"  {copied} copied (up to id {last_id})", file=sys.stderr, flush=True)
