"""Read queries for the page and the CLI: filter, search, page, look up one thing.

::

    with store.connection() as c:
        page = event_page(c, EventFilter(user="alice", q="refund"), limit=50, sessions=lookup)
        page["events"], page["next"]          # next: a cursor for the following (older) page
        user_profile(c, "alice", sessions=lookup)
        trace(c, "4bf92f3577b34da6a3ce929d0e0e4736")

Every list is newest first and pages with a keyset cursor (``"<ts_us>:<id>"``), so page
500 costs what page 1 does. Lists read the derived tables (:mod:`.store.derived`); events read
``events`` through its indexes; search reads the full-text index over prompts and generations.
The SQL is the same on both engines; what differs comes from ``c.dialect`` (:mod:`.store.dialect`).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.server.analytics.conversations import title_sql
from trubrics_otel.server.store.derived import numbered_sessions
from trubrics_otel.server.store.dialect import NO_LIMIT
from trubrics_otel.server.times import iso
from trubrics_otel.server.trees import span_tree

Connection = Any
"""A store connection, either engine's (:meth:`.store.Store.connection`): ``execute`` returns rows
read by column name, ``dialect`` says what differs."""
Row = Any
"""One of its rows: ``row["column"]``."""


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """Events matching every field given. ``event`` matches the event name, and for LLM events
    also the prompt's; ``q`` is a full-text search of prompts and generations (words, the
    last one as a prefix); ``session`` is a session id."""

    user: str | None = None
    event: str | None = None
    model: str | None = None
    thread: str | None = None
    kind: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    q: str | None = None
    session: str | None = None
    trace: str | None = None


FEW_MATCHES = 5000
"""A text search matching at most this many events sorts them itself (see :func:`event_page`)."""


class Sessions:
    """How events get their session ids: from the ``sessions`` table when it was built for
    ``timeout_us``, else computed for the page's users at query time."""

    def __init__(self, timeout_us: int, table_timeout_us: int | None) -> None:
        self.timeout_us = timeout_us
        self.from_table = table_timeout_us == timeout_us

    def ids(self, c: Connection, rows: Sequence[Row]) -> dict[int, str]:
        if not rows:
            return {}
        if self.from_table:  # each event's latest session starting at or before it: one seek each
            lookup = ("SELECT v.column1, (SELECT session_id FROM sessions s WHERE s.user_id = v.column2 "
                      "AND s.start_us <= v.column3 ORDER BY s.start_us DESC LIMIT 1) FROM {values}")
            return dict(_per_row(c, lookup, [(r["id"], r["user_id"], r["ts_us"]) for r in rows]))
        users = sorted({r["user_id"] for r in rows})
        sql = (f"SELECT id, session_id(user_id, MIN(ts_us) OVER (PARTITION BY user_id, n)) AS sid "
               f"FROM ({numbered_sessions(self.timeout_us, c.dialect, len(users))}) AS numbered")
        wanted = {r["id"] for r in rows}
        return {i: sid for i, sid in c.execute(sql, users) if i in wanted}


def event_page(
    c: Connection, f: EventFilter, *, sessions: Sessions, limit: int | None = 50,
    before: str | None = None, newest_first: bool = True,
) -> dict[str, Any]:
    """One page of events and the cursor of the next (``None`` on the last page)."""
    source, o, where, params = _event_where(c, f, sessions)
    if before:
        ts, _, row_id = before.partition(":")
        where.append(f"({o}.ts_us, {o}.id) {'<' if newest_first else '>'} (?, ?)")
        params += [int(ts), int(row_id)]
    order = "DESC" if newest_first else "ASC"
    sql = (f"SELECT e.* FROM {source} WHERE {' AND '.join(where) or 'true'} "
           f"ORDER BY {o}.ts_us {order}, {o}.id {order} LIMIT ?")
    rows = c.execute(sql, [*params, NO_LIMIT if limit is None else limit + 1]).fetchall()
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    ids = sessions.ids(c, rows)
    return {"events": [event_dict(r, ids.get(r["id"])) for r in rows],
            "next": f"{rows[-1]['ts_us']}:{rows[-1]['id']}" if more else None}


