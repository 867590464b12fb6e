"""Traces, spans, generations, events and scores, as OpenTelemetry spans.

The Langfuse-style model (a trace holds nested observations: spans, LLM generations and
point-in-time events; scores rate a trace or one observation), reached through the
``Trubrics`` client::

    with trubrics.trace("chat", user_id="u1", thread_id="t-42", metadata={"env": "prod"}) as trace:
        with trubrics.span("retrieve-docs", input={"q": q}) as span:
            span.update(output={"n": 3}, metadata={"index": "v2"})
        with trubrics.generation("answer", model="gpt-4o", model_parameters={"temperature": 0.2},
                                 prompt=[{"role": "user", "content": q}]) as gen:
            gen.update(completion=reply, usage={"prompt_tokens": 512, "completion_tokens": 49})
        trubrics.event("cache-miss", metadata={"key": k})
    trubrics.score(trace_id=trace.id, name="user-explicit-feedback", value=1, observation_id=gen.id)

Every observation is a real span of the client's tracer, made current by ``with`` through
the OpenTelemetry context: it nests under the app's own spans and the app's spans nest
under it, and asyncio tasks inherit it (each task copies the context). A new *thread* does
not: run it with ``contextvars.copy_context().run`` (``asyncio.to_thread`` does that), or
pass ``parent=observation``, or the hex ids ``trace_id=`` / ``parent_observation_id=`` (which
also attach to a trace started in another process).

The user and thread given to a trace reach every observation inside it (``user.id`` and
``gen_ai.conversation.id`` are stamped on each span at start). Ids are OpenTelemetry ids
in hex: ``trace.id`` is the trace id (32 digits), any other observation's ``id`` its span id
(16 digits).

What reaches Trubrics (:mod:`~trubrics_otel.translate.encoder` does the turning, the client's
exporter the sending):

* a **generation** → one LLM event: ``prompt`` is the last user message, ``generation``
  the completion text, ``assistant_id`` the model, ``latency`` the duration; usage and
  model parameters become properties (``input_tokens``, ``temperature``…), with ``name``
  and the metadata;
* a **trace**, **span** or **event** → a product event named after it, with properties
  ``observation_type``, ``input``, ``output``, the metadata (flat), ``duration`` (s, traces
  and spans) and ``$thread_id``; an error adds ``error.type`` / ``error.message``;
* a **score** → a product event named ``Score`` with properties ``name``, ``value``,
  ``trace_id``, ``observation_id`` (or null), ``comment`` (or null), ``observation_type``
  (``score``). It is recorded inside the trace it rates (under the observation, else under
  the trace's root span) when that trace's ids are known: both ids given, or the trace was
  started by this process. It inherits that trace's user and thread unless ``user_id=``.

Every event carries ``$trace_id``, ``$span_id`` and ``$parent_span_id``, so a backend can
rebuild the tree.

Input, output and metadata are snapshotted when given (later mutation of the dict does not
show). ``update`` works until the observation ends; afterwards it logs a warning and
changes nothing (an exported span cannot change). Giving ``end_time`` when creating an
observation records it at once, as a log of finished work. An observation never ended
(created without ``with`` and no ``end()``) is never sent. An exception raised inside a
``with`` block is recorded on the span (status ERROR, an ``exception`` event) and re-raised
unchanged. Our own failures are logged on the ``trubrics`` logger, never raised.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.capture.arguments import Properties, identifier
from trubrics_otel.capture.context import current_user_context
from trubrics_otel.capture.observation import (
    EVENT,
    GENERATION,
    OBSERVATION_KEY,
    SCORE,
    TRACE,
    UNSET,
    Observation,
)
from trubrics_otel.capture.observe import observe
from trubrics_otel.translate.jsonable import dumps

SCORE_EVENT = "Score"
"""The Trubrics event name of every score; the score's own name is its ``name`` property."""
MAX_REMEMBERED_TRACES = 10_000
"""Traces whose root span, user and thread a later score or explicit child can find."""

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


