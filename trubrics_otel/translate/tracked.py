"""``TrackedSpan``: the span of one ``track``/``track_llm`` call, filled in when first read.

::

    record = (VERSION, EVENT, trace_id, span_id, 0, None, ("u1", "Sign up", '{"plan":"pro"}', end_ns))
    span = TrackedSpan(record)                    # nothing computed yet
    processor.enqueue(span)
    # later, on the export thread, span.attributes / span.context build the whole span

Why lazy: ``track`` must cost about what the official SDK's append-a-dict costs (2–4 µs a
call), and building a ``ReadableSpan`` eagerly (an attribute dict, a ``SpanContext``,
thirteen fields) costs as much again. So the call keeps only a *record*: a tuple of its
arguments, already checked and converted, with the span's ids (or, stored by the fast paths,
what they are hashed from: :data:`KEYED`) and the time taken.
Every field of the span is computed from that record the first time anything reads it,
which is the export thread. To processors and exporters it is an ordinary finished
``ReadableSpan`` (same attributes as any other Trubrics span, see :mod:`semconv`).

A record's properties are the caller's object as given. :func:`to_bytes` (JSON when
``orjson`` is installed and takes the record, else a tagged :mod:`marshal` subset; both
outlive a Python upgrade, see :mod:`.record_codec`; for the crash journal and the spool)
snapshots them as a side effect, falling back to JSON text for objects marshal does not
know; a record kept in memory gets its JSON snapshot from :func:`with_json_properties`. Bytes are turned back into the same span (same ids) by
the export thread or by a later process: see :func:`spans_from_bytes`.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.logs import RateLimitedLog
from trubrics_otel.translate.jsonable import MAX_PROPERTIES_CHARS, dumps, encode_string
from trubrics_otel.translate.record_codec import (
    JSON_FORMAT,
    UnknownFormat,
    decode,
    encode,
    json_encoder,
    read_json,
)

EVENT = "e"
LLM = "l"
VERSION = 1
"""Bumped whenever a record's layout changes: a journal of another version is not replayed."""
KEYED = 2
"""The layout the app thread's fast paths store (JSON only): ``[KEYED, kind, key, n, body]``,
no ids but the writer's random 64-bit ``key`` and the call's number ``n`` (from 1), of which
the ids are a hash (:func:`keyed_ids`), worked out when read. Why: drawing three random 64-bit
ids was a tenth of ``track_llm``; a hash is as random, and the same at every read (a record
read again after a crash is the same span). No parent, no ``user_context``: those calls
take the full path. Read back as the :data:`VERSION` tuple."""
NEWEST = KEYED

# The fields of a record, and of its body for each kind (records are plain tuples: cheap to
# build on the app's thread, and marshal stores them as they are):
VERSION_AT, KIND_AT, TRACE_ID_AT, SPAN_ID_AT, PARENT_ID_AT, CONTEXT_AT, BODY_AT = range(7)
"""record = (VERSION, kind, trace_id, span_id, parent_span_id (0: none), context attributes
(a dict from user_context, or None), body); the body is a list when read back from JSON."""
EVENT_FIELDS = ("user_id", "event", "properties", "end_ns")
LLM_FIELDS = ("user_id", "prompt", "generation", "prompt_event_name", "generation_event_name",
              "model", "properties", "end_ns", "latency", "thread_id", "usage")
"""latency: seconds, None when unknown; usage: GenAI usage attributes (a dict) or None."""
EVENT_NAME_AT = EVENT_FIELDS.index("event")
_BODY_LENGTH = {EVENT: len(EVENT_FIELDS), LLM: len(LLM_FIELDS)}
_PROPERTIES_AT = {EVENT: EVENT_FIELDS.index("properties"), LLM: LLM_FIELDS.index("properties")}
"""Where a body keeps its properties: a dict as the caller gave it (the journal's marshal
snapshots it), or JSON text, or None."""

TrackedRecord = tuple[Any, ...]

LOW_64 = (1 << 64) - 1
"""A record in the JSON format is ``[VERSION, kind, trace_id >> 64, trace_id & LOW_64,
span_id, parent_id, context, body]``: JSON writers stop at 64-bit integers."""
_JSON = json_encoder()

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
RESOURCE = Resource.create({})
SCOPE = InstrumentationScope(sc.SCOPE_NAME)
_warn = RateLimitedLog(logging.getLogger("trubrics")).warning
_UNSET = Status(StatusCode.UNSET)


