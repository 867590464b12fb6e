"""OTLP attributes read from their wire bytes: the decoder's hot loop, apart.

::

    request = RawExportTraceServiceRequest.FromString(body)   # protobuf parses the rest
    span = request.resource_spans[0].scope_spans[0].spans[0]
    attributes_of(span.attributes)    # {"gen_ai.request.model": "gpt-4o", ...}, as the SDK holds them

Why: reading one ``KeyValue`` through protobuf's Python objects (its key, its ``AnyValue``,
the value's field) costs ~6,000 instructions, two thirds of decoding an LLM span's ~11
attributes. :data:`RawExportTraceServiceRequest` is the OTLP request with every ``KeyValue``
field declared ``bytes`` (the same wire format: a length-delimited field), so protobuf parses
everything else in C and hands over each pair's bytes. A pair as every OTLP sender writes
it (its key, then a text, integer, double or boolean value) is read here; a pair already met
(a model name, a provider, a finish reason: the same bytes span after span) is one dict
lookup, and a pair too long to be remembered (a prompt) is not looked up at all: hashing its
bytes cost ~1,200 instructions of a span's ~267,000. Any other pair (arrays, key-value
lists, bytes, fields out of order) is parsed by protobuf's own ``KeyValue``, so the values
are exactly what it gives. A malformed pair raises protobuf's ``DecodeError``, as parsing
the whole request would have.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_KEY_VALUE = ".opentelemetry.proto.common.v1.KeyValue"


def _raw_request_class() -> Any:
    """``ExportTraceServiceRequest`` with ``KeyValue`` fields as ``bytes``, in a pool of its
    own (same names: protobuf's errors read as before)."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2, trace_service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        proto.ClearField("service")
        messages = list(proto.message_type)
        while messages:
            message = messages.pop()
            messages.extend(message.nested_type)
            for field in message.field:
                if field.type_name == _KEY_VALUE:
                    field.ClearField("type_name")
                    field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"))


RawExportTraceServiceRequest = _raw_request_class()

MAX_KNOWN = 4096
"""Pairs remembered by their bytes (each at most :data:`KNOWN_PAIR_BYTES`): then forgotten at once."""
KNOWN_PAIR_BYTES = 96
_keys: dict[bytes, str] = {}
_double = struct.Struct("<d").unpack_from
_INT64 = 1 << 63
_tables: dict[int | None, dict[bytes, tuple[str, Any]]] = {}
"""The pairs remembered, one table per ``limit`` (arrays and lists inside a value keep their
first ``limit`` items)."""


def attributes_of(pairs: Sequence[bytes], limit: int | None = None) -> dict[str, Any]:
    """The first ``limit`` pairs (all when None) as the SDK holds attributes: text, bool, int,
    float, a tuple for an array, a dict for a key-value list, bytes; an empty value is left out.
    (A loop, not ``dict(map(...))`` over a dict's ``__missing__``: a pair read from C costs
    more than the lookups save.)"""
    known = _tables.get(limit)
    if known is None:
        if len(_tables) >= 8:  # limits are settings: never this many
            _tables.clear()
        known = _tables[limit] = {}
    attributes: dict[str, Any] = {}
    for raw in (pairs if limit is None or len(pairs) <= limit else pairs[:limit]):
        short = len(raw) <= KNOWN_PAIR_BYTES  # a longer one is never remembered: not hashed either
        found = known.get(raw) if short else None
        if found is None:
            found = _pair(raw)
            if found is None:
                pair = KeyValue.FromString(raw)  # a DecodeError for a malformed pair
                value = value_of(pair.value, limit)
                if value is None:
                    continue
                found = pair.key, value
                if value.__class__ is not tuple or not _plain(value):
                    attributes[found[0]] = value  # a dict (key-value list) is not shared
                    continue
            if short:
                if len(known) >= MAX_KNOWN:
                    known.clear()
                known[raw] = found
        key, value = found
        attributes[key] = value
    return attributes


def _plain(items: tuple[Any, ...]) -> bool:
    """An array of texts and numbers: a value spans may share."""
    return all(item.__class__ in _SHAREABLE for item in items)


_SHAREABLE = frozenset({str, int, float, bool, bytes})


def value_of(value: AnyValue, limit: int | None = None) -> Any:
    """An ``AnyValue`` message as the SDK holds it; None when it holds nothing."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        values = value.array_value.values
        items = []
        for item in (values if limit is None or len(values) <= limit else values[:limit]):
            decoded = value_of(item, limit)
            if decoded is not None:
                items.append(decoded)
        return tuple(items)
    if which == "kvlist_value":
        pairs = value.kvlist_value.values
        attributes: dict[str, Any] = {}
        for pair in (pairs if limit is None or len(pairs) <= limit else pairs[:limit]):
            decoded = value_of(pair.value, limit)
            if decoded is not None:
                attributes[pair.key] = decoded
        return attributes
    return getattr(value, which)


def _pair(raw: bytes) -> tuple[str, Any] | None:
    """(key, value) of a pair written as ``key = 1`` then ``value = 2`` holding one text,
    integer, double or boolean, its lengths under 16 KiB; None for any other shape or bad
    UTF-8 (protobuf decides). Straight-line: each step of Python costs here."""
    try:
        at = raw[1] + 2
        if at > 0x81 or raw[0] != 0x0A or raw[at] != 0x12:  # field 1: the key; field 2: the value
            return None
        name = raw[2:at]
        key = _keys.get(name)
        if key is None:
            key = name.decode()
            if len(_keys) >= MAX_KNOWN:
                _keys.clear()
            _keys[name] = key
        size = raw[at + 1]
        at += 2
        if size > 0x7F:  # a two-byte length
            size += (raw[at] << 7) - 0x80
            at += 1
            if size > 0x3FFF:
                return None
        if at + size != len(raw) or not size:
            return None
        tag = raw[at]
        if tag == 0x0A:  # string_value
            size = raw[at + 1]
            at += 2
            if size > 0x7F:
                size += (raw[at] << 7) - 0x80
                at += 1
                if size > 0x3FFF:
                    return None
            return (key, raw[at:].decode()) if at + size == len(raw) else None
        if tag == 0x18:  # int_value: a varint, two's complement
            number, end = _varint(raw, at + 1)
            return (key, number - (number & _INT64) * 2) if end == len(raw) else None
        if tag == 0x21 and at + 9 == len(raw):  # double_value: 8 bytes, little-endian
            return key, _double(raw, at + 1)[0]
        if tag == 0x10 and at + 2 == len(raw) and raw[at + 1] < 0x80:  # bool_value
            return key, raw[at + 1] != 0
        return None
    except (IndexError, UnicodeDecodeError):
        return None


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    """The varint at ``at`` and where it ends (IndexError past the end)."""
    number, shift = 0, 0
    while True:
        byte = raw[at]
        at += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number & 0xFFFFFFFFFFFFFFFF, at
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")
