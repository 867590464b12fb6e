"""Span → Trubrics event: the one place where that happens.

Pure: no I/O, no clock, no globals. The in-process exporter and the OTLP bridge both call
:func:`encode_spans`, so an event looks the same whichever way its span travelled::

    encoded = encode_spans(spans)
    encoded.events      # dicts for POST <host>/publish_events
    encoded.llm_events  # dicts for POST <host>/publish_llm_events

A span becomes:

* a product event when it carries ``trubrics.event`` (written by ``Trubrics.track`` and by
  the tracing API's traces, spans, events and scores, which also get ``observation_type``,
  ``duration`` for traces and spans, ``$thread_id`` and, on error, ``error.type`` /
  ``error.message``);
* an LLM event when a row of :mod:`trubrics_otel.translate.conventions` recognises it as an LLM call;
* a product event when a row reads it as one (a tool run: ``execute_tool``);
* nothing otherwise (HTTP, database… spans) and is counted in ``Encoded.skipped`` — unless
  ``all_spans=True``, when it becomes a product event named after the span.

Every event's properties gain ``$trace_id``, ``$span_id`` and, when the span had a parent,
``$parent_span_id``: the pair of ids is the event's stable identity, so a receiver can
rebuild the tree and drop a retried duplicate.

The user and thread of a span that names none come from its nearest ancestor
(:class:`~trubrics_otel.translate.traces.TraceMemory`, which a receiver keeps across
batches), and two instrumentations' spans of one model call make one LLM event
(:mod:`trubrics_otel.translate.duplicates`; counted in ``Encoded.merged_duplicates``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import (
    LlmCall,
    call_latency,
    SpanEvent,
    other_span,
    prefixed_properties,
    read_span,
)
from trubrics_otel.translate.conventions.base import UNKNOWN_ERROR_TYPE
from trubrics_otel.translate.conventions.openinference_tools import tool_call_ids
from trubrics_otel.translate.cost import span_cost
from trubrics_otel.translate.duplicates import (
    CallSignature,
    one_event_per_call,
    signature,
)
from trubrics_otel.translate.fastjson import ACCELERATED, loads, measure
from trubrics_otel.translate.jsonable import MAX_PROPERTIES_CHARS, encode_fast
from trubrics_otel.translate.traces import Identity, TraceMemory, span_identity
from trubrics_otel.translate.tracked import (
    EVENT,
    TrackedRecord,
    TrackedSpan,
    json_properties,
)

Event = dict[str, Any]


@dataclass
class Encoded:
    events: list[Event] = field(default_factory=list)
    llm_events: list[Event] = field(default_factory=list)
    skipped: int = 0
    """Spans that are neither product events nor LLM calls."""
    errors: list[str] = field(default_factory=list)
    """One message per span that could not be encoded (the others still are)."""
    merged_duplicates: int = 0
    """LLM events not sent because another instrumentation's span of the same model call
    was (merged into it in this batch, or sent in an earlier one)."""

    def __len__(self) -> int:
        return len(self.events) + len(self.llm_events)


def encode_spans(
    spans: Iterable[ReadableSpan], *, all_spans: bool = False, memory: TraceMemory | None = None
) -> Encoded:
    """``all_spans``: send spans no convention knows (HTTP, DB…) as events named after them.

    ``memory``: the receiver's :class:`TraceMemory`, so users and threads are inherited from
    ancestors seen in earlier batches and a call sent before is not sent again; without one,
    a fresh memory covers this batch alone. Two passes: every span's identity is remembered
    first, so a child exported before its parent still inherits from it.
    """
    memory = memory if memory is not None else TraceMemory()
    spans = list(spans)
    received = [span for span in spans if span.__class__ is not TrackedSpan]  # read from attributes
    memory.remember(received)
    # tool runs that recorded no call id, matched to the reply that asked for them (in-batch)
    call_ids = tool_call_ids(received)
    encoded = Encoded()
    calls: list[tuple[CallSignature, Event]] = []
    for span in spans:
        kind: str | None
        try:
            if span.__class__ is TrackedSpan:
                kind, event = encode_record(span.record)  # type: ignore[attr-defined]
            else:
                kind, event = encode_span(span, all_spans=all_spans, memory=memory)
                if kind == "llm":
                    if memory.call_views(span) > 1:  # several calls overwrote each other here
                        encoded.merged_duplicates += 1
                        continue
                    if not event["generation"]:
                        _complete_from_parent(event, memory.parent_reply(span))
                    calls.append((signature(span, event), event))
                    continue
        except Exception as exc:  # one bad span must not cost the others
            encoded.errors.append(f"span {span.name!r}: {type(exc).__name__}: {exc}")
            continue
        if kind is None:
            encoded.skipped += 1
        elif kind == "llm":
            encoded.llm_events.append(event)
        else:
            if call_ids and span.context.span_id in call_ids:
                event["properties"].setdefault(sc.PROP_TOOL_CALL_ID, call_ids[span.context.span_id])
            encoded.events.append(event)
    if calls:
        try:
            kept, merged = one_event_per_call(calls, memory)
        except Exception as exc:  # never lose the batch over the merging: send them all
            encoded.errors.append(f"merging duplicate calls: {type(exc).__name__}: {exc}")
            kept, merged = [event for _, event in calls], 0
        encoded.llm_events.extend(kept)
        encoded.merged_duplicates += merged
    return encoded


def _complete_from_parent(event: Event, reply: LlmCall | None) -> None:
    """A call whose span left its reply out, completed from what its parent recorded. Of two
    counts of one call's tokens the larger is kept: a view that did not see a count says 0
    (a streamed LangChain reply's input tokens, a span without cache counts)."""
    if reply is None or not reply.generation:
        return
    event["generation"] = reply.generation
    properties = event["properties"]
    for key, value in reply.properties.items():
        own = properties.get(key)
        if key in _USAGE_KEYS and own.__class__ is int and value.__class__ is int and own > value:
            continue
        properties[key] = value


_USAGE_KEYS = frozenset({sc.PROP_INPUT_TOKENS, sc.PROP_OUTPUT_TOKENS, sc.PROP_TOTAL_TOKENS,
                         sc.PROP_CACHE_READ_INPUT_TOKENS, sc.PROP_CACHE_CREATION_INPUT_TOKENS,
                         sc.PROP_REASONING_TOKENS})


def encode_span(
    span: ReadableSpan, *, all_spans: bool = False, memory: TraceMemory | None = None
) -> tuple[str | None, Event]:
    """``("event" | "llm", wire dict)``, or ``(None, {})`` for a span that is neither.

    ``memory``: where the span's ancestors were remembered, so its user and thread have
    theirs filled in (:meth:`TraceMemory.identity`, asked only of a span that is an event);
    by default, the span's own.
    """
    if span.__class__ is TrackedSpan:
        return encode_record(span.record)  # type: ignore[attr-defined]
    attributes = span.attributes or {}
    name = attributes.get(sc.TRUBRICS_EVENT)
    if isinstance(name, str):
        identity = _identity(span, memory)
        properties = properties_of(span, _observation_properties(span, identity))
        if span.status.status_code is StatusCode.ERROR:
            properties.update(error_properties(span))
        return "event", {
            "user_id": identity.user_id or sc.ANONYMOUS_USER_ID,
            "event": name,
            "properties": properties,
            "timestamp": iso_timestamp(span.end_time),
        }
    call = read_span(span)
    if call is None and all_spans:
        call = other_span(span)
    if call is None:
        return None, {}
    identity = _identity(span, memory)
    user_id = identity.user_id or sc.ANONYMOUS_USER_ID
    properties = properties_of(span, call.properties)
    if span.status.status_code is _ERROR:
        properties.update(error_properties(span))
    thread_id = identity.thread_id or identity.weak_thread_id  # Identity.thread, without its call
    if isinstance(call, SpanEvent):
        if thread_id is not None:
            properties.setdefault(sc.PROP_THREAD_ID, thread_id)
        return "event", {
            "user_id": user_id,
            "event": call.name,
            "properties": properties,
            "timestamp": iso_timestamp(span.end_time),
        }
    assert isinstance(call, LlmCall)
    carried = span_cost(attributes)
    if carried:  # a cost the span carries wins
        for key, value in carried.items():
            properties.setdefault(key, value)
    return "llm", {
        "user_id": user_id,
        "prompt": call.prompt or identity.prompt or "",
        "generation": call.generation,
        "prompt_event_name": attributes.get(sc.TRUBRICS_PROMPT_EVENT_NAME, "Prompt"),
        "generation_event_name": attributes.get(sc.TRUBRICS_GENERATION_EVENT_NAME, "Generation"),
        "assistant_id": call.model or _str_or_none(properties.get(sc.PROP_ASSISTANT_ID)),
        "properties": properties,
        "timestamp": iso_timestamp(span.end_time),
        "latency": None if attributes.get(sc.TRUBRICS_LATENCY_UNKNOWN) else call_latency(span),
        "thread_id": thread_id or _str_or_none(properties.get(sc.PROP_THREAD_ID)),
    }


def encode_record(record: TrackedRecord, plain_properties: bool = False) -> tuple[str, Event]:
    """The event of a ``Trubrics.track`` call's span, read from the record it is computed
    from rather than from its attributes: what the rows above give for that span (a test
    holds the two equal) at a fifth of the cost, since it skips re-parsing the JSON the
    record was just turned into. ``plain_properties``: the record's own properties are
    known to be plain JSON within :data:`MAX_PROPERTIES_CHARS` (``tracked.stored_records``
    says so), so they are taken without checking."""
    _, kind, trace_id, span_id, parent_id, context, body = record
    if context:
        properties = _json_object(context.get(sc.TRUBRICS_CONTEXT_PROPERTIES))
        context_thread = context.get(sc.GEN_AI_CONVERSATION_ID)
    else:  # nearly every record: no user_context around the call
        properties, context_thread = {}, None
    if kind == EVENT:
        user, name, own, end = body
        if context_thread:
            properties[sc.PROP_THREAD_ID] = str(context_thread)
        _add_own_and_ids(properties, own, trace_id, span_id, parent_id, plain_properties)
        return "event", {
            "user_id": user,
            "event": name,
            "properties": properties,
            "timestamp": record_timestamp(end),
        }
    user, prompt, generation, prompt_name, generation_name, model, own, end, latency, thread, \
        usage = body
    if usage:
        for attribute, prop in _RECORD_USAGE:
            if attribute in usage:
                properties[prop] = usage[attribute]
    _add_own_and_ids(properties, own, trace_id, span_id, parent_id, plain_properties)
    thread = thread if thread is not None else context_thread
    return "llm", {
        "user_id": user,
        "prompt": prompt,
        "generation": generation,
        "prompt_event_name": prompt_name,
        "generation_event_name": generation_name,
        "assistant_id": model or _str_or_none(properties.get(sc.PROP_ASSISTANT_ID)),
        "properties": properties,
        "timestamp": record_timestamp(end),
        "latency": None if latency is None else int(latency * 1e9) / 1e9,
        "thread_id": _str_or_none(thread) or _str_or_none(properties.get(sc.PROP_THREAD_ID)),
    }


_RECORD_USAGE = (
    (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.PROP_INPUT_TOKENS),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.PROP_OUTPUT_TOKENS),
)


