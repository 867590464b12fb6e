"""A pooled PostgreSQL connection speaking the store's engine-neutral API (``?`` placeholders,
rows by index or name, ``dialect``), and the settings each new connection gets.

::

    pool = ConnectionPool(url, configure=configure)        # rows by name, NUMERIC as int/float
    with pool.connection() as raw:
        PostgresConnection(raw).rows("SELECT COUNT(*) FROM events WHERE user_id = ?", ["alice"])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from trubrics_otel.server.store.dialect import POSTGRESQL, Dialect, to_pyformat


class Row(tuple):  # type: ignore[type-arg]
    """A positional row that also answers ``row["column"]``, as :class:`sqlite3.Row` does."""

    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    return _row_class(tuple(column.name for column in cursor.description or ()))


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    """One class per result shape, made once (each statement of a batch asked for one anew)."""
    return type("Row", (Row,), {"_index": {name: i for i, name in enumerate(names)}, "__slots__": ()})


class PostgresConnection:
    """One pooled connection speaking the engine-neutral API: ``?`` placeholders, rows by
    index or name, ``dialect``."""

    dialect = POSTGRESQL

    def __init__(self, connection: Any, dialect: Dialect = POSTGRESQL, prepare: bool | None = None) -> None:
        self.raw = connection
        self.dialect = dialect
        self._prepare = prepare  # psycopg's: None prepares a statement from its fifth run on a connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(to_pyformat(sql), tuple(params), prepare=self._prepare)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]


def configure(connection: Any) -> None:
    """Per connection: rows as :class:`Row`; NUMERIC (PostgreSQL's SUM of BIGINT) as int or
    float, the types SQLite gives, so results serialise to the same JSON."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return int(text) if text.lstrip("-").isdigit() else float(text)

    connection.row_factory = _row_factory
    connection.adapters.register_loader("numeric", NumberLoader)
