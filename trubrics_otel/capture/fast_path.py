"""``track()``'s shortest path: a call outside any span or ``user_context``, straight to the journal.

::

    enqueue = fast_enqueue(processor.journal_appender())   # None when the setup does not allow it
    if enqueue is None or not enqueue(EVENT, body):        # 0: take the full path
        client._enqueue(client._record(EVENT, body))
    client.track_llm = fast_track_llm(processor.journal_appender(), full=client.track_llm)

Why: the official SDK's ``track`` appends a dict to a list (~1.5 µs on the machines we
measure). The full path (:meth:`Trubrics._record`, the processor's ``enqueue_record``) reads
the current span through the OpenTelemetry API, looks at the ``user_context`` and sampling,
then hands over through three calls; each layer is a tenth of a microsecond. Most calls
have no parent span and no ``user_context``, so this closure checks exactly that with two
lookups, numbers the record (its ids are a hash of that number, worked out when it is read:
:data:`~trubrics_otel.translate.tracked.KEYED`), stores it and appends it to the crash
journal. Anything else — a parent span, a ``user_context``, a full ring, a closed or forked
client — answers 0, and the caller takes the full path, which handles it. Only built for
the private provider without sampling (see the client).
With ``orjson`` installed the record is stored in the JSON format (see
:mod:`~trubrics_otel.translate.record_codec`: half ``marshal``'s cost for an LLM record).
"""

from __future__ import annotations

import contextvars
import itertools
import os
import random
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as context_api

from trubrics_otel.capture.arguments import LLM_PROPERTIES_READ, MAX_LATENCY_S
from trubrics_otel.capture.context import open_user_contexts
from trubrics_otel.translate.record_codec import encoder, json_encoder
from trubrics_otel.translate.tracked import KEYED, LLM, VERSION, marshal_bytes

try:  # the standard runtime context: a ContextVar holding the current Context
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
except ImportError:  # pragma: no cover - a future API: the API function instead
    ContextVarsRuntimeContext = None  # type: ignore[assignment,misc]

try:  # where the OpenTelemetry API keeps the current span in a Context (stable since 1.0)
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - a future API: the full path only
    _SPAN_KEY = None

FastEnqueue = Callable[[str, tuple[Any, ...]], int]
"""Answers the journal's ticket, or 0 (falsy) when the full path must take the call."""
FastTrackLLM = Callable[..., None]
"""``track_llm``'s ten arguments, by position or keyword, with its defaults."""


def fast_enqueue(append_payload: Callable[[bytes], int] | None) -> FastEnqueue | None:
    """The closure for one client's journal, or None (then every call takes the full path)."""
    if append_payload is None or _SPAN_KEY is None:
        return None
    current = _current_context_getter()
    span_key = _SPAN_KEY
    user_contexts = open_user_contexts
    bits = random.getrandbits
    json_format = json_encoder()
    if json_format is not None:
        json_dumps, option = json_format
        key, number = numbered_records()

        def enqueue_json(kind: str, body: tuple[Any, ...]) -> int:
            if current().get(span_key) is not None or user_contexts():
                return 0  # a parent span or a user_context: the full path joins them
            try:  # to_bytes, inlined: the JSON format, the ids as a key and a number (KEYED)
                payload = json_dumps((KEYED, kind, key, number(), body), None, option)
            except TypeError:  # a value the JSON format does not take: stored by marshal
                payload = marshal_bytes((VERSION, kind, bits(128), bits(64), 0, None, body))
            return append_payload(payload)

        return enqueue_json

    tag, dumps, marshal_version = encoder()

    def enqueue(kind: str, body: tuple[Any, ...]) -> int:
        if current().get(span_key) is not None or user_contexts():
            return 0  # a parent span or a user_context: the full path joins them
        record = (VERSION, kind, bits(128), bits(64), 0, None, body)
        try:
            payload = tag + dumps(record, marshal_version)  # record_codec.encode, inlined
        except ValueError:  # properties marshal cannot store: marshal_bytes snapshots them as JSON
            payload = marshal_bytes(record)
        return append_payload(payload)

    return enqueue