def _event_where(c: Connection, f: EventFilter, sessions: Sessions) -> tuple[str, str, list[str], list[Any]]:
    """The events to read (``e``), the alias ``o`` of their time and id (ordered and bounded by
    them: one user's or thread's in their look-up's order, :meth:`.Dialect.keyed`), the
    conditions and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    key = "user_id" if f.user is not None or f.session is not None else "thread_id" if f.thread is not None else None
    source, o = c.dialect.keyed(key) if key else ("events e", "e")
    u, t = (o if key == "user_id" else "e"), (o if key == "thread_id" else "e")
    for clause, value in ((f"{u}.user_id = ?", f.user), (f"{t}.thread_id = ?", f.thread), ("e.kind = ?", f.kind),
                          ("e.model = ?", f.model), ("e.trace_id = ?", f.trace),
                          (f"{o}.ts_us >= ?", f.since_us), (f"{o}.ts_us < ?", f.until_us)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if f.event is not None:
        # the prompt's name only where some LLM event uses it: "event = ?" alone keeps its index
        # (kind = 'llm': the partial index on prompt names serves it; without, a scan of every row)
        if c.execute("SELECT 1 FROM events WHERE prompt_event_name = ? AND kind = 'llm' LIMIT 1",
                     (f.event,)).fetchone():
            where.append("(e.event = ? OR (e.kind = 'llm' AND e.prompt_event_name = ?))")
            params += [f.event, f.event]
        else:
            where.append("e.event = ?")
            params.append(f.event)
    if f.q:  # a rare match is found through the text index alone, then sorted (PostgreSQL would
        # walk the time index testing each row's words: seconds); a common one by the time index
        c.dialect.text_index_current(c)  # SQLite's index may lag the events: made whole first
        words = c.dialect.text_query(f.q)
        found = [i for (i,) in c.execute(c.dialect.text_matches(), [words, FEW_MATCHES + 1])]
        if len(found) <= FEW_MATCHES:
            where.append(f"e.id IN ({', '.join('?' * len(found))})" if found else "1 = 0")
            params += found
        else:
            where.append(c.dialect.text_search("e", common=True))
            params.append(words)
    if f.session is not None:
        span = session_span(c, f.session, sessions)
        where.append(f"{o}.user_id = ? AND {o}.ts_us BETWEEN ? AND ?")
        params += list(span) if span else [None, 0, -1]
    return source, o, where, params


def session_span(c: Connection, session: str, sessions: Sessions) -> tuple[str, int, int] | None:
    """(user, start_us, end_us) of a session id."""
    if sessions.from_table:
        row = c.execute("SELECT user_id, start_us, end_us FROM sessions WHERE session_id = ?", (session,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]
    sql = (f"SELECT user_id, MIN(ts_us), MAX(ts_us), session_id(user_id, MIN(ts_us)) AS sid "
           f"FROM ({numbered_sessions(sessions.timeout_us, c.dialect)}) AS numbered GROUP BY user_id, n")
    return next(((u, s, e) for u, s, e, sid in c.execute(sql) if sid == session), None)


# --- sessions, users, threads ---------------------------------------------------------------------


def session_list(c: Connection, *, user: str | None = None, limit: int | None = 50,
                 before: str | None = None) -> dict[str, Any]:
    """Sessions from the ``sessions`` table, most recently active first."""
    rows, cursor = _newest_first(c, "sessions", "end_us", ["user_id = ?"] if user is not None else [],
                                 [user] if user is not None else [], before, limit)
    return {"sessions": session_dicts(c, rows), "next": cursor}


def session_dicts(c: Connection, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The sessions' rows with what their events add (threads, names, tokens, cost): one query."""
    source, k = c.dialect.keyed("user_id")
    details = {(d[0], d[1]): d[2:] for d in _per_row(
        c, f"SELECT v.column1, v.column2, COUNT(DISTINCT e.thread_id), "
           f"{c.dialect.json_array_agg('DISTINCT e.event')}, SUM(e.input_tokens), SUM(e.output_tokens), "
           f"SUM(e.cost_usd) FROM {{values}} CROSS JOIN {source} WHERE {k}.user_id = v.column1 "
           f"AND {k}.ts_us BETWEEN v.column2 AND v.column3 GROUP BY v.column1, v.column2",
        [(r["user_id"], r["start_us"], r["end_us"]) for r in rows])}
    return [session_dict(r, details.get((r["user_id"], r["start_us"]), (0, "[]", None, None, None)))
            for r in rows]


