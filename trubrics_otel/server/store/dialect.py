"""The few SQL fragments where SQLite and PostgreSQL disagree, in one place.

::

    c.execute(f"SELECT ... WHERE {c.dialect.contains('user_id')}", [part])
    c.execute(f"SELECT {c.dialect.json_array_agg('DISTINCT event')} FROM events")
    c.rows(f"SELECT DISTINCT {c.dialect.bucket_us('month', 'ts_us')} FROM events")
    to_pyformat("SELECT * FROM events WHERE user_id = ? AND event LIKE 'a%'")
    # -> "SELECT * FROM events WHERE user_id = %s AND event LIKE 'a%%'"

Queries (the read API's, ``stats``, every analysis) are written once, with ``?`` placeholders
and SQL both engines accept; a query asks its connection's ``dialect`` only for what differs.
:func:`to_pyformat` is the one place ``?`` becomes psycopg's ``%s``. Days and weeks are
integer arithmetic on microseconds (identical on both engines, and an index on the column
still serves a range); months and JSON need the dialect.

What a query may ask of a connection (both engines' connections are one): :class:`Reader`,
and inside a transaction :class:`Writer`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

NO_LIMIT = 2**62
"""``LIMIT ?`` for "no limit": SQLite's ``-1`` is an error in PostgreSQL, ``NULL`` in SQLite."""

HOUR_US = 3_600 * 1_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
MONDAY_US = 4 * DAY_US
"""1970-01-05, a Monday: weeks start on Monday 00:00 UTC."""

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?|%")


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """``?`` outside string literals, identifiers and comments → ``%s``; a literal ``%`` →
    ``%%`` (psycopg reads ``%`` as a placeholder's start)."""
    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%") if token[0] == "'" else token
    return _TOKENS.sub(swap, sql)


_SECONDS = r"^\s*([+]{0,1}([0-9]{1,15}([.][0-9]*){0,1}|[.][0-9]+)([eE][-+]{0,1}[0-9]{1,2}){0,1})\s*$"
"""Seconds as PostgreSQL's ``substring`` keeps them: a plain decimal, at most 1e114, never
negative, Infinity or NaN (so the cast cannot fail); no ``?`` in it, which callers count as
placeholders."""


KEYED = {"user_id": "events_by_user", "thread_id": "events_by_thread"}
"""SQLite's look-up tables of one user's and one thread's events (key, time, id), filled by its
deferred fold (:mod:`.sqlite_fold`) where PostgreSQL has indexes of ``events``."""