def fast_track_llm(
    append_payload: Callable[[bytes], int] | None, full: Callable[..., None]
) -> FastTrackLLM | None:
    """``track_llm`` itself for a started client: the plain call (documented types, no
    ``timestamp``, no property :func:`~.arguments.llm_body` reads, no span or
    ``user_context`` around) goes straight to the journal; any other call, a full ring or
    anything unexpected goes to ``full`` (the client's own ``track_llm``, same arguments),
    which takes ``llm_body`` and :func:`fast_enqueue`. Only with ``orjson`` (the JSON record
    format); None otherwise.

    Why the client installs it on the instance, same keywords and defaults: ``llm_body``
    and then the ``enqueue`` above cost two calls and a body built twice over, and a method
    that forwards here one call more, of a ~2 µs ``track_llm`` whose target is the official
    SDK's append-a-dict. ``tests/test_fast_path.py`` holds its records equal to
    ``llm_body``'s for any arguments.
    """
    json_format = json_encoder()
    if append_payload is None or _SPAN_KEY is None or json_format is None:
        return None
    dumps, option = json_format
    current = _current_context_getter()
    span_key = _SPAN_KEY
    user_contexts = open_user_contexts
    key, number = numbered_records()
    now = time.time_ns
    properties_read = LLM_PROPERTIES_READ

    def track_llm(
        user_id: Any = None, prompt: Any = None, generation: Any = None, prompt_event_name: Any = "Prompt",
        generation_event_name: Any = "Generation", assistant_id: Any = None, properties: Any = None,
        timestamp: Any = None, latency: Any = None, thread_id: Any = None,
    ) -> None:
        try:
            if (
                timestamp is None and user_id.__class__ is str and user_id
                and prompt.__class__ is str and generation.__class__ is str
                and prompt_event_name.__class__ is str and generation_event_name.__class__ is str
                and (assistant_id is None or assistant_id.__class__ is str)
                and (thread_id is None or thread_id.__class__ is str)
                and (latency is None or (latency.__class__ is float or latency.__class__ is int)
                     and 0 <= latency <= MAX_LATENCY_S)
                and (properties is None or properties.__class__ is dict and properties_read.isdisjoint(properties))
                and current().get(span_key) is None and not user_contexts()
            ):
                body = (user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                        properties or None, now(), latency, thread_id or None, None)
                # a TypeError: properties the JSON format does not take; the full path stores them
                if append_payload(dumps((KEYED, LLM, key, number(), body), None, option)):
                    return None
        except Exception:  # nothing stored: the full path takes the call and says what went wrong
            pass
        return full(user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                    properties, timestamp, latency, thread_id)

    return track_llm


def numbered_records() -> tuple[int, Callable[[], int]]:
    """A closure's key for its :data:`~trubrics_otel.translate.tracked.KEYED` records and the
    counter that numbers them: the ids without a random draw per call (three were a tenth of
    ``track_llm``). The key comes from ``os.urandom``, so an app that seeds ``random`` or a
    forked copy of this process draws another (a closure built before a fork never stores in
    the child: its journal is the parent's, which the child drops); ``itertools.count`` is one
    C call, so threads never get the same number."""
    return int.from_bytes(os.urandom(8), "little"), itertools.count(1).__next__


def _current_context_getter() -> Callable[[], Any]:
    """``opentelemetry.context.get_current``, cut to the ``ContextVar`` read it amounts to
    when the process runs the standard runtime context (two Python calls fewer per call);
    the API function itself for any other runtime context (``OTEL_PYTHON_CONTEXT``)."""
    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if (ContextVarsRuntimeContext is not None and type(runtime) is ContextVarsRuntimeContext
            and isinstance(variable, contextvars.ContextVar)):
        return variable.get
    return context_api.get_current