def session_dict(r: Row, detail: Sequence[Any]) -> dict[str, Any]:
    return {
        "session_id": r["session_id"], "user_id": r["user_id"], "start": iso(r["start_us"]),
        "end": iso(r["end_us"]), "duration_s": (r["end_us"] - r["start_us"]) / 1e6,
        "events": r["events"], "llm_events": r["llm_events"], "threads": detail[0],
        "event_names": sorted(json.loads(detail[1] or "[]")), "input_tokens": detail[2],
        "output_tokens": detail[3], "cost_usd": detail[4],
    }


def user_list(c: Connection, *, limit: int | None = 100, q: str | None = None,
              before: str | None = None) -> dict[str, Any]:
    """Users from the ``users`` table, most recently seen first; ``q``: part of the id."""
    rows, cursor = _newest_first(c, "users", "last_us", [c.dialect.contains("user_id")] if q else [],
                                 [q] if q else [], before, limit)
    return {"users": user_dicts(c, rows), "next": cursor}


def _newest_first(c: Connection, table: str, newest: str, where: list[str], params: list[Any],
                  before: str | None, limit: int | None) -> tuple[list[Row], str | None]:
    """One keyset page of ``table`` by (``newest``, user_id) descending, and the next cursor
    (``"<newest>:<user_id>"``): an old page costs what the first one does."""
    if before:
        moment, _, who = before.partition(":")
        where, params = [*where, f"({newest}, user_id) < (?, ?)"], [*params, int(moment), who]
    sql = (f"SELECT * FROM {table} WHERE {' AND '.join(where) or 'true'} "
           f"ORDER BY {newest} DESC, user_id DESC LIMIT ?")
    rows = c.execute(sql, [*params, NO_LIMIT if limit is None else limit + 1]).fetchall()
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    return rows, f"{rows[-1][newest]}:{rows[-1]['user_id']}" if more else None