class TrackedSpan(ReadableSpan):
    """A finished span computed from a :data:`TrackedRecord` on first read (see the module docstring)."""

    def __init__(self, record: TrackedRecord) -> None:
        # deliberately not ReadableSpan.__init__: that is what _fill does, later
        self.record = record

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not set yet: the span's private fields before _fill
        if not name.startswith("_") or "_name" in self.__dict__:
            raise AttributeError(name)
        self._fill()
        return object.__getattribute__(self, name)

    def _fill(self) -> None:
        name, attributes, start, end, kind = span_fields(self.record)
        _, _, trace_id, span_id, parent_id, _, _ = self.record
        ReadableSpan.__init__(
            self, name, SpanContext(trace_id, span_id, False, _SAMPLED),
            SpanContext(trace_id, parent_id, False, _SAMPLED) if parent_id else None,
            RESOURCE, attributes, (), (), kind, None, _UNSET, start, end, SCOPE,
        )


def span_fields(record: TrackedRecord) -> tuple[str, dict[str, Any], int, int, SpanKind]:
    """Name, attributes, start and end (ns) and kind of the span a record stands for."""
    _, kind, _, _, _, context, body = record
    if kind == EVENT:
        user, event, properties, end = body
        attributes: dict[str, Any] = {sc.USER_ID: user, sc.TRUBRICS_EVENT: event}
        if properties is not None:
            attributes[sc.TRUBRICS_PROPERTIES] = json_properties(properties)
        start, name, span_kind = end, event, SpanKind.INTERNAL
    else:
        user, prompt, generation, prompt_name, generation_name, model, properties, end, \
            latency, thread, usage = body
        attributes = {
            sc.USER_ID: user,
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_INPUT_MESSAGES: _message_json("user", prompt),
            sc.GEN_AI_OUTPUT_MESSAGES: _message_json("assistant", generation),
        }
        if prompt_name != "Prompt":  # the encoder's defaults need no attribute
            attributes[sc.TRUBRICS_PROMPT_EVENT_NAME] = prompt_name
        if generation_name != "Generation":
            attributes[sc.TRUBRICS_GENERATION_EVENT_NAME] = generation_name
        if model is not None:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        if thread is not None:
            attributes[sc.GEN_AI_CONVERSATION_ID] = thread
        if properties is not None:
            attributes[sc.TRUBRICS_PROPERTIES] = json_properties(properties)
        if usage:
            attributes.update(usage)
        if latency is None:
            attributes[sc.TRUBRICS_LATENCY_UNKNOWN] = True
            latency = 0.0
        start = end - int(latency * 1e9)
        name = f"{sc.OPERATION_CHAT} {model}" if model else sc.OPERATION_CHAT
        span_kind = SpanKind.CLIENT
    if context:  # what the surrounding user_context adds; the call's own arguments win
        for key, value in context.items():
            attributes.setdefault(key, value)
    return name, attributes, start, end, span_kind


def json_properties(properties: Any) -> str:
    """A record's properties as the JSON object text the span carries."""
    return properties if properties.__class__ is str else dumps(properties, _warn)


def with_json_properties(record: TrackedRecord) -> TrackedRecord:
    """The record with its properties as JSON text: a snapshot, for a record kept in memory
    (a record in the journal is a snapshot already), or one :mod:`marshal` cannot store."""
    body = record[BODY_AT]
    at = _PROPERTIES_AT[record[KIND_AT]]
    if body[at] is None or body[at].__class__ is str:
        return record
    body = (*body[:at], json_properties(body[at]), *body[at + 1 :])
    return (*record[:BODY_AT], body)


def to_bytes(record: TrackedRecord) -> bytes:
    """The record for the journal or the spool: in the JSON format when ``orjson`` takes it,
    else in the marshal format, with properties marshal cannot store as JSON text."""
    if _JSON is not None:
        json_dumps, option = _JSON
        version, kind, trace_id, *rest = record
        try:
            return json_dumps((version, kind, trace_id >> 64, trace_id & LOW_64, *rest), None, option)
        except TypeError:  # a value orjson would write otherwise than the stdlib: marshal it
            pass
    return marshal_bytes(record)


def marshal_bytes(record: TrackedRecord) -> bytes:
    """:func:`to_bytes` in the marshal format, for a record the JSON format has refused."""
    try:
        return encode(record)
    except ValueError:  # an object marshal does not know, or too deep
        return encode(with_json_properties(record))


def spans_from_bytes(
    payloads: Iterable[bytes], logger: logging.Logger, refused: list[bytes] | None = None
) -> list[TrackedSpan]:
    """The spans of records stored by :func:`to_bytes` (spool, journal); see :func:`stored_records`."""
    return [TrackedSpan(record) for record, _ in stored_records(payloads, logger, refused)]


