"""Rows of the ``events`` table from validated events, the same for every engine.

::

    rows = [event_row(e, now) for e in events] + [llm_row(e, now) for e in llm_events]
    llm_row(e, now, properties_json)      # properties' JSON when validation encoded them already
    connection.executemany(*sparse_insert(rows))  # INSERT without the columns null in every row
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.server.times import timestamp_us
from trubrics_otel.translate.fastjson import dumps

COLUMNS = (
    "kind", "user_id", "event", "ts_us", "received_us", "properties", "trace_id", "span_id",
    "thread_id", "prompt", "generation", "prompt_event_name", "assistant_id", "model",
    "latency", "input_tokens", "output_tokens", "error", "cost_usd",
)


def _insert(columns: Sequence[str], literals: Mapping[str, str] | None = None) -> str:
    values = ", ".join(f"'{literals[c]}'" if literals and c in literals else "?" for c in columns)
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({values}) ON CONFLICT DO NOTHING"


INSERT = _insert(COLUMNS)
"""Idempotent: a second copy of an event (same ``$trace_id`` + ``$span_id``) is skipped."""
INSERT_WITH_ID = INSERT.replace("(kind,", "(id, kind,").replace("VALUES (?", "VALUES (?, ?")
"""For copies (``migrate``): the source's ids kept, so a copy resumes after the highest."""

_INPUT_TOKEN_KEYS = (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.PROP_INPUT_TOKENS, "prompt_tokens")
_OUTPUT_TOKEN_KEYS = (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.PROP_OUTPUT_TOKENS, "completion_tokens")
MAX_TOKENS = 2**40  # per event; larger is not a count, and sums of many would overflow SQLite
_THREAD, _ASSISTANT = sc.PROP_THREAD_ID, sc.PROP_ASSISTANT_ID
_ERROR_TYPE, _ERROR_MESSAGE = sc.PROP_ERROR_TYPE, sc.PROP_ERROR_MESSAGE
_MODEL_KEYS = (sc.GEN_AI_RESPONSE_MODEL, "model", sc.GEN_AI_REQUEST_MODEL, sc.PROP_REQUEST_MODEL)

_NULLABLE = range(COLUMNS.index("trace_id"), len(COLUMNS))
_LITERALS = {COLUMNS.index("kind"): ("event", "llm"), COLUMNS.index("event"): ("Generation",),
             COLUMNS.index("prompt_event_name"): ("Prompt",)}
"""Columns written as a literal in the INSERT when every row of a batch holds the same one of
these values (an LLM event's kind and default names): binding a text costs ~900 instructions."""
_SPARSE: dict[tuple[Any, ...], tuple[str, Callable[[Sequence[Any]], tuple[Any, ...]]]] = {}


def sparse_insert(rows: Sequence[tuple[Any, ...]]) -> tuple[str, Iterable[Sequence[Any]]]:
    """:data:`INSERT` and ``rows``, without the columns null in every row (null by default):
    the sqlite3 module binds a None after looking for an adapter, which raises and clears an
    AttributeError each time (~3,000 instructions; an LLM event's row has ~2, a plain one's ~10);
    nor those of :data:`_LITERALS` the same in every row (written in the statement instead)."""
    if not rows:
        return INSERT, rows
    first = rows[0]
    null = tuple(i for i in _NULLABLE if all(row[i] is None for row in rows))
    same = tuple((i, first[i]) for i, values in _LITERALS.items()
                 if first[i] in values and all(row[i] == first[i] for row in rows))
    if not null and not same:
        return INSERT, rows
    shape = (null, same)
    if shape not in _SPARSE:
        literals = {COLUMNS[i]: value for i, value in same}
        kept = [i for i in range(len(COLUMNS)) if i not in null and COLUMNS[i] not in literals]
        _SPARSE[shape] = (_insert([COLUMNS[i] for i in range(len(COLUMNS)) if i not in null], literals),
                          itemgetter(*kept))
    sql, values = _SPARSE[shape]
    return sql, map(values, rows)


def _ids(properties: Mapping[str, Any]) -> tuple[str | None, str | None]:
    trace, span = properties.get(sc.PROP_TRACE_ID), properties.get(sc.PROP_SPAN_ID)
    if isinstance(trace, str) and isinstance(span, str) and trace and span:
        return trace, span
    return None, None


