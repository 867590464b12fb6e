"""Turn any properties dict into one JSON object string without ever raising.

OpenTelemetry attributes cannot nest, so properties travel on a span as a single JSON
string and are parsed back by the encoder. JSON values survive exactly; other values get
a documented JSON form:

==========================  =====================================================
``datetime`` / ``date``     ISO 8601 string (``time`` too)
``UUID``                    canonical string
``Enum``                    its value, converted (as orjson and msgspec write it)
``Decimal``                 JSON number (NaN/Infinity → ``null``)
``set`` / ``frozenset``     list, sorted when the items can be sorted
``bytes`` / ``bytearray``   UTF-8 text, else ``"base64:<data>"``
``float`` NaN / ±Infinity   ``null`` (JSON has no such numbers)
non-string dict keys        ``str(key)``
a cycle                     ``"<cycle>"`` where the object repeats
nesting deeper than 32      ``"<too deep>"``
anything else               ``str(value)`` (``repr`` if ``str`` fails)
==========================  =====================================================

Properties whose JSON would pass :data:`MAX_PROPERTIES_CHARS` are cut to the limits below
(:func:`bound_properties`) right away, so a huge value never sits in the queue; the
:mod:`~trubrics_otel.translate.redaction` policy applies the same limits to every event.
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import json
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

MAX_STRING_CHARS = 65_536
MAX_TEXT_CHARS = 262_144
MAX_DEPTH = 32
MAX_PROPERTIES_CHARS = 262_144

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
    try:  # a RecursionError (an app with its stack nearly spent) can come from anything below
        if warn is not None:
            warn("convert", "Event properties were not plain JSON or too large; converted")
        converted = to_jsonable(properties)
        if not isinstance(converted, dict):
            converted = {"value": converted}
        return _FAST.encode(bound_properties(converted, warn))
    except Exception as exc:  # a hostile object (a Mapping whose items() raises…)
        return _FAST.encode({"$unserializable": type(exc).__name__})


def to_jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` following the table in the module docstring."""
    sets: list[list[Any]] = []
    converted = _rebuilt(value, lambda item, depth, path: _convert(item, depth, path, sets), _is_plain)
    for items in reversed(sets):  # the innermost first: an outer set sorts its converted items
        try:
            items.sort()
        except TypeError:
            pass
    return converted


Path = tuple[Any, Any] | None
"""The containers above an item, innermost first, as linked pairs ``(container, Path)``."""
Step = Callable[[Any, int, Path], tuple[Any, list[tuple[Any, Any]]]]


def _rebuilt(value: Any, step: Step, settled: Callable[[Any], bool]) -> Any:
    """``value`` rebuilt by ``step(item, depth, path)``, which answers the item's copy and,
    for a container, its ``(key or index, item)`` pairs, to be stored into that copy (an
    item ``settled`` says needs no step as it is).

    Iterative, with the depth counted here: the result never depends on how much of the
    interpreter's stack the caller has left (an app deep in its own recursion still gets
    ``"<too deep>"`` and ``"<cycle>"``, not a RecursionError)."""
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any, int, Path]] = [(value, root, 0, 0, None)]
    while pending:
        item, into, at, depth, path = pending.pop()
        copy, children = step(item, depth, path)
        into[at] = copy
        deferred: dict[Any, Any] = {}
        for key, child in children:  # in order: a repeated key keeps the last
            if settled(child):
                copy[key] = child
                if deferred:
                    deferred.pop(key, None)
            else:
                deferred[key] = child
        if deferred:
            below = (item, path)
            pending.extend((child, copy, key, depth + 1, below) for key, child in deferred.items())
    return root[0]


_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def _convert(value: Any, depth: int, path: Path, sets: list[list[Any]]) -> tuple[Any, list[tuple[Any, Any]]]:
    """:func:`to_jsonable`'s step: a value converted, a container as an empty copy."""
    while True:
        if value is None or isinstance(value, (str, bool, int)):
            return value, []
        if isinstance(value, float):
            return (value if math.isfinite(value) else None), []
        if isinstance(value, _CONTAINERS):
            node = path
            while node is not None:
                if node[0] is value:
                    return "<cycle>", []
                node = node[1]
            if depth >= MAX_DEPTH:
                return "<too deep>", []
            if isinstance(value, Mapping):
                return _empty_dict([(_key(k), v) for k, v in value.items()])
            children = list(enumerate(value))
            out = [None] * len(children)
            if isinstance(value, (set, frozenset)):
                sets.append(out)
            return out, children
        if isinstance(value, enum.Enum):
            value, depth = value.value, depth + 1
            continue
        return _scalar(value), []


_PLAIN = frozenset({str, int, bool, type(None)})


def _is_plain(value: Any) -> bool:
    """A JSON value :func:`to_jsonable` keeps as it is, without a step."""
    return value.__class__ in _PLAIN


def _empty_dict(children: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A dict with each key in its place (the mapping's order), for :func:`_rebuilt` to fill."""
    return dict.fromkeys(key for key, _ in children), children


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


def snapshot(value: Any) -> Any:
    """A JSON-safe deep copy: through the C encoder and decoder when it can, else converted."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return to_jsonable(value)


# --- limits ---------------------------------------------------------------------------

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
"""Strict JSON text: NaN and Infinity raise here rather than leave as invalid JSON."""


def bound_properties(
    properties: dict[str, Any], warn: Callable[..., None] | None = None
) -> dict[str, Any]:
    """``properties`` within the string, depth and size limits (a copy when anything changed)."""
    notes: set[str] = set()
    bounded = _bound(properties, notes)
    if not isinstance(bounded, dict):
        bounded = {"value": bounded}
    try:
        size = len(_compact(bounded))
    except (TypeError, ValueError):  # not JSON after all (only if a mask returned junk or inf)
        bounded = to_jsonable(bounded)
        size = len(_compact(bounded))
        notes.add("type")
    if size > MAX_PROPERTIES_CHARS:
        bounded = _fit(bounded)
        notes.add("size")
    if notes and warn is not None:
        for note in sorted(notes):
            warn(note, "Event properties over a limit were cut (%s); see trubrics_otel.translate.jsonable", note)
    return bounded


def _bound(value: Any, notes: set[str]) -> Any:
    """``value`` within the string and depth limits; ``notes`` hears which were passed."""

    def step(item: Any, depth: int, _: Path) -> tuple[Any, list[tuple[Any, Any]]]:
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                notes.add("string")
                return truncate(item, MAX_STRING_CHARS), []
            return item, []
        if isinstance(item, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                notes.add("depth")
                return "<too deep>", []
            if isinstance(item, dict):
                return _empty_dict([(text_of(k), v) for k, v in item.items()])
            return [None] * len(item), list(enumerate(item))
        return item, []

    return _rebuilt(value, step, lambda item: item.__class__ is str and len(item) <= MAX_STRING_CHARS
                    or not isinstance(item, (str, dict, list, tuple)))


def _fit(properties: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    budget = MAX_PROPERTIES_CHARS - 64
    dropped = 0
    for key, value in properties.items():
        cost = len(json.dumps({key: value}, ensure_ascii=False, separators=(",", ":")))
        if cost <= budget:
            kept[key] = value
            budget -= cost
        else:
            dropped += 1
    kept["$truncated_properties"] = dropped
    return kept


def text_of(value: Any) -> str:
    """A string for any value, even one whose ``__str__`` raises."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__}>"


def truncate(text: str, limit: int) -> str:
    marker = f"…[truncated {len(text) - limit}]"
    return text[: max(0, limit - len(marker))] + marker