@dataclasses.dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"
    batch: str = ""
    """SQLite's fold: the table its statements read the pending events from (:mod:`.sqlite_fold`),
    a narrow copy of theirs; empty: ``events`` itself."""

    @property
    def not_indexed(self) -> str:
        """After a table name: SQLite's planner must scan the batch's rowid range, not an index
        (see :mod:`.derived`); PostgreSQL picks the primary-key range itself."""
        return " NOT INDEXED" if self.name == "sqlite" else ""

    def new_rows(self, alias: str = "", wide: bool = False) -> str:
        """``events`` (as ``alias``) for reading a batch's new rows by ``id > ?``; in SQLite's fold,
        its copy of them (:attr:`batch`), unless ``wide``: a statement that reads the columns the
        copy lacks (``properties``, ``prompt``, ...)."""
        if self.batch and not wide:
            return f"{self.batch} {alias}".strip()
        return f"{f'events {alias}'.strip()}{self.not_indexed}"

    def keyed(self, key: str, alias: str = "e", rows: str = "events") -> tuple[str, str]:
        """``events`` (as ``alias``) for reading one user's or one thread's (``key``: ``user_id``
        or ``thread_id``), and the alias whose ``key``, ``ts_us`` and ``id`` a query filters and
        orders by. SQLite: the look-up table :data:`KEYED` (kept by its fold, schema 009) walked
        first (``CROSS JOIN``: in its order), each event read by id from ``rows`` (``events``, or
        the fold's copy of its batch); PostgreSQL: ``events`` through its own index."""
        if self.name == "sqlite":
            return f"{KEYED[key]} k CROSS JOIN {rows} {alias} ON {alias}.id = k.id", "k"
        return f"events {alias}", alias

    def key_table(self, key: str) -> str:
        """A table of (``key``, ``ts_us``, ``id``) for each event with that key (:meth:`keyed`),
        for a look-up that reads no other column of the event."""
        return KEYED[key] if self.name == "sqlite" else "events"

    def json_array_agg(self, inner: str, filter_: str = "") -> str:
        """A JSON array (as text) of ``inner`` over the group; ``filter_`` a FILTER condition.
        PostgreSQL gives NULL over no rows where SQLite gives ``[]``: read it with ``or "[]"``."""
        where = f" FILTER (WHERE {filter_})" if filter_ else ""
        if self.name == "sqlite":
            return f"json_group_array({inner}){where}"
        return f"CAST(json_agg({inner}){where} AS TEXT)"

    def contains(self, column: str) -> str:
        """``column`` contains the parameter, ignoring case (one ``?``; no LIKE wildcards)."""
        function = "instr" if self.name == "sqlite" else "strpos"
        return f"{function}(lower({column}), lower(?)) > 0"

    def text_search(self, alias: str = "e", common: bool = False) -> str:
        """Condition: the LLM event's prompt or generation matches the words of one ``?``
        (the value from :meth:`text_query`). SQLite: the FTS5 table ``events_fts``; PostgreSQL:
        the GIN index over the event's :func:`search_words` (schema 003).
        ``common``: words that match many events, so a newest-first page is found sooner by
        walking the time index and testing each row (SQLite otherwise fetches every match by
        id and sorts them; PostgreSQL's planner walks by itself)."""
        if self.name == "sqlite":
            return f"{'+' if common else ''}{alias}.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)"
        return f"({alias}.kind = 'llm' AND {words_tsvector(alias)} @@ CAST(? AS tsquery))"

    def text_index_current(self, connection: Any) -> None:
        """Before a search: SQLite's index lags the stored events by up to a few thousand
        (:mod:`.text_index`) and takes them in now; PostgreSQL's is always current."""
        if self.name == "sqlite":
            connection.text_index_current()

    def text_matches(self) -> str:
        """Ids of LLM events matching :meth:`text_query`'s ``?``, at most ``?`` of them, read
        from the text index alone."""
        if self.name == "sqlite":
            return "SELECT rowid FROM events_fts WHERE events_fts MATCH ? LIMIT ?"
        return f"SELECT e.id FROM events e WHERE {self.text_search('e')} LIMIT ?"

    def text_query(self, text: str) -> str:
        """The words :func:`tokens` finds, all required anywhere in the event, the last a prefix,
        as quoted terms (no operator can be injected): the same answer on both engines. SQLite:
        an FTS5 query (each term one token: the index keeps no positions, so no phrase);
        PostgreSQL: a tsquery literal (not parsed again by the server)."""
        words = tokens(text)
        if self.name == "sqlite":
            words = [part for word in words for part in _fts_tokens(word)]
            if not words:
                return '""'  # no word: matches nothing
            return " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        if not words:
            return ""  # no lexeme: matches nothing
        return " & ".join([f"'{w}'" for w in words[:-1]] + [f"'{words[-1]}':*"])

    def json_text(self, column: str, key: str) -> str:
        """A top-level property of a JSON text column, as text (NULL when absent; ``key`` from
        our code, not input: inlined)."""
        if '"' in key:
            raise ValueError(f"not a safe JSON key: {key!r}")
        safe = key.replace("'", "''")
        if self.name == "sqlite":
            return f"CAST(json_extract({column}, '$.\"{safe}\"') AS TEXT)"
        return f"(CAST({column} AS jsonb) ->> '{safe}')"

    def seconds(self, column: str, key: str) -> str:
        """A top-level property holding seconds (a number, or a number's text), as a double;
        NULL for anything else ("fast", ``true``, a negative or out-of-range number), which a
        plain cast would take as 0 (SQLite) or fail the whole statement on (PostgreSQL)."""
        if self.name == "sqlite":
            return f"trubrics_seconds(json_extract({column}, '$.\"{key}\"'))"
        return f"CAST(substring({self.json_text(column, key)} from '{_SECONDS}') AS DOUBLE PRECISION)"

    def month_start_us(self, ts_us: str) -> str:
        """The first microsecond of the UTC calendar month of ``ts_us``."""
        if self.name == "sqlite":
            return (f"(CAST(strftime('%s', ({ts_us}) / 1000000, 'unixepoch', 'start of month') AS INTEGER)"
                    " * 1000000)")
        return (f"(CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(({ts_us}) / 1000000.0) "
                "AT TIME ZONE 'UTC')) AS BIGINT) * 1000000)")

    def bucket_us(self, period: str, ts_us: str) -> str:
        """SQL for the start (µs, UTC) of the hour, day, week (Monday) or month holding ``ts_us``."""
        if period == "hour":
            return f"({ts_us} - {ts_us} % {HOUR_US})"
        if period == "day":
            return f"({ts_us} - {ts_us} % {DAY_US})"
        if period == "week":
            return f"({ts_us} - ({ts_us} - {MONDAY_US}) % {WEEK_US})"
        if period == "month":
            return self.month_start_us(ts_us)
        raise ValueError(f"period must be hour, day, week or month, got {period!r}")

    def least(self, a: str, b: str) -> str:
        return f"MIN({a}, {b})" if self.name == "sqlite" else f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"MAX({a}, {b})" if self.name == "sqlite" else f"GREATEST({a}, {b})"


