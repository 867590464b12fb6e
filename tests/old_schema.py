"""Stores as an older release left them: only the schema migrations before a version applied.

::

    with monkeypatch.context() as m:
        schema_before(m, 4)                      # a store made now (any engine) stops at 3
        old = Store(url)
    with sqlite_file_before(path, 9) as old:     # a SQLite file of schema 8, its write transaction open
        old.executemany(INSERT, rows)
    # committed (the derived tables' version: current) and closed; Store(path) then upgrades it
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from trubrics_otel.server.store import derived, migrations
from trubrics_otel.server.store.sqlite import SQLiteConnection


PG_FOLD_QUEUE = 7
"""PostgreSQL's ``fold_pending`` (schema 7), which this release's writes and reads need: kept in
a store made as an older one (empty: its events were folded by their own transactions)."""


def schema_before(monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """Migrations stop before ``version`` (for ``monkeypatch``'s lifetime), but PostgreSQL's
    fold queue (:data:`PG_FOLD_QUEUE`)."""
    every = migrations.steps
    monkeypatch.setattr(migrations, "steps", lambda engine: tuple(
        s for s in every(engine) if s[0] < version or (engine == "postgresql" and s[0] == PG_FOLD_QUEUE)))


@contextmanager
def sqlite_file_before(path: Path, version: int) -> Iterator[SQLiteConnection]:
    """A SQLite store file of the schema before ``version``, in one write transaction: the
    connection, to fill it as that release would have; committed and closed after."""
    with pytest.MonkeyPatch.context() as m:
        schema_before(m, version)
        old = sqlite3.connect(path, isolation_level=None, factory=SQLiteConnection)
        try:
            derived.register_functions(old)
            old.execute("BEGIN IMMEDIATE")
            migrations.apply(old, "sqlite")
            yield old
            old.execute(f"PRAGMA user_version = {derived.VERSION}")
            old.execute("COMMIT")
        finally:
            old.close()
