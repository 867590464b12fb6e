"""Validate ingestion batches the way the Trubrics ingestion API (FastAPI + pydantic) does.

::

    good, errors = validate_batch(json.loads(body), LLM_EVENT)
    # good: the valid events, normalised; errors: [{"index": 3, "loc": [...], "msg": "..."}]

Pure: no I/O. Each item is checked on its own, so one bad event never costs the others.
Unknown fields are ignored, as pydantic does by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from trubrics_otel.server.times import timestamp_us
from trubrics_otel.translate.fastjson import dumps

MAX_EVENTS_PER_REQUEST = 100

Error = dict[str, Any]
Field = tuple[str, Callable[[Any], str | None], Any]
"""(name, check returning an error message or None, default when missing or null)."""


def _non_empty_string(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {_type(value)}"
    return None if value.strip() else "must be a non-empty string"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {_type(value)}"


def _optional_string(value: Any) -> str | None:
    return None if value is None else _string(value)


def _properties(value: Any) -> str | None:
    if value is None or isinstance(value, dict):
        return None
    return f"must be a JSON object or null, got {_type(value)}"


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be an ISO 8601 string, got {_type(value)}"
    try:
        timestamp_us(value)
    except ValueError:
        return f"is not a valid ISO 8601 datetime: {value[:64]!r}"
    return None


def _latency(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number of seconds or null, got {_type(value)}"
    if not math.isfinite(value) or value < 0:
        return "must be a finite, non-negative number of seconds"
    return None


_MISSING = object()  # the default of a required field

EVENT: tuple[Field, ...] = (
    ("user_id", _non_empty_string, _MISSING),
    ("event", _non_empty_string, _MISSING),
    ("properties", _properties, None),
    ("timestamp", _timestamp, None),
)
LLM_EVENT: tuple[Field, ...] = (
    ("user_id", _non_empty_string, _MISSING),
    ("prompt", _string, _MISSING),
    ("generation", _string, _MISSING),
    ("prompt_event_name", _optional_string, "Prompt"),
    ("generation_event_name", _optional_string, "Generation"),
    ("assistant_id", _optional_string, None),
    ("properties", _properties, None),
    ("timestamp", _timestamp, None),
    ("latency", _latency, None),
    ("thread_id", _optional_string, None),
)


def validate_batch(body: Any, fields: tuple[Field, ...]) -> tuple[list[dict[str, Any]], list[Error]]:
    """Split a parsed request body into valid (normalised) events and errors.

    A body that is not a JSON array, or holds too many events, is one error at
    ``loc=["body"]`` with ``index`` None, and nothing is valid.
    """
    if not isinstance(body, list):
        return [], [{"index": None, "loc": ["body"], "msg": f"must be a JSON array of events, got {_type(body)}"}]
    if len(body) > MAX_EVENTS_PER_REQUEST:
        return [], [{
            "index": None, "loc": ["body"],
            "msg": f"at most {MAX_EVENTS_PER_REQUEST} events per request, got {len(body)}",
        }]
    good: list[dict[str, Any]] = []
    errors: list[Error] = []
    for index, item in enumerate(body):
        event, item_errors = validate_event(item, fields)
        for error in item_errors:
            errors.append({"index": index, **error})
        if not item_errors:
            good.append(event)
    return good, errors


def validate_event(item: Any, fields: tuple[Field, ...]) -> tuple[dict[str, Any], list[Error]]:
    if not isinstance(item, dict):
        return {}, [{"loc": ["body"], "msg": f"event must be a JSON object, got {_type(item)}"}]
    try:  # a lone surrogate (valid in JSON text, not in UTF-8) cannot be stored
        dumps(item)  # orjson when installed (a long prompt costs the stdlib ~10 µs)
    except UnicodeEncodeError as exc:
        return {}, [{"loc": ["body"], "msg": f"event holds text that is not valid Unicode: {exc.reason}"}]
    event: dict[str, Any] = {}
    errors: list[Error] = []
    for name, check, default in fields:
        value = item.get(name)
        if value is None and default is not _MISSING:
            event[name] = default
            continue
        if name not in item:
            errors.append({"loc": ["body", name], "msg": "field required"})
            continue
        message = check(value)
        if message:
            errors.append({"loc": ["body", name], "msg": f"{name} {message}"})
        else:
            event[name] = value
    return event, errors


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)