def user_dicts(c: Connection, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The users' rows with their thread counts (one query)."""
    source, k = c.dialect.keyed("user_id")
    threads = dict(_per_row(c, f"SELECT v.column1, (SELECT COUNT(DISTINCT e.thread_id) FROM {source} "
                               f"WHERE {k}.user_id = v.column1) FROM {{values}}", [(r["user_id"],) for r in rows]))
    return [user_dict(r, threads.get(r["user_id"], 0)) for r in rows]


def user_dict(r: Row, threads: int) -> dict[str, Any]:
    return {
        "user_id": r["user_id"], "events": r["events"], "llm_events": r["llm_events"], "threads": threads,
        "first_seen": iso(r["first_us"]), "last_seen": iso(r["last_us"]), "input_tokens": r["input_tokens"],
        "output_tokens": r["output_tokens"], "cost_usd": r["cost_usd"], "errors": r["errors"],
    }


def user_profile(c: Connection, user: str, *, sessions: Sessions) -> dict[str, Any] | None:
    """One user: totals, recent sessions and threads, feedback, and the events timeline."""
    row = c.execute("SELECT * FROM users WHERE user_id = ?", (user,)).fetchone()
    if row is None:
        return None
    feedback = c.execute(f"{_FEEDBACK} WHERE f.user_id = ? ORDER BY e.ts_us DESC, e.id DESC LIMIT 50",
                         (user,)).fetchall()
    return {
        **user_dicts(c, [row])[0],
        "recent_sessions": session_list(c, user=user, limit=20)["sessions"] if sessions.from_table else [],
        "recent_threads": thread_list(c, user=user, limit=20)["threads"],
        "feedback": [feedback_dict(r) for r in feedback],
        "timeline": event_page(c, EventFilter(user=user), sessions=sessions, limit=100),
    }


def _thread(c: Connection) -> str:
    """A thread's row (:mod:`.store.threads`: its cost NULL when no turn had one) and its title,
    its first prompt (the row keeps only its first turn's id)."""
    return ("threads.thread_id, threads.turns, threads.start_us, threads.last_us, threads.errors, "
            "threads.input_tokens, threads.output_tokens, "
            "CASE WHEN threads.cost_turns > 0 THEN threads.cost_usd END AS cost_usd, "
            f"{title_sql('threads', c.dialect)} AS first_prompt FROM threads")


def thread_list(c: Connection, *, user: str | None = None, limit: int | None = 100,
                before: str | None = None) -> dict[str, Any]:
    """Threads (LLM turns grouped by thread id) from the ``threads`` table, latest turn first."""
    where, params = ["true"], []
    if user:
        source, k = c.dialect.keyed("user_id")
        where.append(f"thread_id IN (SELECT e.thread_id FROM {source} WHERE {k}.user_id = ? "
                     "AND e.thread_id IS NOT NULL)")
        params.append(user)
    if before:
        end, _, thread = before.partition(":")
        where.append("(last_us, thread_id) < (?, ?)")
        params += [int(end), thread]
    sql = f"SELECT {_thread(c)} WHERE {' AND '.join(where)} ORDER BY last_us DESC, thread_id DESC LIMIT ?"
    rows = c.execute(sql, [*params, NO_LIMIT if limit is None else limit + 1]).fetchall()
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    return {"threads": thread_dicts(c, rows),
            "next": f"{rows[-1]['last_us']}:{rows[-1]['thread_id']}" if more else None}


def thread_dicts(c: Connection, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The threads' rows with their users, models and feedback (two queries)."""
    ids = [(r["thread_id"],) for r in rows]
    source, k = c.dialect.keyed("thread_id")
    people = {t: (users, models) for t, users, models in _per_row(
        c, f"SELECT e.thread_id, {c.dialect.json_array_agg('DISTINCT e.user_id')}, "
           f"{c.dialect.json_array_agg('DISTINCT e.model', 'e.model IS NOT NULL')} FROM {{values}} "
           f"CROSS JOIN {source} WHERE {k}.thread_id = v.column1 AND e.kind = 'llm' GROUP BY e.thread_id", ids)}
    given: dict[str, list[dict[str, Any]]] = {}
    for t, name, value, label, sentiment in _per_row(
            c, "SELECT f.thread_id, COALESCE(f.name, f.event), f.value, f.label, f.sentiment FROM {values} "
               "JOIN analytics_feedback f ON f.thread_id = v.column1 ORDER BY f.ts_us, f.event_id", ids):
        given.setdefault(t, []).append({"name": name, "value": value, "label": label, "sentiment": sentiment})
    return [thread_dict(r, *people.get(r["thread_id"], (None, None)), given.get(r["thread_id"], []))
            for r in rows]


def thread_dict(r: Row, users: str | None, models: str | None,
                given: list[dict[str, Any]]) -> dict[str, Any]:
    feedback = dict(sorted(Counter(f["name"] for f in given).items()))  # name -> count (kept for old readers)
    return {
        "thread_id": r["thread_id"], "users": sorted(json.loads(users or "[]")), "turns": r["turns"],
        "start": iso(r["start_us"]), "end": iso(r["last_us"]), "models": sorted(json.loads(models or "[]")),
        "errors": r["errors"], "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
        "cost_usd": r["cost_usd"], "title": r["first_prompt"], "feedback": feedback,
        "feedback_values": given,  # each one's name, value, label (the value as sent) and sentiment, oldest first
    }


def thread_detail(c: Connection, thread_id: str, *, sessions: Sessions) -> dict[str, Any] | None:
    """One conversation: its totals, LLM turns oldest first, and ``feedback_events``: its
    feedback (scores, ``$feedback`` events…) with their values."""
    summary = c.execute(f"SELECT {_thread(c)} WHERE thread_id = ?", (thread_id,)).fetchone()
    if summary is None:
        return None
    turns = event_page(c, EventFilter(thread=thread_id, kind="llm"), sessions=sessions, limit=None,
                       newest_first=False)["events"]
    feedback = c.execute(f"{_FEEDBACK} WHERE f.thread_id = ? ORDER BY e.ts_us, e.id", (thread_id,)).fetchall()
    return {**thread_dicts(c, [summary])[0], "turns": turns, "feedback_events": [feedback_dict(r) for r in feedback]}


_FEEDBACK = ("SELECT e.*, f.name AS feedback_name, f.value AS feedback_value, f.label AS feedback_label, "
             "f.sentiment AS feedback_sentiment, f.turn_id AS feedback_turn FROM events e "
             "JOIN analytics_feedback f ON f.event_id = e.id")
"""Feedback events (scores, ``$feedback``, mapped names: see analytics.feedback_rows), never spans."""


def feedback_dict(row: Row) -> dict[str, Any]:
    return {**event_dict(row, None), "name": row["feedback_name"], "value": row["feedback_value"],
            "label": row["feedback_label"], "sentiment": row["feedback_sentiment"], "turn_id": row["feedback_turn"]}


def filter_values(c: Connection) -> dict[str, list[str]]:
    """Event names and models seen, for the page's filters (from the small ``hourly`` table)."""
    return {"events": [n for (n,) in c.execute("SELECT DISTINCT event FROM hourly ORDER BY event")],
            "models": [m for (m,) in c.execute("SELECT DISTINCT model FROM hourly WHERE model != '' ORDER BY model")]}


# --- traces -------------------------------------------------------------------------------------------


def trace(c: Connection, trace_id: str) -> dict[str, Any] | None:
    """One trace's events as a tree: each node's ``children`` are the events whose
    ``$parent_span_id`` is its span; events whose parent was not stored are roots."""
    rows = c.execute("SELECT * FROM events WHERE trace_id = ? ORDER BY ts_us, id", (trace_id,)).fetchall()
    if not rows:
        return None
    nodes = []
    for r in rows:
        node = event_dict(r, None)
        props = node["properties"]
        node["duration_s"] = _number(props.get(sc.PROP_DURATION)) or node.get("latency")
        node["name"] = props.get(sc.PROP_NAME) or node["event"]
        nodes.append(node)
    roots = span_tree(nodes)  # cycles and very deep chains included
    starts = [r["ts_us"] for r in rows]
    return {"trace_id": trace_id, "events": len(nodes), "start": iso(min(starts)), "end": iso(max(starts)),
            "roots": roots}


# --- rows -------------------------------------------------------------------------------------------------


def event_dict(row: Row, session: str | None) -> dict[str, Any]:
    properties = json.loads(row["properties"])
    parent = properties.get(sc.PROP_PARENT_SPAN_ID)
    common = {
        "id": row["id"], "kind": row["kind"], "user_id": row["user_id"], "event": row["event"],
        "timestamp": iso(row["ts_us"]), "received_at": iso(row["received_us"]), "session_id": session,
        "thread_id": row["thread_id"], "trace_id": row["trace_id"], "span_id": row["span_id"],
        "parent_span_id": parent if isinstance(parent, str) and parent else None,
        "properties": properties, "error": row["error"], "cost_usd": row["cost_usd"],
    }
    if row["kind"] == "event":
        return common
    return {
        **common, "prompt": row["prompt"], "generation": row["generation"],
        "prompt_event_name": row["prompt_event_name"], "generation_event_name": row["event"],
        "assistant_id": row["assistant_id"], "model": row["model"], "latency": row["latency"],
        "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_CHUNK = 250
"""Rows per :func:`_per_row` statement: SQLite allows 32,766 parameters, PostgreSQL 65,535."""


def _per_row(c: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """``sql`` (``{values}`` in it: the rows as a ``VALUES`` table ``v``, columns ``column1``…,
    the name both engines give them) over ``rows``, a chunk per statement: one round trip for
    a page instead of one per row (a PostgreSQL round trip costs what SQLite's lookup does)."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        row = f"({', '.join('?' * len(chunk[0]))})"
        values = f"(VALUES {', '.join([row] * len(chunk))}) AS v"
        found += c.rows(sql.format(values=values), [x for r in chunk for x in r])
    return found
