"""OTLP/JSON trace requests → spans, read straight from the parsed JSON: no protobuf on the way.

:func:`trubrics_otel.receive.otlp.decode` calls it for ``application/json`` bodies::

    spans, rejected, dropped = read(body, attribute_limit)

The spans are those the protobuf path makes of the same request (``otlp.to_spans``), field
for field: ids from hex, enums by name or number, 64-bit integers as strings or numbers,
lowerCamelCase or snake_case keys, ``null`` as absent, bytes in base64, the same
``attribute_limit`` and counts, the same spans rejected. Why: protobuf's own JSON parser
(``json_format.ParseDict``) is pure Python, ~20x the cost of the protobuf path; orjson
parses in C and this reads each value once.

A body that is not an OTLP/JSON request (not JSON, a wrong type, ids that are not hex,
values nested past protobuf's depth limit, two values in one ``AnyValue``) raises
:class:`OtlpJsonError` naming where and what.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from trubrics_otel.receive.received import ReceivedScope, ReceivedSpan, contexts, first, invalid


class OtlpJsonError(ValueError):
    """The body is not an OTLP/JSON trace request; the message says where and why."""


class _Bad(ValueError):
    """A wrong value, located by the caller."""


_KINDS = (SpanKind.INTERNAL, SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT,
          SpanKind.PRODUCER, SpanKind.CONSUMER)  # by OTLP number; 0 and unknown read as INTERNAL
_KIND_NAMES = {name: number for number, name in enumerate((
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"))}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_UNSET, _OK, _ERROR = Status(StatusCode.UNSET), Status(StatusCode.OK), StatusCode.ERROR
_unhex = binascii.unhexlify
_BOM = b"\xef\xbb\xbf"
_UINT64, _INT64, _INT32 = (1 << 64) - 1, 1 << 63, 1 << 31
_MAX_DEPTH = 100
"""Messages nested deeper are refused, as ``json_format`` refuses them (the request is 1)."""

# Both spellings of the fields read, for the levels that are not per span.
_SNAKE = {camel: "".join("_" + c.lower() if c.isupper() else c for c in camel) for camel in (
    "resourceSpans", "scopeSpans", "schemaUrl", "traceId", "spanId", "parentSpanId", "traceState",
    "startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "arrayValue", "kvlistValue")}
_CAMEL = {snake: camel for camel, snake in _SNAKE.items()}
_SPAN_SNAKE = frozenset(_SNAKE[key] for key in (
    "traceId", "spanId", "parentSpanId", "traceState", "startTimeUnixNano", "endTimeUnixNano"))
_STR, _BOOL, _INT, _DOUBLE, _BYTES, _ARRAY, _KVLIST = range(7)
_VALUE_KINDS: dict[str, int] = {}
for _code, _name in enumerate(("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue",
                               "arrayValue", "kvlistValue")):
    _VALUE_KINDS[_name] = _VALUE_KINDS["".join("_" + c.lower() if c.isupper() else c for c in _name)] = _code


def read(body: bytes, limit: int | None) -> tuple[list[ReceivedSpan], list[str], int]:
    """(spans, one message per rejected span, attributes/events/links dropped past ``limit``)."""
    if body[:3] == _BOM:  # json.loads accepted one
        body = body[3:]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpJsonError(f"not JSON: {exc}") from None
    if document.__class__ is not dict:
        raise OtlpJsonError("the top level is not a JSON object")
    spans: list[ReceivedSpan] = []
    rejected: list[str] = []
    dropped = 0
    where = "the request"
    try:
        for i, resource_spans in enumerate(_list(document, "resourceSpans")):
            where = f"resourceSpans[{i}].resource"
            resource = _object(resource_spans.get("resource"), "resource")
            attributes = _attributes(resource, limit, 4) if resource else {}
            where = f"resourceSpans[{i}]"
            resource = Resource(attributes, _text(_get(resource_spans, "schemaUrl"), "schemaUrl") or None)
            for j, scope_spans in enumerate(_list(resource_spans, "scopeSpans")):
                where = f"resourceSpans[{i}].scopeSpans[{j}]"
                scope = _object(scope_spans.get("scope"), "scope") or {}
                scope = ReceivedScope(_text(scope.get("name"), "scope name"),
                                    _text(scope.get("version"), "scope version") or None,
                                    _text(_get(scope_spans, "schemaUrl"), "schemaUrl") or None,
                                    _attributes(scope, limit, 5))
                for k, span in enumerate(_list(scope_spans, "spans")):
                    where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    dropped += _span(span, resource, scope, limit, spans, rejected)
    except RecursionError:
        raise OtlpJsonError(f"{where}: values nested too deep") from None
    except (_Bad, ValueError, TypeError) as exc:  # TypeError: int() or float() of an object
        raise OtlpJsonError(f"{where}: {exc}") from None
    return spans, rejected, dropped


def _span(span: Any, resource: Resource, scope: ReceivedScope, limit: int | None,
          spans: list[ReceivedSpan], rejected: list[str]) -> int:
    """Append the span to ``spans`` (or its problem to ``rejected``); the count it dropped."""
    if span.__class__ is not dict:
        raise _Bad("the span is not a JSON object")
    if not _SPAN_SNAKE.isdisjoint(span):
        span = {_CAMEL.get(key, key): value for key, value in span.items()}
    get = span.get
    name = get("name")
    if name.__class__ is not str:
        name = _text(name, "name")
    trace_hex, span_hex, parent_hex = get("traceId"), get("spanId"), get("parentSpanId")
    try:  # each helper below is the full reading; the common case is inline
        trace_bytes, span_bytes = _unhex(trace_hex), _unhex(span_hex)
        parent_bytes = b"" if parent_hex is None else _unhex(parent_hex)
    except (ValueError, TypeError):
        trace_bytes, span_bytes = _id(trace_hex, "traceId"), _id(span_hex, "spanId")
        parent_bytes = _id(parent_hex, "parentSpanId")
    end_time, start_time = get("endTimeUnixNano"), get("startTimeUnixNano")
    if end_time.__class__ is str and len(end_time) < 20 and end_time.isdecimal():
        end_time = int(end_time)
    else:
        end_time = _integer(end_time, 0, _UINT64, "endTimeUnixNano")
    if start_time.__class__ is str and len(start_time) < 20 and start_time.isdecimal():
        start_time = int(start_time)
    else:
        start_time = _integer(start_time, 0, _UINT64, "startTimeUnixNano")
    all_flags = get("flags")
    if all_flags.__class__ is not int or not 0 <= all_flags <= 0xFFFFFFFF:
        all_flags = _integer(all_flags, 0, 0xFFFFFFFF, "flags")
    trace_state = get("traceState")
    if trace_state.__class__ is not str:
        trace_state = _text(trace_state, "traceState")
    kind = get("kind")
    if kind.__class__ is not int or not 0 <= kind < 6:
        kind = _enum(kind, _KIND_NAMES, "kind")
    status, code, message = get("status"), 0, ""
    if status is not None:
        if status.__class__ is not dict:
            raise _Bad("status is not a JSON object")
        code, message = status.get("code"), status.get("message")
        if code.__class__ is not int or not 0 <= code <= 2:
            code = _enum(code, _STATUS_NAMES, "status code")
        if message.__class__ is not str:
            message = _text(message, "status message")
    pairs, events, links = get("attributes"), get("events"), get("links")
    if events is not None and events.__class__ is not list:
        raise _Bad("events is not a list")
    if links is not None and links.__class__ is not list:
        raise _Bad("links is not a list")
    attributes = _attributes(span, limit, 5)  # also checks the lists it reads
    dropped = 0
    if limit is not None and ((pairs and len(pairs) > limit) or (events and len(events) > limit)
                              or (links and len(links) > limit)):
        dropped = sum(max(0, len(many) - limit) for many in (pairs, events, links) if many)
    if events:
        events = tuple(
            Event(_text(event.get("name"), "event name"), _attributes(event, limit, 6),
                  _integer(_get(event, "timeUnixNano"), 0, _UINT64, "event timeUnixNano") or None,
                  limit=None)
            for event in map(_element, first(events, limit)))
    else:
        events = ()
    if links:
        links = tuple(_links(first(links, limit), limit))
    else:
        links = ()
    problem = invalid(trace_bytes, span_bytes, parent_bytes, end_time)
    if problem:
        rejected.append(f"span {name!r}: {problem}")
        return 0
    context, parent = contexts(trace_bytes, span_bytes, parent_bytes, all_flags, trace_state)
    if code == 2:  # the SDK only keeps a description on ERROR
        status = Status(_ERROR, message)
    else:
        status = _OK if code == 1 else _UNSET
    spans.append(ReceivedSpan(
        name, context, parent, resource, attributes, events, links,
        _KINDS[kind] if 0 <= kind < 6 else SpanKind.INTERNAL, status, start_time or None, end_time, scope))
    return dropped


def _links(links: list, limit: int | None) -> Iterator[Link]:
    """The links with ids of the right lengths (as the protobuf path keeps them); every id must be hex."""
    for link in map(_element, links):
        trace_bytes, span_bytes = _id(_get(link, "traceId"), "link traceId"), _id(_get(link, "spanId"), "link spanId")
        attributes = _attributes(link, limit, 6)
        if len(trace_bytes) == 16 and len(span_bytes) == 8:
            yield Link(SpanContext(int.from_bytes(trace_bytes, "big"), int.from_bytes(span_bytes, "big"), True),
                       attributes)


def _attributes(owner: dict, limit: int | None, depth: int) -> dict[str, Any]:
    """``owner["attributes"]`` (key-value pairs at message ``depth``) as the SDK holds them.

    The common pair (a key, then one text, number or boolean) is read inline."""
    pairs = owner.get("attributes")
    attributes: dict[str, Any] = {}
    if not pairs:
        if pairs is None or pairs.__class__ is list:
            return attributes
        raise _Bad("attributes is not a list")
    if pairs.__class__ is not list:
        raise _Bad("attributes is not a list")
    for pair in (pairs if limit is None or len(pairs) <= limit else pairs[:limit]):
        try:  # subscripts, not .get(): this loop runs for every attribute
            key = pair["key"]
            (kind, item), = pair["value"].items()
        except (TypeError, KeyError, ValueError, AttributeError):
            pass  # not the common shape: read in full below
        else:
            if key.__class__ is str:
                if kind == "stringValue" and item.__class__ is str:
                    attributes[key] = item
                    continue
                if kind == "intValue":
                    if item.__class__ is int and -_INT64 <= item < _INT64:
                        attributes[key] = item
                        continue
                    if item.__class__ is str and len(item) < 19 and item.isdecimal():  # int64 as text
                        attributes[key] = int(item)
                        continue
                if (kind == "doubleValue" and item.__class__ is float) or (kind == "boolValue" and item.__class__ is bool):
                    attributes[key] = item
                    continue
        if pair.__class__ is not dict:
            raise _Bad(f"attribute {pair!r:.40} is not a JSON object")
        key = _text(pair.get("key"), "attribute key")
        value = _value(pair.get("value"), limit, depth + 1, key)
        if value is not None:
            attributes[key] = value
    return attributes


def _value(value: Any, limit: int | None, depth: int, key: str) -> Any:
    """An ``AnyValue`` at message ``depth`` as the SDK holds it; None when it holds nothing."""
    if value is None:
        return None
    if value.__class__ is not dict:
        raise _Bad(f"the value of {key!r:.80} is not a JSON object")
    if depth >= _MAX_DEPTH:
        raise _Bad(f"the value of {key!r:.80} is nested too deep")
    found = None
    for name, item in value.items():
        kind = _VALUE_KINDS.get(name)
        if kind is not None and item is not None:
            if found is not None:
                raise _Bad(f"the value of {key!r:.80} has more than one of stringValue, intValue, …")
            found = kind, item
    if found is None:
        return None
    kind, item = found
    if kind == _STR:
        return _text(item, f"stringValue of {key!r:.80}")
    if kind == _BOOL:
        if item.__class__ is not bool:
            raise _Bad(f"boolValue of {key!r:.80} is not true or false")
        return item
    if kind == _INT:
        return _integer(item, -_INT64, _INT64 - 1, f"intValue of {key!r:.80}")
    if kind == _DOUBLE:
        return _double(item, key)
    if kind == _BYTES:
        if item.__class__ is not str:
            raise _Bad(f"bytesValue of {key!r:.80} is not a base64 string")
        encoded = item.encode()  # as json_format reads it: either alphabet, padding optional
        try:
            return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
        except binascii.Error as exc:
            raise _Bad(f"bytesValue of {key!r:.80} is not base64: {exc}") from None
    items = _object(item, "arrayValue" if kind == _ARRAY else "kvlistValue")
    if depth + 1 >= _MAX_DEPTH:
        raise _Bad(f"the value of {key!r:.80} is nested too deep")
    if kind == _KVLIST:
        return _attributes({"attributes": items.get("values")}, limit, depth + 2)
    values = items.get("values")
    if values is None:
        return ()
    if values.__class__ is not list:
        raise _Bad(f"the array of {key!r:.80} is not a list")
    decoded = []
    for each in first(values, limit):
        try:  # the common shape, as in _attributes
            (kind, item), = each.items()
        except (AttributeError, ValueError):
            pass
        else:
            if (kind == "stringValue" and item.__class__ is str) or (kind == "doubleValue" and item.__class__ is float) \
                    or (kind == "boolValue" and item.__class__ is bool) \
                    or (kind == "intValue" and item.__class__ is int and -_INT64 <= item < _INT64):
                decoded.append(item)
                continue
        each = _value(_element(each), limit, depth + 2, key)
        if each is not None:
            decoded.append(each)
    return tuple(decoded)


def _get(mapping: dict, camel: str) -> Any:
    value = mapping.get(camel)
    return mapping.get(_SNAKE.get(camel, camel)) if value is None else value


def _list(mapping: dict, camel: str) -> list:
    many = _get(mapping, camel)
    if many is None:
        return []
    if many.__class__ is not list:
        raise _Bad(f"{camel} is not a list")
    for each in many:
        if each.__class__ is not dict:
            raise _Bad(f"an item of {camel}, {each!r:.40}, is not a JSON object")
    return many


def _element(each: Any) -> dict:
    if each.__class__ is not dict:
        raise _Bad(f"a list item {each!r:.40} is not a JSON object")
    return each


def _object(value: Any, what: str) -> dict | None:
    if value is None or value.__class__ is dict:
        return value
    raise _Bad(f"{what} is not a JSON object")


def _text(value: Any, what: str) -> str:
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    raise _Bad(f"{what} {value!r:.40} is not a string")


def _id(value: Any, what: str) -> bytes:
    if not value:
        if value is None or value == "":
            return b""
        raise _Bad(f"{what} {value!r:.40} is not a hex string")
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError, TypeError):
        raise _Bad(f"{what} {value!r:.40} is not hex") from None


def _integer(value: Any, low: int, high: int, what: str) -> int:
    """A JSON number or string as ``json_format`` reads an integer field."""
    if value.__class__ is int:
        number = value
    elif value.__class__ is str and value.isdecimal():
        number = int(value)
    elif value is None:
        return 0
    elif value.__class__ is float and value.is_integer():
        number = int(value)
    elif value.__class__ is str and " " not in value:
        try:
            number = int(value)
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                raise _Bad(f"{what} {value!r:.40} is not an integer") from None
            if not as_float.is_integer():
                raise _Bad(f"{what} {value!r:.40} is not an integer") from None
            number = int(as_float)
    else:
        raise _Bad(f"{what} {value!r:.40} is not an integer")
    if low <= number <= high:
        return number
    raise _Bad(f"{what} {value!r:.40} is out of range")


def _double(value: Any, key: str) -> float:
    if value.__class__ is float:
        return value
    if value != "nan":  # float() takes it; json_format wants "NaN"
        try:
            return float(value)
        except (ValueError, TypeError):
            pass
    raise _Bad(f"doubleValue of {key!r:.80} {value!r:.40} is not a number")


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    """A name or number; an unknown name reads as 0, as ``json_format`` ignores it."""
    if value.__class__ is int:
        number = value
    elif value is None:
        return 0
    else:
        number = names.get(value) if value.__class__ is str else None
        if number is None:
            try:
                number = int(value)
            except ValueError:
                return 0
            except TypeError:
                raise _Bad(f"{what} {value!r:.40} is not a name or number") from None
    if -_INT32 <= number < _INT32:
        return number
    raise _Bad(f"{what} {value!r:.40} is out of range")