def stored_records(
    payloads: Iterable[bytes], logger: logging.Logger, refused: list[bytes] | None = None
) -> list[tuple[TrackedRecord, bool]]:
    """The records stored by :func:`to_bytes` (spool, journal), each with whether its
    properties are plain JSON within :data:`~.jsonable.MAX_PROPERTIES_CHARS` for sure (read
    from a JSON record no longer than that: the encoder then takes them without a check).
    Damaged ones are logged and skipped; ones in a format this version does not know (a newer
    trubrics-otel wrote them) go to ``refused``, for the caller to keep, or are logged when
    it is None."""
    records = []
    body_length, blake2b, pack, to_int = _BODY_LENGTH.get, _blake2b, _pack_key_and_number, _from_bytes
    for payload in payloads:
        if payload[:1] == b"[":  # the fast paths' KEYED layout, read inline (the export thread's cost)
            try:
                stored = read_json(payload)
                if stored[VERSION_AT] == KEYED:
                    _, kind, key, n, body = stored
                    if body.__class__ is list and len(body) == body_length(kind):
                        ids = blake2b(pack(key, n), digest_size=24).digest()  # keyed_ids, inlined
                        record = (VERSION, kind, to_int(ids[:16], "big") or 1, to_int(ids[16:], "big") or 1,
                                  0, None, body)
                        records.append((record, len(payload) <= MAX_PROPERTIES_CHARS))
                        continue
            except (ValueError, TypeError, IndexError, KeyError, struct.error):
                pass  # from_bytes says what it is
        try:
            record = from_bytes(payload)
        except UnknownFormat as exc:
            if refused is not None:
                refused.append(payload)
            else:
                logger.error("A stored Trubrics event was not sent: %s", exc)
            continue
        if record is None:
            logger.error("An unreadable stored Trubrics event was skipped (%d bytes)", len(payload))
            continue
        records.append((record, payload[0] == JSON_FORMAT and len(payload) <= MAX_PROPERTIES_CHARS))
    return records


def from_bytes(payload: bytes) -> TrackedRecord | None:
    """A record written by :func:`to_bytes`, or None for a damaged one; raises
    :class:`~.record_codec.UnknownFormat` for a format (or record layout) this version does not know."""
    try:
        record = decode(payload)
    except UnknownFormat:
        raise
    except (ValueError, EOFError, TypeError):
        return None
    if type(record) is list:  # the JSON format (see LOW_64), unpacked inline: the export thread's cost
        try:
            if record[VERSION_AT] == KEYED:
                _, kind, key, n, body = record
                record = (VERSION, kind, *keyed_ids(key, n), 0, None, body)
            else:
                version, kind, high, low, span_id, parent_id, context, body = record
                record = (version, kind, high << 64 | low, span_id, parent_id, context, body)
        except (ValueError, TypeError, IndexError, struct.error):  # another layout: a newer release's, or damage
            if record and type(record[VERSION_AT]) is int and record[VERSION_AT] > NEWEST:
                raise UnknownFormat(record[VERSION_AT]) from None
            return None
    if type(record) is not tuple or len(record) != BODY_AT + 1:
        return None
    if record[VERSION_AT] != VERSION:  # a record layout from another release: never guess
        if type(record[VERSION_AT]) is int and record[VERSION_AT] > VERSION:
            raise UnknownFormat(record[VERSION_AT])
        return None
    body, kind = record[BODY_AT], record[KIND_AT]  # a list when stored as JSON: read like the tuple
    if (type(body) is not tuple and type(body) is not list) or kind.__class__ is not str \
            or len(body) != _BODY_LENGTH.get(kind):
        return None
    return record


def keyed_ids(key: int, n: int) -> tuple[int, int]:
    """The trace and span ids of a :data:`KEYED` record: ``blake2b`` of its key and number (the
    key keeps writers apart, the number a writer's calls); raises ``struct.error`` for numbers
    that are not 64-bit."""
    ids = _blake2b(_pack_key_and_number(key, n), digest_size=24).digest()  # trace id, then span id
    return _from_bytes(ids[:16], "big") or 1, _from_bytes(ids[16:], "big") or 1


_blake2b = hashlib.blake2b
_pack_key_and_number = struct.Struct("<QQ").pack
_from_bytes = int.from_bytes


def _message_json(role: str, text: str) -> str:
    """One GenAI message as JSON, built without a generic encoder."""
    return '[{"role":"' + role + '","parts":[{"type":"text","content":' + encode_string(text) + "}]}]"