def _add_own_and_ids(
    properties: dict[str, Any], own: Any, trace_id: int, span_id: int, parent_id: int, plain: bool
) -> None:
    if own is not None:
        properties.update(own if plain and own.__class__ is dict else _own_properties(own))
    properties[sc.PROP_TRACE_ID] = "%032x" % trace_id  # half an f-string's cost, same text
    properties[sc.PROP_SPAN_ID] = "%016x" % span_id
    if parent_id:
        properties[sc.PROP_PARENT_SPAN_ID] = "%016x" % parent_id


def _own_properties(own: Any) -> dict[str, Any]:
    """What the span's properties attribute parses to. A dict of plain JSON with text keys
    (nearly always) is that already: one encoder pass proves it, no encode-then-parse."""
    if own.__class__ is dict:
        try:
            if _plain_json_size(own) <= MAX_PROPERTIES_CHARS:
                return own  # type: ignore[no-any-return]
        except (TypeError, ValueError, RecursionError):
            pass
    return _json_object(json_properties(own))


def _strict_json_size(value: dict[str, Any]) -> int:
    """Characters of ``value`` as JSON; raises for anything that is not plain JSON with text
    keys (the stdlib encoder would turn other keys into text, so they are checked first)."""
    if not all(key.__class__ is str for key in value):
        raise TypeError("a key that is not text")
    return len(encode_fast(value))


