"""Validate ingestion batches the way the Trubrics ingestion API (FastAPI + pydantic) does.

::

    good, errors = validate_batch(parse_batch(body), LLM_EVENT)
    # good: the valid events, normalised; errors: [{"index": 3, "loc": [...], "msg": "..."}]
    good, errors, measured = read_batch(body, LLM_EVENT)   # the same, and properties' JSON

Pure: no I/O. Each item is checked on its own, so one bad event never costs the others.
Unknown fields are ignored, as pydantic does by default.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from typing import Any

from trubrics_otel.server.batch_json import MAX_DEPTH, Unparsable, parse_batch
from trubrics_otel.server.times import timestamp_us
from trubrics_otel.translate.fastjson import brackets, dumps, measure

try:
    from orjson import loads as _orjson_loads
except ImportError:  # where orjson does not install: the stdlib reads every batch
    _orjson_loads = None

MAX_EVENTS_PER_REQUEST = 100

Error = dict[str, Any]
Field = tuple[str, Callable[[Any], str | None], Any]
"""(name, check returning an error message or None, default when missing or null)."""


def _scan(value: Any, limit: int = MAX_DEPTH) -> tuple[bool, bool]:
    """(nested deeper than ``limit``, holds an infinite or NaN number), without recursion;
    a level at a time, with no Python call per value (it reads every event's every value)."""
    level: list[Any] = [value]
    odd_number = False
    for _ in range(limit + 1):
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        odd_number = odd_number or not all(map(math.isfinite, [c for c in children if isinstance(c, float)]))
        level = [child for child in children if isinstance(child, (dict, list))]
        if not level:
            return False, odd_number
    return True, odd_number


def _out_of_range(value: Any) -> bool:
    """Infinity or NaN: ``1e999`` parses as infinity, which is not JSON (SQLite's JSON refuses it)."""
    return isinstance(value, float) and not math.isfinite(value)


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
    try:  # an integer is seconds too: one past a double's range is out of range, not an OverflowError
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        return "must be a finite, non-negative number of seconds"
    return None


_MISSING = object()  # the default of a required field
_PASSES = {_string: str, _optional_string: str, _properties: dict}  # the class each check passes whole

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


def read_batch(body: bytes, fields: tuple[Field, ...]) -> tuple[list[dict[str, Any]], list[Error], dict[int, bytes | str]]:
    """:func:`validate_batch` of :func:`parse_batch`, and ``{id(event): its properties' JSON}``
    for the store (which then need not encode them again). Raises as :func:`parse_batch`.

    Why: the stdlib's parser and the checks of :func:`validate_event` were ~9 µs of an LLM
    event's ~20 µs outside the database. ``orjson`` (when installed) parses in half the time
    and refuses what the careful path must look at element by element (NaN, ``1e999``, lone
    surrogates, invalid UTF-8, depth beyond 1,024): such a body, or one with a number that may
    be an integer too big for orjson (which reads it as a float), is read by the stdlib, as
    :func:`parse_batch` does, with the same answer."""
    if _orjson_loads is not None:
        try:
            items = _orjson_loads(body)
        except ValueError:
            items = None
        if items.__class__ is list and len(items) <= MAX_EVENTS_PER_REQUEST:
            try:
                return _read_items(items, fields)
            except _Inexact:
                pass
        elif items is not None:  # not an array, or too long: one error, as the stdlib would say
            return (*validate_batch(items, fields), {})
    good, errors = validate_batch(parse_batch(body), fields)
    return good, errors, {}


class _Inexact(Exception):
    """A number orjson may have read as a float where the stdlib reads an integer."""


def _read_items(items: list[Any], fields: tuple[Field, ...]) -> tuple[list[dict[str, Any]], list[Error], dict[int, bytes | str]]:
    good: list[dict[str, Any]] = []
    errors: list[Error] = []
    measured: dict[int, bytes | str] = {}
    quick = _llm_event if fields is LLM_EVENT else None
    for index, item in enumerate(items):
        found = quick(item) if quick is not None and item.__class__ is dict else None
        if found is not None:  # the usual event: the checks below, at a fraction of their cost
            good.append(found[0])
            if found[1] is not None:
                measured[id(found[0])] = found[1]
            continue
        data = None
        if item.__class__ is dict:
            properties = item.get("properties")
            if properties.__class__ is not dict:
                properties = None  # (then measured with the rest)
            try:  # orjson's own values: only its integer limits can make it refuse
                data = None if properties is None else measure(properties)
                rest = measure([v for v in item.values() if v.__class__ is not str and v is not properties])
            except (TypeError, ValueError):
                raise _Inexact from None
            # a float past 2**63 prints with "e+" (so may strings: then the stdlib reads it too);
            # find() and count(), not ``in``: bytes' ``in`` tries its operand as an integer first,
            # formatting a TypeError each time (~9,000 instructions of an LLM event)
            if rest.find(b"e+") != -1 or (data is not None and data.find(b"e+") != -1):
                raise _Inexact
            if brackets(rest) + (0 if data is None else brackets(data)) > MAX_DEPTH:  # maybe too deep: the full check
                event, item_errors = validate_event(item, fields)
                data = None
            else:  # not NaN, infinite nor a lone surrogate: orjson refuses them
                event, item_errors = _fields(item, fields, False, [])
        else:
            event, item_errors = validate_event(item, fields)
        for error in item_errors:
            errors.append({"index": index, **error})
        if not item_errors:
            good.append(event)
            if data is not None:
                measured[id(event)] = data
    return good, errors, measured


_LLM_NAMES = frozenset(name for name, _, _ in LLM_EVENT)
_LLM_DEFAULTS = {name: default for name, _, default in LLM_EVENT}
_PROMPT_NAME, _GENERATION_NAME = _LLM_DEFAULTS["prompt_event_name"], _LLM_DEFAULTS["generation_event_name"]
_fromisoformat = _dt.datetime.fromisoformat
_FLOAT_EXACT = 2.0**63  # below: a double orjson read is what the stdlib reads (above, maybe an integer)


def _llm_event(item: dict[str, Any]) -> tuple[dict[str, Any], str | None] | None:
    """An LLM event as :func:`_fields` makes it from an item orjson read, and its properties'
    JSON as text, when the item is as the official SDK sends one (no other field, each of its usual
    type, a float latency); None for anything else, which the full checks then answer.
    Raises :class:`_Inexact` as :func:`_read_items` does. Why: the loop over the fields was
    ~2 µs of an LLM event's ~6 µs of reading."""
    if not _LLM_NAMES.issuperset(item):  # the set's own loop over the keys: ~2/3 of ``keys() <=``
        return None
    get = item.get
    user, prompt, generation = get("user_id"), get("prompt"), get("generation")
    prompt_name, generation_name = get("prompt_event_name"), get("generation_event_name")
    assistant, properties, timestamp = get("assistant_id"), get("properties"), get("timestamp")
    latency, thread = get("latency"), get("thread_id")
    if user.__class__ is not str or prompt.__class__ is not str or generation.__class__ is not str or not user.strip():
        return None
    for text in (prompt_name, generation_name, assistant, timestamp, thread):  # a loop: no generator
        if text is not None and text.__class__ is not str:
            return None
    if latency is not None and (latency.__class__ is not float or not 0 <= latency < _FLOAT_EXACT):
        return None
    text = None
    if properties.__class__ is dict:
        try:
            data = measure(properties)
        except (TypeError, ValueError):  # deeper than orjson writes: the full checks
            return None
        text = data.decode("utf-8")  # the store's text; ``in`` on text, not bytes: see _read_items
        if "+" in text and "e+" in text:  # one character is a memchr; two, ten times that
            raise _Inexact
        if ("[" in text or "{" in text[1:]) and brackets(data) >= MAX_DEPTH:  # maybe too deep (with the event)
            return None
    elif properties is not None:
        return None
    if timestamp is not None:  # what timestamp_us accepts, at a third of its cost (it is read again for the row)
        try:
            year = _fromisoformat(timestamp).year
        except ValueError:  # maybe another spelling timestamp_us reads: the full checks
            return None
        if not 1 < year < 9999:  # a UTC offset may take it out of the years iso() can show
            return None
    return {"user_id": user, "prompt": prompt, "generation": generation,
            "prompt_event_name": _PROMPT_NAME if prompt_name is None else prompt_name,
            "generation_event_name": _GENERATION_NAME if generation_name is None else generation_name,
            "assistant_id": assistant, "properties": properties, "timestamp": timestamp, "latency": latency,
            "thread_id": thread}, text


def validate_event(item: Any, fields: tuple[Field, ...], *,
                   lenient: bool = False) -> tuple[dict[str, Any], list[Error]]:
    """``lenient`` (for OTLP spans, whose sender cannot fix one attribute): a number out of
    range (a NaN or infinite double) becomes null, and an optional field that fails its
    check (a negative latency: a span that ends before it starts) takes its default; each
    such error is still returned, marked ``"repaired": True``, with the event to store."""
    if isinstance(item, Unparsable):
        return {}, [{"loc": ["body"], "msg": f"event {item.reason}"}]
    if not isinstance(item, dict):
        return {}, [{"loc": ["body"], "msg": f"event must be a JSON object, got {_type(item)}"}]
    try:  # orjson, when installed: it refuses lone surrogates and depths beyond 254
        data: bytes | None = measure(item)
        # what can be deep or a NaN: the values that are not text (the prompt and answer are
        # most of the bytes; scanning them for brackets and "null" cost more than the rest)
        structure = measure([value for value in item.values() if value.__class__ is not str])
    except (TypeError, ValueError, RecursionError):
        data = None
    if data is not None and brackets(structure) <= MAX_DEPTH:
        # fewer brackets than levels allowed ("[" of the list for "{" of the event): not too
        # deep; NaN and infinities come out as null
        too_deep, odd_number = False, structure.find(b"null") != -1 and _scan(item)[1]
    else:
        too_deep, odd_number = _scan(item)
    if too_deep:
        return {}, [{"loc": ["body"], "msg": f"event nested deeper than {MAX_DEPTH} levels"}]
    repaired: list[Error] = []
    if odd_number:
        out_of_range = {"loc": ["body"], "msg": "event holds a number out of range (infinite or NaN)"}
        if not lenient:
            return {}, [out_of_range]
        item = finite(item)
        repaired.append({**out_of_range, "repaired": True})
    try:  # a lone surrogate (valid in JSON text, not in UTF-8) cannot be stored
        if data is None:  # (orjson measured it: it would have refused one)
            dumps(item)
    except UnicodeEncodeError as exc:
        return {}, [{"loc": ["body"], "msg": f"event holds text that is not valid Unicode: {exc.reason}"}]
    return _fields(item, fields, lenient, repaired)


def _fields(item: dict[str, Any], fields: tuple[Field, ...], lenient: bool,
            repaired: list[Error]) -> tuple[dict[str, Any], list[Error]]:
    """The event of ``item``'s ``fields``, each checked (see :func:`validate_event`)."""
    event: dict[str, Any] = {}
    errors: list[Error] = []
    for name, check, default in fields:
        value = item.get(name)
        if value is None:
            if default is not _MISSING:
                event[name] = default
                continue
            if name not in item:
                errors.append({"loc": ["body", name], "msg": "field required"})
                continue
        elif value.__class__ is _PASSES.get(check):  # most fields: a lookup, no call
            event[name] = value
            continue
        message = check(value)
        if message and lenient and default is not _MISSING:
            repaired.append({"loc": ["body", name], "msg": f"{name} {message}", "repaired": True})
            event[name] = default
        elif message:
            errors.append({"loc": ["body", name], "msg": f"{name} {message}"})
        else:
            event[name] = value
    return event, errors + repaired


def validate_encoded(event: dict[str, Any], fields: tuple[Field, ...],
                     measured: bytes | None = None) -> tuple[dict[str, Any], list[Error]]:
    """:func:`validate_event` (lenient) for an event our encoder and redaction policy made from
    an OTLP span: the same answer, at a fraction of the cost for the usual event, whose fields
    have their types already and whose timestamp is the encoder's own ISO text. Only what a
    span can still get wrong is looked at (blank names, a negative or non-finite latency, NaN,
    depth and lone surrogates in what its attributes became); anything else unusual goes
    through :func:`validate_event`. ``measured``: the event's properties as JSON, if the
    redaction policy encoded them already (:meth:`~trubrics_otel.translate.redaction.Policy.apply_all`)."""
    try:
        if len(event) == len(fields) and _plain(event, fields is LLM_EVENT, measured):
            return event, []
    except (KeyError, TypeError, ValueError, RecursionError):  # orjson refused: the careful path
        pass
    return validate_event(event, fields, lenient=True)


def _plain(event: dict[str, Any], llm: bool, data: bytes | None) -> bool:
    properties = event["properties"]
    if properties.__class__ is not dict:
        return False
    if data is None:
        data = measure(properties)  # raises for lone surrogates, keys that are not text…
    if brackets(data) > MAX_DEPTH or (data.find(b"null") != -1 and _scan(properties)[1]):
        return False
    user = event["user_id"]
    if llm:
        latency = event["latency"]
        if latency is not None and (latency.__class__ is not float or not 0 <= latency < math.inf):
            return False
        texts = (user, event["prompt"], event["generation"], event["prompt_event_name"],
                 event["generation_event_name"], event["timestamp"])
        optional = (event["assistant_id"], event["thread_id"])
        for text in optional:  # loops, not all(...): no generator per event
            if text is not None and text.__class__ is not str:
                return False
    else:
        name = event["event"]
        if name.__class__ is not str or not name.strip():
            return False
        texts = (user, name, event["timestamp"])
        optional = ()
    for text in texts:
        if text.__class__ is not str:
            return False
    if not user.strip():
        return False
    measure((texts, optional))  # raises for a lone surrogate
    return True


def finite(value: Any) -> Any:
    """``value`` with every number out of range (see ``_out_of_range``) replaced by None."""
    if _out_of_range(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)
