"""``track()``'s shortest path: a call outside any span or ``user_context``, straight to the journal.

::

    enqueue = fast_enqueue(processor.journal_appender())   # None when the setup does not allow it
    if enqueue is None or not enqueue(EVENT, body):        # 0: take the full path
        client._enqueue(client._record(EVENT, body))

Why: the official SDK's ``track`` appends a dict to a list (~1.5 µs on the machines we
measure). The full path (:meth:`Trubrics._record`, the processor's ``enqueue_record``) reads
the current span through the OpenTelemetry API, looks at the ``user_context`` and sampling,
then hands over through three calls; each layer is a tenth of a microsecond. Most calls
have no parent span and no ``user_context``, so this closure checks exactly that with two
lookups, draws the ids, stores the record (:func:`~trubrics_otel.translate.tracked.to_bytes`)
and appends it to the crash journal. Anything else — a parent span, a ``user_context``, a
full ring, a closed or forked client — answers 0, and the caller takes the full path,
which handles it. Only built for the private provider without sampling (see the client).
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable
from typing import Any

from opentelemetry import context as context_api

from trubrics_otel.capture.context import open_user_contexts
from trubrics_otel.translate.record_codec import encoder
from trubrics_otel.translate.tracked import VERSION, to_bytes

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


def fast_enqueue(append_payload: Callable[[bytes], int] | None) -> FastEnqueue | None:
    """The closure for one client's journal, or None (then every call takes the full path)."""
    if append_payload is None or _SPAN_KEY is None:
        return None
    current = _current_context_getter()
    span_key = _SPAN_KEY
    user_contexts = open_user_contexts
    bits = random.getrandbits
    tag, dumps, marshal_version = encoder()

    def enqueue(kind: str, body: tuple[Any, ...]) -> int:
        if current().get(span_key) is not None or user_contexts():
            return 0  # a parent span or a user_context: the full path joins them
        record = (VERSION, kind, bits(128), bits(64), 0, None, body)
        try:
            payload = tag + dumps(record, marshal_version)  # record_codec.encode, inlined
        except ValueError:  # properties marshal cannot store: to_bytes snapshots them as JSON
            payload = to_bytes(record)
        return append_payload(payload)

    return enqueue


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