def _plain_json_size(value: dict[str, Any]) -> int:
    """:func:`_strict_json_size` at a fifth of the cost where orjson is installed: it refuses
    other keys and types by itself, but writes NaN and infinities as ``null``, so any
    ``null`` in its output (a None, or text that contains it) goes to the strict check."""
    if not ACCELERATED:
        return _strict_json_size(value)
    data = measure(value)
    return _strict_json_size(value) if b"null" in data else len(data)


def _identity(span: ReadableSpan, memory: TraceMemory | None) -> Identity:
    """The span's user and thread, its ancestors' filled in where ``memory`` remembered them."""
    return memory.identity(span) if memory is not None else span_identity(span)


def properties_of(span: ReadableSpan, derived: Mapping[str, Any]) -> dict[str, Any]:
    """Context properties, then what the convention derived, then the span's own, then ids."""
    attributes = span.attributes or {}
    context_properties = attributes.get(sc.TRUBRICS_CONTEXT_PROPERTIES)
    properties = _json_object(context_properties) if context_properties is not None else {}
    prefixed = prefixed_properties(attributes)
    if prefixed:
        properties.update(prefixed)
    properties.update(derived)
    own = attributes.get(sc.TRUBRICS_PROPERTIES)
    if own is not None:
        properties.update(_json_object(own))
    wire = getattr(span, "wire_ids", None)  # a received span's: the same text (a test says so)
    if wire is not None:
        trace_id, span_id, parent_id = wire
        properties[sc.PROP_TRACE_ID] = trace_id.hex()
        properties[sc.PROP_SPAN_ID] = span_id.hex()
        if parent_id:
            properties[sc.PROP_PARENT_SPAN_ID] = parent_id.hex()
        return properties
    context = span.context
    if context is not None:
        properties[sc.PROP_TRACE_ID] = "%032x" % context[0]  # a SpanContext is a tuple: see .traces
        properties[sc.PROP_SPAN_ID] = "%016x" % context[1]
    if span.parent is not None:
        properties[sc.PROP_PARENT_SPAN_ID] = "%016x" % span.parent[1]
    return properties


