"""The spans and scopes both OTLP decoders make (:mod:`.otlp` of protobuf, :mod:`.otlp_json` of
JSON), and the pieces of a span they read alike: whether it is valid, its span contexts.

::

    problem = invalid(trace_id, span_id, parent_id, end_time)   # None, or why it is rejected
    context, parent = contexts(trace_id, span_id, parent_id, flags, trace_state)
    ReceivedSpan(name, context, parent, resource, attributes, events, links, kind, status,
                 start_time, end_time, ReceivedScope(name, version, schema_url, attributes))

Here, below both decoders, so that a JSON span and a protobuf span are one thing made one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, TraceFlags, TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE


class ReceivedSpan(ReadableSpan):
    """A decoded span: the SDK's ``ReadableSpan`` with its fields as plain attributes.

    Why: each SDK property is a Python call, and ``attributes`` / ``events`` build a new
    proxy / tuple on every read; the encoder reads them dozens of times per span. The
    private fields the SDK's own methods use (``to_json``, ``get_span_context``) are set too.
    """

    # Plain class attributes shadow the base class's properties, so instance values win.
    name = context = parent = resource = attributes = events = links = None  # type: ignore[assignment]
    kind = status = start_time = end_time = instrumentation_scope = None  # type: ignore[assignment]
    # The private fields the SDK's own methods read, as aliases: half the stores per span.
    _name = property(lambda self: self.name)
    _context = property(lambda self: self.context)
    _parent = property(lambda self: self.parent)
    _resource = property(lambda self: self.resource)
    _attributes = property(lambda self: self.attributes)
    _events = property(lambda self: self.events)
    _links = property(lambda self: self.links)
    _kind = property(lambda self: self.kind)
    _status = property(lambda self: self.status)
    _start_time = property(lambda self: self.start_time)
    _end_time = property(lambda self: self.end_time)
    _instrumentation_scope = property(lambda self: self.instrumentation_scope)
    _instrumentation_info = None
    wire_ids: tuple[bytes, bytes, bytes] | None = None
    """The trace, span and parent span ids as they came (the protobuf decoder's; the parent's
    empty without one), which the encoder writes as hex with ``bytes.hex``: a quarter of
    formatting the context's integers (``"%032x"``), three times per event."""

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, resource: Resource,
                 attributes: dict[str, Any], events: tuple[Event, ...], links: tuple[Link, ...],
                 kind: SpanKind, status: Status, start_time: int | None, end_time: int,
                 instrumentation_scope: InstrumentationScope) -> None:
        self.name = name  # type: ignore[misc]
        self.context = context  # type: ignore[misc]
        self.parent = parent  # type: ignore[misc]
        self.resource = resource  # type: ignore[misc]
        self.attributes = attributes  # type: ignore[misc]
        self.events = events  # type: ignore[misc]
        self.links = links  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
        self.start_time = start_time  # type: ignore[misc]
        self.end_time = end_time  # type: ignore[misc]
        self.instrumentation_scope = instrumentation_scope  # type: ignore[misc]


class ReceivedScope(InstrumentationScope):
    """The SDK's ``InstrumentationScope`` with its name a plain attribute: the encoder reads
    it several times for every span (which library wrote it), each time a Python call in the SDK's."""

    name = None  # type: ignore[assignment]  # shadows the property: the instance's value wins

    def __init__(self, name: str, version: str | None, schema_url: str | None,
                 attributes: dict[str, Any]) -> None:
        super().__init__(name, version, schema_url, attributes)
        self.name = name  # type: ignore[misc]


def first(many: Sequence[Any], limit: int | None) -> Sequence[Any]:
    """The first ``limit`` of ``many`` (all when ``limit`` is None)."""
    return many if limit is None or len(many) <= limit else many[:limit]


def invalid(trace_id: bytes, span_id: bytes, parent_id: bytes, end_time: int) -> str | None:
    """Why a span cannot become an event with a stable identity; None when it can."""
    if len(trace_id) != 16 or trace_id == _NO_TRACE:
        return "invalid trace id"
    if len(span_id) != 8 or span_id == _NO_SPAN:
        return "invalid span id"
    if parent_id and len(parent_id) != 8:
        return "invalid parent span id"
    if not end_time:
        return "no end time"
    return None


def contexts(trace_id: bytes, span_id: bytes, parent_id: bytes, flags: int,
             trace_state: str) -> tuple[SpanContext, SpanContext | None]:
    """The span's context and its parent's (None without one), of ids :func:`invalid` passed:
    built as tuples, without ``SpanContext``'s own checks (made there)."""
    trace = int.from_bytes(trace_id, "big")
    trace_flags = _FLAGS[flags & 0xFF]
    state = TraceState.from_header([trace_state]) if trace_state else _NO_STATE
    context = _new_context(SpanContext, (trace, int.from_bytes(span_id, "big"), False, trace_flags, state, True))
    if not parent_id:
        return context, None
    # OTLP flags bit 8: whether bit 9 says if the parent is remote; without it, assume so
    remote = bool(flags & 0x200) if flags & 0x100 else True
    parent = int.from_bytes(parent_id, "big")
    return context, _new_context(SpanContext, (trace, parent, remote, trace_flags, _NO_STATE, parent != 0))


_FLAGS = tuple(TraceFlags(flags) for flags in range(256))
_NO_STATE = DEFAULT_TRACE_STATE  # what SpanContext() puts for no state
_new_context = tuple.__new__  # SpanContext is a tuple: (trace id, span id, remote, flags, state, valid)
_NO_TRACE, _NO_SPAN = bytes(16), bytes(8)