@dataclass(frozen=True)
class _TraceInfo:
    span_id: int
    user_id: str | None
    thread_id: str | None


class Tracing:
    """Starts observations on a tracer; one per ``Trubrics`` client (which delegates here).

    ``tracer()`` returns the client's tracer (starting the client on first use), or
    ``None`` once the client is closed; ``time_ns`` reads a user's timestamp (datetime,
    ISO string, epoch seconds) as the client's ``track`` does.
    """

    def __init__(
        self,
        tracer: Callable[[], trace_api.Tracer | None],
        time_ns: Callable[[Any], int],
        logger: logging.Logger,
    ) -> None:
        self._tracer = tracer
        self._time_ns = time_ns
        self.logger = logger
        self._traces: collections.OrderedDict[int, _TraceInfo] = collections.OrderedDict()
        self._lock = threading.Lock()

    def start(
        self,
        kind: str,
        name: Any,
        *,
        user_id: Any = None,
        thread_id: Any = None,
        input: Any = None,
        output: Any = None,
        metadata: Mapping[str, Any] | None = None,
        model: str | None = None,
        model_parameters: Mapping[str, Any] | None = None,
        usage: Any = None,
        start_time: Any = None,
        end_time: Any = None,
        parent: Observation | None = None,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
    ) -> Observation:
        """Start (and for an event, or given ``end_time``, also end) one observation."""
        label = _label(name, kind, self.logger)
        try:
            tracer = self._tracer()
            if tracer is None:
                self.logger.error("%s %r started after close(); it is not sent.", kind, label)
                return Observation(kind, label, logger=self.logger)
            context, user, thread = self._parent(parent, trace_id, parent_observation_id)
            if kind == TRACE:
                for field_name, value in (("user_id", user_id), ("thread_id", thread_id)):
                    if value is not None and identifier(value) is None:
                        self.logger.error("trace %r: %s must be a non-empty string, got %s; inherited instead",
                                           label, field_name, type(value).__name__)
                user = identifier(user_id) or user
                thread = identifier(thread_id) or thread
            attributes: dict[str, Any] = {sc.TRUBRICS_OBSERVATION_TYPE: kind}
            if kind == GENERATION:
                attributes[sc.GEN_AI_OPERATION_NAME] = sc.OPERATION_CHAT
            else:
                attributes[sc.TRUBRICS_EVENT] = label
            if user:
                attributes[sc.USER_ID] = user
            if thread:
                attributes[sc.GEN_AI_CONVERSATION_ID] = thread
            start = self._time_ns(start_time)
            span = tracer.start_span(
                label, context=context,
                kind=SpanKind.CLIENT if kind == GENERATION else SpanKind.INTERNAL,
                attributes=attributes, start_time=start,
                record_exception=False, set_status_on_exception=False,
            )
            observation = Observation(kind, label, span, context, user, thread, self.logger, self._time_ns)
            if kind == TRACE:
                self._remember(span.get_span_context(), user, thread)
            observation.update(input=UNSET if input is None else input,
                               output=UNSET if output is None else output,
                               metadata=metadata, model=model,
                               model_parameters=model_parameters, usage=usage)
            if end_time is not None:
                observation.end(end_time)
            elif kind == EVENT:
                observation._end(start)
            return observation
        except Exception:
            self.logger.exception("%s %r could not start; it is not recorded", kind, label)
            return Observation(kind, label, logger=self.logger)

    def score(
        self,
        trace_id: Any,
        name: Any,
        value: Any,
        observation_id: Any = None,
        comment: Any = None,
        user_id: Any = None,
    ) -> None:
        try:
            if not isinstance(name, str) or not name:
                self.logger.error("score() skipped: name must be a non-empty string, got %r", name)
                return
            if value is None:
                self.logger.error("score() %r skipped: value is required", name)
                return
            tracer = self._tracer()
            if tracer is None:
                self.logger.error("score %r recorded after close(); it is not sent.", name)
                return
            target = self._target(trace_id, observation_id)
            if target is not None:
                info = self._trace_info(target.trace_id)
                context = trace_api.set_span_in_context(NonRecordingSpan(target), otel_context.Context())
                user, thread = (info.user_id, info.thread_id) if info else (None, None)
            else:
                context, user, thread = self._parent(None, None, None)
            user = identifier(user_id) or user
            properties = {
                sc.PROP_NAME: name,
                sc.PROP_SCORE_VALUE: value,
                sc.PROP_SCORE_TRACE_ID: trace_id,
                sc.PROP_SCORE_OBSERVATION_ID: observation_id,
                sc.PROP_SCORE_COMMENT: comment,
            }
            attributes: dict[str, Any] = {
                sc.TRUBRICS_EVENT: SCORE_EVENT,
                sc.TRUBRICS_OBSERVATION_TYPE: SCORE,
                sc.TRUBRICS_PROPERTIES: dumps(properties),
            }
            if user:
                attributes[sc.USER_ID] = user
            if thread:
                attributes[sc.GEN_AI_CONVERSATION_ID] = thread
            now = time.time_ns()
            tracer.start_span(name, context=context, attributes=attributes, start_time=now).end(now)
        except Exception:
            self.logger.exception("score() failed; the score is lost")

    # --- parents ------------------------------------------------------------------------

    def _parent(
        self, parent: Any, trace_id: Any, parent_observation_id: Any
    ) -> tuple[otel_context.Context, str | None, str | None]:
        """The context to start in, and the user and thread inherited from it."""
        if parent is not None:
            if isinstance(parent, Observation) and parent._context is not None:
                return parent._context, parent.user_id, parent.thread_id
            self.logger.error("parent= must be an Observation returned by trubrics; got %r", parent)
        if trace_id is not None or parent_observation_id is not None:
            target = self._target(trace_id, parent_observation_id)
            if target is not None:
                info = self._trace_info(target.trace_id)
                context = trace_api.set_span_in_context(
                    NonRecordingSpan(target), otel_context.set_value(OBSERVATION_KEY, None)
                )
                return context, info.user_id if info else None, info.thread_id if info else None
        context = otel_context.get_current()
        current = otel_context.get_value(OBSERVATION_KEY, context)
        if isinstance(current, Observation) and current._span is not None:
            return context, current.user_id, current.thread_id
        span_context = trace_api.get_current_span(context).get_span_context()
        info = self._trace_info(span_context.trace_id) if span_context.is_valid else None
        if info is not None:
            return context, info.user_id, info.thread_id
        scope = current_user_context()
        return context, scope.user_id if scope else None, scope.thread_id if scope else None

    def _target(self, trace_id: Any, observation_id: Any) -> SpanContext | None:
        """The span context that hex ids name, or None (with a logged reason)."""
        if not (isinstance(trace_id, str) and _HEX32.match(trace_id)) or trace_id == "0" * 32:
            self.logger.error("trace_id must be 32 lowercase hex digits (Observation.trace_id), got %r;"
                               " recorded outside that trace", trace_id)
            return None
        trace = int(trace_id, 16)
        if observation_id is not None:
            if isinstance(observation_id, str) and _HEX16.match(observation_id) and observation_id != "0" * 16:
                return SpanContext(trace, int(observation_id, 16), True, _SAMPLED)
            if observation_id != trace_id:  # ``observation_id=trace.id`` means the trace itself
                self.logger.error("observation id must be 16 lowercase hex digits (Observation.id),"
                                   " got %r; attached to the trace instead", observation_id)
        info = self._trace_info(trace)
        if info is None:
            self.logger.warning("trace %s was not started by this process: pass its parent observation"
                                 " id too; recorded outside that trace", trace_id)
            return None
        return SpanContext(trace, info.span_id, True, _SAMPLED)

    def _remember(self, context: SpanContext, user: str | None, thread: str | None) -> None:
        with self._lock:
            if context.trace_id in self._traces:  # the outermost trace keeps the id
                return
            self._traces[context.trace_id] = _TraceInfo(context.span_id, user, thread)
            while len(self._traces) > MAX_REMEMBERED_TRACES:
                self._traces.popitem(last=False)

    def _trace_info(self, trace_id: int) -> _TraceInfo | None:
        with self._lock:
            return self._traces.get(trace_id)


