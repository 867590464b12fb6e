"""``Observation``: one trace, span, generation or event of the tracing API, as a live span.

::

    with trubrics.generation("answer", model="gpt-4o") as gen:   # see capture/tracing.py
        gen.update(completion=reply, usage={"prompt_tokens": 512, "completion_tokens": 49})
    current_observation()        # the innermost one made current by ``with`` / ``@observe``

Input, output and metadata are snapshotted when given; ``update`` works until the
observation ends (an exported span cannot change), then logs a warning. A generation's
prompt and completion become the GenAI message attributes; everything else is written as
the span's ``trubrics.properties`` when it ends.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from trubrics_otel import semconv as sc
from trubrics_otel.capture.context import user_context
from trubrics_otel.translate.jsonable import dumps, snapshot
from trubrics_otel.translate.messages import genai_messages, json_text

TRACE = "trace"
SPAN = "span"
GENERATION = "generation"
EVENT = "event"
SCORE = "score"

OBSERVATION_KEY = otel_context.create_key("trubrics.observation")
UNSET: Any = object()

_INPUT_USAGE = frozenset({"input_tokens", "prompt_tokens", "promptTokens", "input"})
_OUTPUT_USAGE = frozenset({"output_tokens", "completion_tokens", "completionTokens", "output"})
_TOTAL_USAGE = frozenset({"total_tokens", "totalTokens", "total"})


def current_observation() -> Observation | None:
    """The innermost observation made current by ``with`` (or ``@observe``), if any."""
    value = otel_context.get_value(OBSERVATION_KEY)
    return value if isinstance(value, Observation) else None


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
        self._context = (  # one that records nothing is current too: the app's update() on it does nothing
            otel_context.set_value(OBSERVATION_KEY, self, trace_api.set_span_in_context(span, parent_context))
            if span is not None
            else otel_context.set_value(OBSERVATION_KEY, self)
        )
        self._lock = threading.Lock()
        self._ended = span is None
        self._tokens: list[Any] = []
        self._input: Any = UNSET
        self._output: Any = UNSET
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
            scope = user_context(self.user_id, self.thread_id) if self.kind == TRACE and self._span is not None else None
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
        input: Any = UNSET,
        output: Any = UNSET,
        metadata: Mapping[str, Any] | None = None,
        prompt: Any = UNSET,
        completion: Any = UNSET,
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
                    input if prompt is UNSET else prompt,
                    output if completion is UNSET else completion,
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
        if self._output is UNSET and not self._ended:
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
        if input is not UNSET:
            self._input = snapshot(input)
            if generation:
                span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, json_text(genai_messages(self._input, "user")))
        if output is not UNSET:
            self._output = snapshot(output)
            if generation:
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json_text(genai_messages(self._output, "assistant")))
        if metadata:
            if isinstance(metadata, Mapping):
                self._metadata.update(snapshot(metadata))
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
                self._extra[sc.PROP_TOTAL_TOKENS] = snapshot(value)
            else:
                self._extra[_snake(str(key))] = snapshot(value)

    def _properties(self) -> dict[str, Any]:
        if self.kind == GENERATION:
            return {sc.PROP_NAME: self.name, **self._extra, **self._metadata}
        properties = dict(self._metadata)
        if self._input is not UNSET:
            properties[sc.PROP_INPUT] = self._input
        if self._output is not UNSET:
            properties[sc.PROP_OUTPUT] = self._output
        return properties


def _attribute_value(value: Any) -> Any:
    """A model parameter as an OTel attribute value (None is dropped, structures are JSON)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return json_text(value)


def _snake(key: str) -> str:
    """``maxTokens`` → ``max_tokens``, as the GenAI convention spells request parameters."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