def event_row(event: Mapping[str, Any], now_us: int, properties_json: bytes | str | None = None) -> tuple[Any, ...]:
    """``properties_json``: the event's properties as compact JSON (bytes or text), if encoded already
    (the ingestion API's validation, the redaction policy): not encoded again."""
    properties = event.get("properties") or {}
    trace, span = _ids(properties)
    thread = properties.get(sc.PROP_THREAD_ID)
    return (
        "event", event["user_id"], event["event"], _event_time(event, now_us), now_us,
        _json(properties, properties_json), trace, span, _name(thread),
        None, None, None, None, None, None, None, None, _error(properties), _cost(properties),
    )


def llm_row(event: Mapping[str, Any], now_us: int, properties_json: bytes | str | None = None) -> tuple[Any, ...]:
    """As :func:`event_row`: one row holds the prompt and the generation. The helpers' usual
    cases are inline (a text id, integer tokens, no cost nor error): each call cost ~0.1 µs of
    every event of the ingestion API, the rest of which is in its SQL."""
    properties = event.get("properties") or {}
    get = properties.get
    trace, span = _ids(properties)
    thread = event.get("thread_id") or get(_THREAD)
    assistant = event.get("assistant_id") or get(_ASSISTANT)
    assistant = _name(assistant) if assistant.__class__ is not str else assistant or None
    latency = event.get("latency")
    tokens_in, tokens_out = get(_INPUT_TOKEN_KEYS[0]), get(_OUTPUT_TOKEN_KEYS[0])
    return (
        "llm", event["user_id"], event.get("generation_event_name") or "Generation",
        _event_time(event, now_us), now_us, _json(properties, properties_json), trace, span,
        _name(thread) if thread.__class__ is not str else thread or None,
        event["prompt"], event["generation"], event.get("prompt_event_name") or "Prompt",
        assistant, _text(properties, _MODEL_KEYS) or assistant,
        latency if latency.__class__ is float else _seconds(latency),
        tokens_in if tokens_in.__class__ is int and -MAX_TOKENS < tokens_in < MAX_TOKENS
        else _tokens(properties, _INPUT_TOKEN_KEYS),
        tokens_out if tokens_out.__class__ is int and -MAX_TOKENS < tokens_out < MAX_TOKENS
        else _tokens(properties, _OUTPUT_TOKEN_KEYS),
        _error(properties) if get(_ERROR_TYPE) or get(_ERROR_MESSAGE) else None,
        None if get("cost_usd") is None else _cost(properties),
    )


def _name(value: Any) -> str | None:
    """An id as text (a number sent as one is its text); None for none or empty."""
    return str(value) if value not in (None, "") else None


def _json(properties: Mapping[str, Any], encoded: bytes | str | None) -> str:
    """Compact JSON text (orjson when installed: ~10 µs less per LLM event than the stdlib)."""
    if encoded is None:
        encoded = dumps(properties)
    return encoded if encoded.__class__ is str else encoded.decode("utf-8")  # type: ignore[union-attr]


def _text(properties: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` whose value is text (a loop: a generator cost ~1 µs more per event)."""
    for key in keys:
        value = properties.get(key)
        if isinstance(value, str):
            return value
    return None


def _seconds(latency: float | None) -> float | None:
    """The latency as a double, as its column holds it: an integer past 64 bits (valid, the
    validation checked it fits a double) is not one the database driver can bind."""
    return None if latency is None else float(latency)


def _tokens(properties: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = properties.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if abs(value) < MAX_TOKENS:
                return int(value)
    return None


def _cost(properties: Mapping[str, Any]) -> float | None:
    value = properties.get("cost_usd")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**1000:  # float() can take it
        return float(value)
    return value if isinstance(value, float) and math.isfinite(value) else None


def _error(properties: Mapping[str, Any]) -> str | None:
    kind, message = properties.get(_ERROR_TYPE), properties.get(_ERROR_MESSAGE)
    if not kind and not message:
        return None
    return ": ".join(str(part) for part in (kind, message) if part)


def _event_time(event: Mapping[str, Any], now_us: int) -> int:
    timestamp = event.get("timestamp")
    return timestamp_us(timestamp) if isinstance(timestamp, str) else now_us
