"""What an analysis may ask of a database: rows for SQL, and a few engine-specific fragments.

::

    with store.connection() as connection:
        db = EngineReader(connection)
        db.rows("SELECT COUNT(*) FROM events WHERE ts_us >= ?", [since_us])   # [(42,)]
        db.dialect.month_start_us("ts_us")   # SQL for the calendar month of ts_us, in µs (UTC)

Analyses are plain functions over a :class:`Reader`; they never import an engine's driver.
SQL uses ``?`` placeholders (the PostgreSQL reader turns them into ``%s``); days and weeks
are integer arithmetic on ``ts_us`` (identical on both engines), months and JSON need the
dialect. The maintained tables (:mod:`.schema`) are written through a :class:`Writer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

DAY_US = 86_400 * 1_000_000
WEEK_US = 7 * DAY_US
MONDAY_US = 4 * DAY_US
"""1970-01-05, a Monday: weeks start on Monday 00:00 UTC."""


@dataclasses.dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between engines (text only: no driver here)."""

    name: str

    def json_text(self, column: str, key: str) -> str:
        """The ``key`` property of a JSON text column, as text (NULL when absent). ``key`` is
        inlined: callers pass constants only."""
        if "'" in key or '"' in key:
            raise ValueError(f"not a safe JSON key: {key!r}")
        if self.name == "sqlite":
            return f"json_extract({column}, '$.\"{key}\"')"
        return f"(({column})::jsonb ->> '{key}')"

    def month_start_us(self, ts_us: str) -> str:
        """The first instant (µs, UTC) of the calendar month of ``ts_us``."""
        if self.name == "sqlite":
            return (f"(CAST(strftime('%s', ({ts_us}) / 1000000, 'unixepoch', 'start of month') "
                    f"AS INTEGER) * 1000000)")
        return (f"(CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(({ts_us}) / 1000000.0) "
                f"AT TIME ZONE 'UTC')) AS BIGINT) * 1000000)")

    def new_rows(self, alias: str = "") -> str:
        """``events`` (as ``alias``) for reading a batch's new rows by ``id > ?``: SQLite otherwise
        walks a whole index to group them (``NOT INDEXED`` keeps it to the rowid range)."""
        table = f"events {alias}".strip()
        return f"{table} NOT INDEXED" if self.name == "sqlite" else table

    def least(self, a: str, b: str) -> str:
        return f"MIN({a}, {b})" if self.name == "sqlite" else f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"MAX({a}, {b})" if self.name == "sqlite" else f"GREATEST({a}, {b})"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


def bucket_us(period: str, ts_us: str, dialect: Dialect) -> str:
    """SQL for the start (µs, UTC) of the day, week (Monday) or month holding ``ts_us``."""
    if period == "day":
        return f"({ts_us} - {ts_us} % {DAY_US})"
    if period == "week":
        return f"({ts_us} - ({ts_us} - {MONDAY_US}) % {WEEK_US})"
    if period == "month":
        return dialect.month_start_us(ts_us)
    raise ValueError(f"period must be day, week or month, got {period!r}")


class Reader(Protocol):
    """A connection as analyses see it: positional rows and the engine's dialect."""

    dialect: Dialect

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Writer(Reader, Protocol):
    """A connection inside a transaction, for maintaining the analytics tables."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None: ...


class EngineReader:
    """A :class:`Writer` over a connection in the caller's transaction: a store engine's
    (``SQLiteConnection`` or ``PostgresConnection``, both taking ``?`` SQL) or a plain
    ``sqlite3`` one. The dialect follows the engine's; a plain connection is SQLite."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        engine = getattr(connection, "dialect", None)
        self.dialect = POSTGRESQL if engine is not None and engine.name == "postgresql" else SQLITE

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.connection.execute(sql, list(params)).fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(sql, list(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self.connection.executemany(sql, [list(p) for p in params])