def _label(name: Any, kind: str, logger: logging.Logger) -> str:
    text = identifier(name)
    if text is None:
        logger.error("%s name must be a non-empty string, got %r; named %r instead", kind, name, kind)
        return kind
    return text


class TracingMethods:
    """The tracing API's public methods, mixed into ``Trubrics`` (which sets ``_tracing``)."""

    _tracing: Tracing

    def trace(
        self,
        name: str,
        *,
        user_id: str | None = None,
        thread_id: str | None = None,
        input: Any = None,
        output: Any = None,
        metadata: Properties | None = None,
        start_time: Any = None,
        end_time: Any = None,
        parent: Observation | None = None,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
    ) -> Observation:
        """One request's execution; ``with`` makes it current. Its user and thread reach
        every observation inside it. ``trace.id`` is the OTel trace id in hex."""
        return self._tracing.start(
            "trace", name, user_id=user_id, thread_id=thread_id, input=input, output=output,
            metadata=metadata, start_time=start_time, end_time=end_time, parent=parent,
            trace_id=trace_id, parent_observation_id=parent_observation_id,
        )

    def span(
        self,
        name: str,
        *,
        input: Any = None,
        output: Any = None,
        metadata: Properties | None = None,
        start_time: Any = None,
        end_time: Any = None,
        parent: Observation | None = None,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
    ) -> Observation:
        """A unit of work inside the current trace (or ``parent`` / the given hex ids)."""
        return self._tracing.start(
            "span", name, input=input, output=output, metadata=metadata, start_time=start_time,
            end_time=end_time, parent=parent, trace_id=trace_id,
            parent_observation_id=parent_observation_id,
        )

    def generation(
        self,
        name: str,
        *,
        model: str | None = None,
        model_parameters: Properties | None = None,
        prompt: Any = None,
        completion: Any = None,
        usage: Any = None,
        metadata: Properties | None = None,
        start_time: Any = None,
        end_time: Any = None,
        parent: Observation | None = None,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
    ) -> Observation:
        """One LLM call: becomes a Trubrics LLM event (prompt, completion, model, latency)."""
        return self._tracing.start(
            "generation", name, input=prompt, output=completion, model=model,
            model_parameters=model_parameters, usage=usage, metadata=metadata,
            start_time=start_time, end_time=end_time, parent=parent, trace_id=trace_id,
            parent_observation_id=parent_observation_id,
        )

    def event(
        self,
        name: str,
        *,
        input: Any = None,
        output: Any = None,
        metadata: Properties | None = None,
        start_time: Any = None,
        parent: Observation | None = None,
        trace_id: str | None = None,
        parent_observation_id: str | None = None,
    ) -> Observation:
        """A point-in-time event inside the current trace; recorded at once."""
        return self._tracing.start(
            "event", name, input=input, output=output, metadata=metadata, start_time=start_time,
            parent=parent, trace_id=trace_id, parent_observation_id=parent_observation_id,
        )

    def score(
        self,
        trace_id: str,
        name: str,
        value: float | bool | str,
        observation_id: str | None = None,
        comment: str | None = None,
        *,
        user_id: str | None = None,
    ) -> None:
        """Rate a trace, or one observation of it: a ``Score`` event (see the tracing module)."""
        self._tracing.score(trace_id, name, value, observation_id, comment, user_id)

    def observe(
        self,
        func: Any = None,
        *,
        name: str | None = None,
        as_type: str = "span",
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Any:
        """Decorator: each call of a function (sync, async, generator) becomes a span, or a
        generation with ``as_type="generation"``; arguments are its input, the result its output."""
        return observe(
            self._tracing, func, name=name, as_type=as_type, capture_input=capture_input,
            capture_output=capture_output,
        )
