"""Turn any properties dict into one JSON object string without ever raising.

OpenTelemetry attributes cannot nest, so properties travel on a span as a single JSON
string and are parsed back by the encoder. JSON values survive exactly; other values get
a documented JSON form:

==========================  =====================================================
``datetime`` / ``date``     ISO 8601 string (``time`` too)
``UUID``                    canonical string
``Decimal``                 JSON number (NaN/Infinity → ``null``)
``set`` / ``frozenset``     list, sorted when the items can be sorted
``bytes`` / ``bytearray``   UTF-8 text, else ``"base64:<data>"``
``float`` NaN / ±Infinity   ``null`` (JSON has no such numbers)
non-string dict keys        ``str(key)``
a cycle                     ``"<cycle>"`` where the object repeats
nesting deeper than 32      ``"<too deep>"``
anything else               ``str(value)`` (``repr`` if ``str`` fails)
==========================  =====================================================

Properties whose JSON would pass :data:`~trubrics_otel.redaction.MAX_PROPERTIES_CHARS`
are cut to the limits of :mod:`~trubrics_otel.redaction` right away, so a huge value
never sits in the queue.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trubrics_otel.redaction import MAX_DEPTH, MAX_PROPERTIES_CHARS, bound_properties

_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


# The C encoder called directly: half the cost of JSONEncoder.encode's Python wrapper.
# No cycle markers: a cycle ends in RecursionError, which sends it down the slow path.
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
encode_fast: Callable[[Any], str] = (
    (lambda value, _c=_C_ENCODER(None, _refuse, json.encoder.encode_basestring, None,  # type: ignore[misc]
                                 ":", ",", False, False, False): "".join(_c(value, 0)))
    if _C_ENCODER is not None
    else _FAST.encode
)
encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]
"""``str`` → JSON string literal (C speed); used to build message JSON on the hot path."""


def dumps(properties: Mapping[str, Any], warn: Callable[..., None] | None = None) -> str:
    """Properties → JSON object text; the fast path costs one C-encoder call and a ``len``.

    ``warn(kind, message, *args)`` hears about values that had to be converted or cut.
    """
    try:
        text = encode_fast(properties)
        if len(text) <= MAX_PROPERTIES_CHARS:
            return text
    except (TypeError, ValueError, RecursionError):
        pass
    if warn is not None:
        warn("convert", "Event properties were not plain JSON or too large; converted")
    try:
        converted = to_jsonable(properties)
        if not isinstance(converted, dict):
            converted = {"value": converted}
        return _FAST.encode(bound_properties(converted, warn))
    except Exception as exc:  # a hostile object (a Mapping whose items() raises…)
        return _FAST.encode({"$unserializable": type(exc).__name__})


def to_jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` following the table in the module docstring."""
    return _convert(value, set(), 0)


def _convert(value: Any, seen: set[int], depth: int) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in seen:
            return "<cycle>"
        if depth >= MAX_DEPTH:
            return "<too deep>"
        seen.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {_key(k): _convert(v, seen, depth + 1) for k, v in value.items()}
            items = [_convert(v, seen, depth + 1) for v in value]
            if isinstance(value, (set, frozenset)):
                try:
                    items.sort()
                except TypeError:
                    pass
            return items
        finally:
            seen.discard(id(value))
    return _scalar(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = _scalar(key) if not isinstance(key, (bool, int, float)) else json.dumps(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def _scalar(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the event
        return repr(value)