def words_tsvector(alias: str = "") -> str:
    """PostgreSQL's full-text document of an LLM event: its ``words`` column (the index's
    expression, schema 003), a lexeme per word, no positions (no query asks for phrases)."""
    p = f"{alias}." if alias else ""
    return f"array_to_tsvector(string_to_array({p}words, ' '))"


_WORD = re.compile(r"[^\W_]+")
_ASCII_SEPARATORS = bytes.maketrans(
    bytes(b for b in range(128) if not chr(b).isalnum()), b" " * sum(not chr(b).isalnum() for b in range(128)))
_MAX_LEXEME = 2046
"""Bytes: a longer tsvector lexeme is refused (PostgreSQL's ``to_tsvector`` skips such words too)."""
_MAX_DOCUMENT = 1_000_000
"""Bytes of distinct words kept per event: a tsvector holds at most 1 MB of lexemes."""


def tokens(text: str) -> list[str]:
    """The words of ``text`` as PostgreSQL's search stores and looks them up: runs of Unicode
    letters and digits, lowercased, as SQLite's FTS5 ``unicode61`` tokenizer splits them
    (``example.com`` is ``example`` and ``com``; PostgreSQL's own parser kept hosts, URLs,
    versions and hyphenated words whole, and costs ~4x the CPU). ASCII text, the usual case,
    in one pass of ``bytes.translate``."""
    if text.isascii():
        return text.encode().lower().translate(_ASCII_SEPARATORS).decode().split()
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=4096)
def _fts_tokens(word: str) -> tuple[str, ...]:
    """A word of :func:`tokens` as FTS5's ``unicode61`` splits it: a character Python counts as
    a letter and this SQLite's tables do not (New Tai Lue's vowel signs) would make the quoted
    word a phrase, which an index without positions refuses. Asked of SQLite itself."""
    if word.isascii() or not _phrase(word):
        return (word,)
    return tuple("".join(" " if _phrase(f"a{ch}b") else ch for ch in word).split())


_PROBE: list[Any] = []
_PROBE_LOCK = threading.Lock()


def _phrase(text: str) -> bool:
    """Whether FTS5 reads ``text`` (no ``"``) as more than one token: an empty in-memory index
    refuses it as a phrase."""
    import sqlite3

    with _PROBE_LOCK:
        if not _PROBE:
            _PROBE.append(sqlite3.connect(":memory:", check_same_thread=False))
            _PROBE[0].execute("CREATE VIRTUAL TABLE probe USING fts5(text, content='', detail=none)")
        try:
            _PROBE[0].execute("SELECT rowid FROM probe WHERE probe MATCH ?", (f'"{text}"',)).fetchall()
        except sqlite3.OperationalError:
            return True
        return False


def search_words(prompt: str | None, generation: str | None) -> str | None:
    """An LLM event's distinct :func:`tokens`, sorted (as UTF-8, PostgreSQL's order),
    space-separated: the ``words`` column PostgreSQL indexes for search (its server then neither
    parses the text nor sorts the words)."""
    text = f"{prompt or ''} {generation or ''}"
    ascii = text.isascii()
    if ascii:
        words = sorted(set(text.encode().lower().translate(_ASCII_SEPARATORS).split()))
    else:
        words = sorted({word.encode() for word in _WORD.findall(text.lower())})
    if len(text) > (_MAX_LEXEME if ascii else _MAX_LEXEME // 4):  # a word may be too long for a lexeme
        words = [word for word in words if len(word) <= _MAX_LEXEME]
    joined = b" ".join(words)
    if len(joined) > _MAX_DOCUMENT:
        joined = joined[:joined.rindex(b" ", 0, _MAX_DOCUMENT + 1)]
    return joined.decode() or None


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


class Reader(Protocol):
    """A connection as a query sees it: positional rows and the engine's dialect (both engines'
    connections, ``SQLiteConnection`` and ``PostgresConnection``, are one)."""

    dialect: Dialect

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Writer(Reader, Protocol):
    """A connection inside a transaction, for maintaining summary tables."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...