def _observation_properties(span: ReadableSpan, identity: Identity) -> dict[str, Any]:
    """What a tracing observation's product event derives: type, duration, thread."""
    attributes = span.attributes or {}
    derived: dict[str, Any] = {}
    kind = attributes.get(sc.TRUBRICS_OBSERVATION_TYPE)
    if isinstance(kind, str):
        derived[sc.PROP_OBSERVATION_TYPE] = kind
        if kind in _TIMED_OBSERVATIONS:
            derived[sc.PROP_DURATION] = duration_s(span)
    thread = identity.thread
    if thread:
        derived[sc.PROP_THREAD_ID] = str(thread)
    return derived


_TIMED_OBSERVATIONS = frozenset({"trace", "span"})
_ERROR = StatusCode.ERROR  # read on every span: a global costs a tenth of an enum member


def error_properties(span: ReadableSpan) -> dict[str, Any]:
    """``error.type`` / ``error.message`` from the exception event, status or attributes."""
    attributes = span.attributes or {}
    error_type = attributes.get(sc.ERROR_TYPE)
    message = span.status.description
    for event in span.events:
        if event.name == sc.EXCEPTION_EVENT and event.attributes:
            error_type = event.attributes.get(sc.EXCEPTION_TYPE, error_type)
            message = event.attributes.get(sc.EXCEPTION_MESSAGE, message)
    return {
        sc.PROP_ERROR_TYPE: _class_name(error_type) or UNKNOWN_ERROR_TYPE,
        sc.PROP_ERROR_MESSAGE: message or "",
    }


def _class_name(error_type: Any) -> str | None:
    """``"<class 'openai.InternalServerError'>"`` (as openai-v2 writes it) → the class name."""
    if isinstance(error_type, str) and error_type.startswith("<class '"):
        return error_type[len("<class '") :].removesuffix("'>")
    return None if error_type is None else str(error_type)


def iso_timestamp(time_ns: int | None) -> str | None:
    """ISO 8601 in UTC with microseconds, as ``datetime.isoformat`` writes it."""
    if time_ns is None:
        return None
    return record_timestamp(time_ns)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def record_timestamp(time_ns: int) -> str:
    """:func:`iso_timestamp`'s text at a third of ``isoformat``'s cost: events of a burst or
    a batch share their second, so its text is kept and only the microseconds are added."""
    global _last_second
    second, micro = divmod(time_ns // 1000, 1_000_000)
    cached, prefix = _last_second
    if cached != second:
        prefix = (_EPOCH + _dt.timedelta(seconds=second)).isoformat()[:-6]  # less "+00:00"
        _last_second = (second, prefix)
    return "%s.%06d+00:00" % (prefix, micro) if micro else prefix + "+00:00"


def duration_s(span: ReadableSpan) -> float | None:
    if span.start_time is None or span.end_time is None:
        return None
    return (span.end_time - span.start_time) / 1e9


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _str_or_none(value: Any) -> str | None:
    """A tuple reads as the list it is once stored as JSON, so a record kept in memory and its
    copy from the journal give the same text."""
    if value is None or value == "":
        return None
    return str(list(value)) if isinstance(value, tuple) else str(value)
