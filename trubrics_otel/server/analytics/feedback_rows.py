"""Which events are feedback, with what value, about which LLM turn: the ``analytics_feedback`` rows.

::

    apply(db, after_id)          # classify a batch's new events, link them, relink older ones
    classify(properties, "Score", {"Thumbs up": 1.0})   # ("score", name, raw value) or None

Feedback is (1) a score from the tracing API (``trubrics.score(...)``: an event named
``Score`` with ``observation_type`` ``score``, numeric, boolean or categorical), (2) a product
event carrying a ``$feedback`` property (``1``/``true`` positive, ``0``/``false`` negative, or
a number), (3) an event whose name ``serve --feedback-event "Thumbs up=1"`` maps to a value.
Traces and spans are never feedback, whatever they carry.

A value is a number where one can be read (``true`` = 1, ``false`` = 0); its sentiment is
positive at 0.5 or more, negative below, none for a categorical value (kept as ``label``).

The turn a feedback refers to, most precise first: the LLM event it names (a score's
``trace_id`` + ``observation_id``; a product event tracked under the generation's span, by
``$trace_id`` + ``$parent_span_id``); else the last LLM turn of its trace; else the last turn
of its thread (``$thread_id``) at or before it. A turn stored later relinks it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.server.store.dialect import Dialect, Writer

FEEDBACK_PROPERTY = "$feedback"
SCORE_EVENT = "Score"
NEVER = frozenset({"trace", "span"})
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})
_COLUMNS = ("event_id", "ts_us", "user_id", "event", "source", "name", "value", "label", "sentiment",
            "thread_id", "ref_trace", "ref_span", "turn_id", "link", "model", "assistant_id")
_SELECT = "SELECT id, ts_us, user_id, event, thread_id, trace_id, properties FROM {table} WHERE {where}"
_NAMES = "SELECT event, value FROM analytics_feedback_names"


def classify(properties: Mapping[str, Any], event: str,
             mapping: Mapping[str, float]) -> tuple[str, str | None, Any] | None:
    """(source, name, raw value) when the event is feedback, else None."""
    kind = properties.get(sc.PROP_OBSERVATION_TYPE)
    if kind in NEVER:
        return None
    if kind == "score" and event == SCORE_EVENT and properties.get(sc.PROP_SCORE_VALUE) is not None:
        name = properties.get(sc.PROP_NAME)
        return "score", name if isinstance(name, str) else None, properties[sc.PROP_SCORE_VALUE]
    if properties.get(FEEDBACK_PROPERTY) is not None:
        return "property", event, properties[FEEDBACK_PROPERTY]
    if event in mapping:
        return "mapping", event, mapping[event]
    return None


def value_of(raw: Any) -> tuple[float | None, str, int]:
    """(numeric value or None, label shown, sentiment 1 / -1 / 0)."""
    value: float | None = None
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
    elif isinstance(raw, (int, float)) and math.isfinite(raw):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().lower()
        value = 1.0 if text in _TRUE else 0.0 if text in _FALSE else _number(text)
    label = json.dumps(raw, ensure_ascii=False) if not isinstance(raw, str) else raw
    sentiment = 0 if value is None else 1 if value >= 0.5 else -1
    return value, label[:200], sentiment


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def apply(db: Writer, after_id: int, names: Sequence[str] | None = None) -> None:
    """Add the feedback among events ``id > after_id`` (or, with ``names``, among every event of
    those names), then relink feedback whose thread or trace got new LLM turns."""
    if names is None:
        like = f"%\"{FEEDBACK_PROPERTY}\"%"
        where = ("id > ? AND kind = 'event' AND (event = ? OR properties LIKE ? OR event IN "
                 "(SELECT event FROM analytics_feedback_names))")
        # the three reads leave together: one round trip in PostgreSQL's pipeline, not three (they
        # run inside the insert's lock). Relinking reads before this batch's feedback goes in:
        # that feedback is linked below, seeing the batch's turns already.
        reads = [db.execute(_NAMES), db.execute(_SELECT.format(table=db.dialect.new_rows(wide=True), where=where),
                                                (after_id, SCORE_EVENT, like)),
                 db.execute(_STALE.format(scan=db.dialect.new_rows()), (after_id, after_id))]
        named, rows, stale = ([tuple(row) for row in cursor.fetchall()] for cursor in reads)
    else:
        named, stale = db.rows(_NAMES), []
        where = f"kind = 'event' AND event IN ({', '.join('?' for _ in names)})"
        rows = db.rows(_SELECT.format(table="events", where=where), list(names)) if names else []
    mapping = dict(named)
    found = []
    for event_id, ts_us, user, event, thread, trace, text in rows:
        properties = _properties(text)
        kind = classify(properties, event, mapping)
        if kind is None:
            continue
        source, name, raw = kind
        value, label, sentiment = value_of(raw)
        ref_trace, ref_span = _reference(source, properties, trace)
        found.append([event_id, ts_us, user, event, source, name, value, label, sentiment, thread,
                      ref_trace, ref_span, None, None, None, None])
    links = _links(db, ((r[1], r[9], r[10], r[11]) for r in found))
    for row, (turn, link, model, assistant, turn_thread) in zip(found, links):
        row[12:16] = turn, link, model, assistant
        if row[9] is None:
            row[9] = turn_thread
    if found:
        db.executemany(f"INSERT INTO analytics_feedback ({', '.join(_COLUMNS)}) VALUES "
                       f"({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT (event_id) DO NOTHING", found)
    _relink(db, stale)


def _properties(text: str) -> dict[str, Any]:
    try:
        properties = json.loads(text)
    except ValueError:
        return {}
    return properties if isinstance(properties, dict) else {}


def _reference(source: str, p: Mapping[str, Any], trace: str | None) -> tuple[str | None, str | None]:
    """The (trace id, span id) the feedback names: a score's target, else the event's parent."""
    if source == "score":
        target_trace, target_span = p.get(sc.PROP_SCORE_TRACE_ID), p.get(sc.PROP_SCORE_OBSERVATION_ID)
        return (target_trace if isinstance(target_trace, str) and target_trace else trace,
                target_span if isinstance(target_span, str) and target_span else None)
    parent = p.get(sc.PROP_PARENT_SPAN_ID)
    return trace, parent if isinstance(parent, str) and parent else None


def _tiers(d: Dialect) -> tuple[tuple[str, str], ...]:
    """How a feedback finds its turn, most precise first: the LLM event it names, else the last
    turn of its trace, else the last turn of its thread at or before it (by thread and time,
    :meth:`.Dialect.keyed`)."""
    turn = "SELECT e.id, e.model, e.assistant_id, e.thread_id FROM"
    source, k = d.keyed("thread_id")
    return (("turn", f"{turn} events e WHERE e.trace_id = ? AND e.span_id = ? AND e.kind = 'llm'"),
            ("trace", f"{turn} events e WHERE e.trace_id = ? AND e.kind = 'llm' "
                      "ORDER BY e.ts_us DESC, e.id DESC LIMIT 1"),
            ("thread", f"{turn} {source} WHERE {k}.thread_id = ? AND e.kind = 'llm' AND {k}.ts_us <= ? "
                       f"ORDER BY {k}.ts_us DESC, {k}.id DESC LIMIT 1"))


_PER_ROUND = 200  # look-ups sent before their answers are read: one PostgreSQL round trip


def _lookup(how: str, ts_us: int, thread: str | None, trace: str | None, span: str | None) -> tuple[Any, ...]:
    """The parameters of a tier's look-up, or () when the feedback lacks what it needs."""
    if how == "turn":
        return (trace, span) if trace and span else ()
    if how == "trace":
        return (trace,) if trace else ()
    return (thread, ts_us) if thread else ()


