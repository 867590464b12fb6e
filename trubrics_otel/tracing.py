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

What reaches Trubrics (:mod:`~trubrics_otel.encoder` does the turning, the client's
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
import functools
import inspect
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.context import current_user_context, user_context
from trubrics_otel.jsonable import dumps, to_jsonable

SCORE_EVENT = "Score"
"""The Trubrics event name of every score; the score's own name is its ``name`` property."""
MAX_REMEMBERED_TRACES = 10_000
"""Traces whose root span, user and thread a later score or explicit child can find."""

TRACE = "trace"
SPAN = "span"
GENERATION = "generation"
EVENT = "event"
SCORE = "score"

_OBSERVATION = otel_context.create_key("trubrics.observation")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET: Any = object()

_INPUT_USAGE = frozenset({"input_tokens", "prompt_tokens", "promptTokens", "input"})
_OUTPUT_USAGE = frozenset({"output_tokens", "completion_tokens", "completionTokens", "output"})
_TOTAL_USAGE = frozenset({"total_tokens", "totalTokens", "total"})


def current_observation() -> Observation | None:
    """The innermost observation made current by ``with`` (or ``@observe``), if any."""
    value = otel_context.get_value(_OBSERVATION)
    return value if isinstance(value, Observation) else None


@dataclass(frozen=True)
class _TraceInfo:
    span_id: int
    user_id: str | None
    thread_id: str | None


class Observation:
    """One trace, span, generation or event; a context manager that makes it current."""

    def __init__(
        self,
        kind: str,
        name: str,
        span: trace_api.Span | None = None,
        parent_context: otel_context.Context | None = None,
        user_id: str | None = None,
        thread_id: str | None = None,
        logger: logging.Logger | None = None,
        time_ns: Callable[[Any], int] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.user_id = user_id
        self.thread_id = thread_id
        self._span = span
        self._logger = logger or logging.getLogger("trubrics")
        self._time_ns = time_ns
        context = span.get_span_context() if span is not None else trace_api.INVALID_SPAN_CONTEXT
        self.trace_id = f"{context.trace_id:032x}"
        self.span_id = f"{context.span_id:016x}"
        self._context = (
            otel_context.set_value(_OBSERVATION, self, trace_api.set_span_in_context(span, parent_context))
            if span is not None
            else None
        )
        self._lock = threading.Lock()
        self._ended = span is None
        self._tokens: list[Any] = []
        self._input: Any = _UNSET
        self._output: Any = _UNSET
        self._metadata: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}

    @property
    def id(self) -> str:
        """The trace id for a trace, the span id for any other observation (hex)."""
        return self.trace_id if self.kind == TRACE else self.span_id

    @property
    def ended(self) -> bool:
        return self._ended

    def __repr__(self) -> str:
        return f"Observation({self.kind}, {self.name!r}, id={self.id})"

    # --- context manager ---------------------------------------------------------------

    def __enter__(self) -> Observation:
        if self._context is not None:
            scope = user_context(self.user_id, self.thread_id) if self.kind == TRACE else None
            if scope is not None:  # the app's own spans inside get the trace's user too
                scope.__enter__()
            self._tokens.append((otel_context.attach(self._context), scope))
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._tokens:
            token, scope = self._tokens.pop()
            otel_context.detach(token)
            if scope is not None:
                scope.__exit__(None, None, None)
        if isinstance(exc, Exception):
            self._fail(exc)
        self.end()

    @contextmanager
    def _active(self) -> Iterator[None]:
        """Current for a while without ending (each step of a wrapped generator)."""
        token = otel_context.attach(self._context) if self._context is not None else None
        try:
            yield
        finally:
            if token is not None:
                otel_context.detach(token)

    # --- changes -----------------------------------------------------------------------

    def update(
        self,
        *,
        input: Any = _UNSET,
        output: Any = _UNSET,
        metadata: Mapping[str, Any] | None = None,
        prompt: Any = _UNSET,
        completion: Any = _UNSET,
        model: str | None = None,
        model_parameters: Mapping[str, Any] | None = None,
        usage: Any = None,
    ) -> Observation:
        """Set input/output, merge metadata; a generation also takes model, parameters, usage.

        ``prompt`` / ``completion`` are the generation names of ``input`` / ``output``
        (either pair works on any observation).
        """
        try:
            with self._lock:
                if self._span is None:
                    return self
                if self._ended:
                    self._logger.warning(
                        "update() on %s %r after it ended is ignored: its span is already recorded.",
                        self.kind, self.name,
                    )
                    return self
                self._apply(
                    input if prompt is _UNSET else prompt,
                    output if completion is _UNSET else completion,
                    metadata, model, model_parameters, usage,
                )
        except Exception:
            self._logger.exception("update() of %s %r failed", self.kind, self.name)
        return self

    def end(self, end_time: Any = None) -> None:
        """Record the observation (at ``end_time``, else now). Later calls do nothing."""
        self._end(self._time_ns(end_time) if end_time is not None and self._time_ns else None)

    def _end(self, end_ns: int | None) -> None:
        try:
            with self._lock:
                if self._ended or self._span is None:
                    return
                self._ended = True
                properties = self._properties()
                if properties:
                    self._span.set_attribute(sc.TRUBRICS_PROPERTIES, dumps(properties))
                self._span.end(end_time=end_ns)
        except Exception:
            self._logger.exception("end() of %s %r failed; it may be lost", self.kind, self.name)

    def _fail(self, exc: BaseException) -> None:
        if self._span is None or self._ended:
            return
        self._span.record_exception(exc)
        self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def _default_output(self, value: Any) -> None:
        """``@observe``'s return value, unless the function already set an output."""
        if self._output is _UNSET and not self._ended:
            self.update(output=value)

    def _apply(
        self,
        input: Any,
        output: Any,
        metadata: Mapping[str, Any] | None,
        model: str | None,
        model_parameters: Mapping[str, Any] | None,
        usage: Any,
    ) -> None:
        span = self._span
        assert span is not None
        generation = self.kind == GENERATION
        if input is not _UNSET:
            self._input = _snapshot(input)
            if generation:
                span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, _json(_messages(self._input, "user")))
        if output is not _UNSET:
            self._output = _snapshot(output)
            if generation:
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, _json(_messages(self._output, "assistant")))
        if metadata:
            if isinstance(metadata, Mapping):
                self._metadata.update(_snapshot(metadata))
            else:
                self._logger.error("metadata of %r must be a mapping, got %s; ignored",
                                   self.name, type(metadata).__name__)
        if model is None and model_parameters is None and usage is None:
            return
        if not generation:
            self._logger.warning("model, model_parameters and usage apply to generations only; "
                                 "ignored on %s %r", self.kind, self.name)
            return
        if model is not None:
            span.set_attribute(sc.GEN_AI_REQUEST_MODEL, str(model))
        for key, value in (model_parameters or {}).items():
            attribute = _attribute_value(value)
            if attribute is not None:
                span.set_attribute(sc.GEN_AI_REQUEST_PREFIX + _snake(str(key)), attribute)
        if usage is not None:
            self._apply_usage(usage)

    def _apply_usage(self, usage: Any) -> None:
        assert self._span is not None
        if not isinstance(usage, Mapping):  # e.g. the OpenAI client's CompletionUsage
            dump = getattr(usage, "model_dump", None)
            usage = dump() if callable(dump) else getattr(usage, "__dict__", {})
        for key, value in usage.items():
            if value is None:
                continue
            if key in _INPUT_USAGE or key in _OUTPUT_USAGE:
                if isinstance(value, int) and not isinstance(value, bool):
                    attribute = sc.GEN_AI_USAGE_INPUT_TOKENS if key in _INPUT_USAGE else sc.GEN_AI_USAGE_OUTPUT_TOKENS
                    self._span.set_attribute(attribute, value)
                else:
                    self._logger.error("usage %r of %r must be an int, got %r; ignored", key, self.name, value)
            elif key in _TOTAL_USAGE:
                self._extra[sc.PROP_TOTAL_TOKENS] = _snapshot(value)
            else:
                self._extra[_snake(str(key))] = _snapshot(value)

    def _properties(self) -> dict[str, Any]:
        if self.kind == GENERATION:
            return {sc.PROP_NAME: self.name, **self._extra, **self._metadata}
        properties = dict(self._metadata)
        if self._input is not _UNSET:
            properties[sc.PROP_INPUT] = self._input
        if self._output is not _UNSET:
            properties[sc.PROP_OUTPUT] = self._output
        return properties


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
        self._logger = logger
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
        label = _name(name, kind, self._logger)
        try:
            tracer = self._tracer()
            if tracer is None:
                self._logger.error("%s %r started after close(); it is not sent.", kind, label)
                return Observation(kind, label, logger=self._logger)
            context, user, thread = self._parent(parent, trace_id, parent_observation_id)
            if kind == TRACE:
                for field_name, value in (("user_id", user_id), ("thread_id", thread_id)):
                    if value is not None and _text(value) is None:
                        self._logger.error("trace %r: %s must be a non-empty string, got %s; inherited instead",
                                           label, field_name, type(value).__name__)
                user = _text(user_id) or user
                thread = _text(thread_id) or thread
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
            observation = Observation(kind, label, span, context, user, thread, self._logger, self._time_ns)
            if kind == TRACE:
                self._remember(span.get_span_context(), user, thread)
            observation.update(input=_UNSET if input is None else input,
                               output=_UNSET if output is None else output,
                               metadata=metadata, model=model,
                               model_parameters=model_parameters, usage=usage)
            if end_time is not None:
                observation.end(end_time)
            elif kind == EVENT:
                observation._end(start)
            return observation
        except Exception:
            self._logger.exception("%s %r could not start; it is not recorded", kind, label)
            return Observation(kind, label, logger=self._logger)

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
                self._logger.error("score() skipped: name must be a non-empty string, got %r", name)
                return
            if value is None:
                self._logger.error("score() %r skipped: value is required", name)
                return
            tracer = self._tracer()
            if tracer is None:
                self._logger.error("score %r recorded after close(); it is not sent.", name)
                return
            target = self._target(trace_id, observation_id)
            if target is not None:
                info = self._trace_info(target.trace_id)
                context = trace_api.set_span_in_context(NonRecordingSpan(target), otel_context.Context())
                user, thread = (info.user_id, info.thread_id) if info else (None, None)
            else:
                context, user, thread = self._parent(None, None, None)
            user = _text(user_id) or user
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
            self._logger.exception("score() failed; the score is lost")

    def observe(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        as_type: str = SPAN,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Any:
        if as_type not in (SPAN, GENERATION):
            self._logger.error("observe(as_type=%r): expected 'span' or 'generation'; using 'span'", as_type)
            as_type = SPAN

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            label = name or getattr(fn, "__name__", None) or as_type

            def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation:
                observation = self.start(as_type, label)
                if capture_input:
                    try:
                        observation.update(input=_call_input(fn, args, kwargs, as_type == GENERATION))
                    except Exception:
                        self._logger.exception("observe(): could not capture the input of %r", label)
                return observation

            def finish(observation: Observation, result: Any) -> None:
                if capture_output:
                    observation._default_output(result)

            if inspect.isasyncgenfunction(fn):
                @functools.wraps(fn)
                async def async_generator(*args: Any, **kwargs: Any) -> Any:
                    observation = begin(args, kwargs)
                    items: list[Any] = []
                    try:
                        with observation._active():
                            generator = fn(*args, **kwargs)
                        sent: Any = None
                        thrown: BaseException | None = None
                        while True:
                            with observation._active():
                                try:
                                    item = await (generator.asend(sent) if thrown is None else generator.athrow(thrown))
                                except StopAsyncIteration:
                                    break
                            thrown = None
                            items.append(item)
                            try:
                                sent = yield item
                            except GeneratorExit:
                                await generator.aclose()
                                raise
                            except BaseException as exc:  # thrown in by the consumer
                                thrown = exc
                    except Exception as exc:
                        observation._fail(exc)
                        raise
                    finally:
                        finish(observation, _joined(items))
                        observation.end()

                return async_generator

            if inspect.isgeneratorfunction(fn):
                @functools.wraps(fn)
                def generator_wrapper(*args: Any, **kwargs: Any) -> Any:
                    observation = begin(args, kwargs)
                    items: list[Any] = []
                    try:
                        with observation._active():
                            generator = fn(*args, **kwargs)
                        sent: Any = None
                        thrown: BaseException | None = None
                        while True:
                            with observation._active():
                                try:
                                    item = generator.send(sent) if thrown is None else generator.throw(thrown)
                                except StopIteration as stop:
                                    return stop.value
                            thrown = None
                            items.append(item)
                            try:
                                sent = yield item
                            except GeneratorExit:
                                generator.close()
                                raise
                            except BaseException as exc:
                                thrown = exc
                    except Exception as exc:
                        observation._fail(exc)
                        raise
                    finally:
                        finish(observation, _joined(items))
                        observation.end()

                return generator_wrapper

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with begin(args, kwargs) as observation:
                        result = await fn(*args, **kwargs)
                        finish(observation, result)
                        return result

                return coroutine_wrapper

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with begin(args, kwargs) as observation:
                    result = fn(*args, **kwargs)
                    finish(observation, result)
                    return result

            return wrapper

        return decorate(func) if func is not None else decorate

    # --- parents ------------------------------------------------------------------------

    def _parent(
        self, parent: Any, trace_id: Any, parent_observation_id: Any
    ) -> tuple[otel_context.Context, str | None, str | None]:
        """The context to start in, and the user and thread inherited from it."""
        if parent is not None:
            if isinstance(parent, Observation) and parent._context is not None:
                return parent._context, parent.user_id, parent.thread_id
            self._logger.error("parent= must be an Observation returned by trubrics; got %r", parent)
        if trace_id is not None or parent_observation_id is not None:
            target = self._target(trace_id, parent_observation_id)
            if target is not None:
                info = self._trace_info(target.trace_id)
                context = trace_api.set_span_in_context(
                    NonRecordingSpan(target), otel_context.set_value(_OBSERVATION, None)
                )
                return context, info.user_id if info else None, info.thread_id if info else None
        context = otel_context.get_current()
        current = otel_context.get_value(_OBSERVATION, context)
        if isinstance(current, Observation):
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
            self._logger.error("trace_id must be 32 lowercase hex digits (Observation.trace_id), got %r;"
                               " recorded outside that trace", trace_id)
            return None
        trace = int(trace_id, 16)
        if observation_id is not None:
            if isinstance(observation_id, str) and _HEX16.match(observation_id) and observation_id != "0" * 16:
                return SpanContext(trace, int(observation_id, 16), True, _SAMPLED)
            if observation_id != trace_id:  # ``observation_id=trace.id`` means the trace itself
                self._logger.error("observation id must be 16 lowercase hex digits (Observation.id),"
                                   " got %r; attached to the trace instead", observation_id)
        info = self._trace_info(trace)
        if info is None:
            self._logger.warning("trace %s was not started by this process: pass its parent observation"
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


# --- conversions ----------------------------------------------------------------------


def _messages(value: Any, role: str) -> list[dict[str, Any]]:
    """Prompt or completion (text, one message, a list of them, any JSON) → GenAI messages."""
    if value is None:
        return []
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [_message(m, role) for m in value]
    if _is_message(value):
        return [_message(value, role)]
    return [{"role": role, "parts": [_text_part(value)]}]


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and ("role" in value or "content" in value or "parts" in value)


def _message(message: Mapping[str, Any], role: str) -> dict[str, Any]:
    role = str(message.get("role") or role)
    if isinstance(message.get("parts"), list):
        return {"role": role, "parts": message["parts"]}
    parts: list[Any] = []
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": part["text"]})
            else:
                parts.append(part)
    elif content is not None:
        parts.append(_text_part(content))
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping):
            function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else call
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
    return {"role": role, "parts": parts}


def _text_part(value: Any) -> dict[str, Any]:
    return {"type": "text", "content": value if isinstance(value, str) else _json(value)}


def _json(value: Any) -> str:
    return json.dumps(_snapshot(value), ensure_ascii=False, separators=(",", ":"))


def _snapshot(value: Any) -> Any:
    """A JSON-safe deep copy: through the C encoder and decoder when it can, else converted."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return to_jsonable(value)


def _attribute_value(value: Any) -> Any:
    """A model parameter as an OTel attribute value (None is dropped, structures are JSON)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return _json(value)


def _snake(key: str) -> str:
    """``maxTokens`` → ``max_tokens``, as the GenAI convention spells request parameters."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _joined(items: list[Any]) -> Any:
    """A generator's output: streamed text chunks joined, anything else as a list."""
    if items and all(isinstance(item, str) for item in items):
        return "".join(items)
    return items


def _call_input(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], single: bool) -> Any:
    """Arguments by parameter name (``self`` / ``cls`` left out); a generation's lone argument alone."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs}
    arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    if single and len(arguments) == 1:
        return next(iter(arguments.values()))
    return arguments


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _name(name: Any, kind: str, logger: logging.Logger) -> str:
    text = _text(name)
    if text is None:
        logger.error("%s name must be a non-empty string, got %r; named %r instead", kind, name, kind)
        return kind
    return text