def _links(db: Writer, wanted: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """(turn id, how it was found, its model, its assistant, its thread) for each (time, thread,
    trace, span) wanted. Each tier's look-ups leave together, ``_PER_ROUND`` at a time (in
    PostgreSQL's pipeline: one round trip each, not one per look-up; a batch copied by
    ``migrate`` holds thousands of feedback events)."""
    wanted = list(wanted)
    # SQLite answers in-process: one at a time reuses its cached statement (open cursors each
    # need a statement of their own)
    per_round = 1 if db.dialect.name == "sqlite" else _PER_ROUND
    found: list[tuple[Any, ...] | None] = [None] * len(wanted)
    for how, sql in _tiers(db.dialect):
        asks = [(i, params) for i, (ts_us, thread, trace, span) in enumerate(wanted)
                if found[i] is None and (params := _lookup(how, ts_us, thread, trace, span))]
        for first in range(0, len(asks), per_round):
            sent = [(i, db.execute(sql, params))
                    for i, params in asks[first:first + per_round]]
            for i, cursor in sent:
                for row in cursor.fetchall()[:1]:
                    found[i] = (row[0], how, row[1], row[2], row[3])
    return [row or (None, None, None, None, None) for row in found]


_STALE = ("SELECT event_id, ts_us, thread_id, ref_trace, ref_span, turn_id, link, model, assistant_id "
          "FROM (SELECT 1 FROM analytics_feedback LIMIT 1) AS stored CROSS JOIN analytics_feedback "
          "WHERE (link IS NULL OR link <> 'turn') AND ("
          "thread_id IN (SELECT thread_id FROM {scan} WHERE id > ? AND kind = 'llm' AND thread_id IS NOT NULL) "
          "OR ref_trace IN (SELECT trace_id FROM {scan} WHERE id > ? AND kind = 'llm' AND trace_id IS NOT NULL))")
"""Feedback not linked to its exact turn, in a thread or trace the batch added turns to. Joined
to ``stored`` (a row when there is any feedback): with none, the batch's threads and traces are
not gathered (SQLite built both lists, ~0.7 µs per folded LLM event, to find nothing)."""


def _relink(db: Writer, stale: Sequence[tuple[Any, ...]]) -> None:
    """Link again the feedback :data:`_STALE` found: a better turn may have arrived. Only the
    rows whose link changes are written: every batch of a thread finds its feedback again,
    mostly still linked as it was (an UPDATE rewrites the row and its thread and turn index
    entries even when nothing changes). A turn's thread is fixed: the same turn, the same
    ``thread_id`` (filled when the feedback was first linked)."""
    links = _links(db, ((ts_us, thread, trace, span) for _, ts_us, thread, trace, span, *_ in stale))
    db.executemany("UPDATE analytics_feedback SET turn_id = ?, link = ?, model = ?, assistant_id = ?, "
                   "thread_id = COALESCE(thread_id, ?) WHERE event_id = ?",
                   [(*link, row[0]) for row, link in zip(stale, links) if tuple(row[5:9]) != link[:4]])
