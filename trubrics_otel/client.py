"""``Trubrics``: the official SDK's tracking API, recorded as OpenTelemetry spans.

A drop-in for ``from trubrics import Trubrics``::

    from trubrics_otel import Trubrics

    trubrics = Trubrics(api_key="...")        # or TRUBRICS_API_KEY; host= or TRUBRICS_HOST
    trubrics.track(user_id="u1", event="Sign up", properties={"plan": "pro"})
    trubrics.track_llm(user_id="u1", prompt="What is Trubrics?", generation="An analytics platform.",
                       assistant_id="gpt-4o", latency=1.2, thread_id="t-42")
    trubrics.close()                          # flushes everything, then stops

Each call becomes one span (GenAI semantic conventions for LLM calls, ``trubrics.*`` for
the rest, see :mod:`~trubrics_otel.semconv`) handed to the SDK's ``BatchSpanProcessor``
and exported by :class:`~trubrics_otel.exporter.TrubricsSpanExporter`.

By default the spans live on a private ``TracerProvider``, so the app's other spans are
never shipped; ``tracer_provider=`` records them into the app's provider instead (and
attaches the Trubrics exporter to it). On that private provider ``track`` builds the
finished span directly and hands it to the processor: the generic tracer machinery (span
limits, samplers, context activation) costs several times the whole call and buys nothing
for a span that starts and ends at once.

Nothing starts before the first ``track``: no thread, no connection. Calls never raise
into the app; bad input is logged on the ``trubrics`` logger (ERROR by default).
"""

from __future__ import annotations

import atexit
import datetime as _dt
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.context import current_user_context, stamp
from trubrics_otel.exporter import TrubricsSpanExporter
from trubrics_otel.jsonable import dumps, encode_string
from trubrics_otel.tracing import Observation, Tracing

DEFAULT_FLUSH_INTERVAL_S = 10.0
DEFAULT_FLUSH_BATCH_SIZE = 20
DEFAULT_MAX_QUEUE_SIZE = 100_000
DEFAULT_CLOSE_TIMEOUT_S = 30.0
SCOPE_NAME = "trubrics_otel"

class Secret:
    """Holds the API key so that no repr, log line or traceback of ours can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)

Properties = Mapping[str, Any]


class Trubrics:
    """Track product and LLM events; see the module docstring for usage.

    ``flush_interval`` (s) and ``flush_batch_size`` become the ``BatchSpanProcessor``'s
    schedule delay and export batch size (``flush_at`` is the older name of the latter);
    when not given they fall back to ``OTEL_BSP_SCHEDULE_DELAY`` /
    ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and then to the official SDK's 10 s and 20.
    ``max_queue_size`` (``OTEL_BSP_MAX_QUEUE_SIZE``) bounds events waiting in memory.
    ``flush_periodic_check`` is accepted for compatibility and unused: the processor
    wakes itself when a batch is full.
    """

    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        flush_interval: float | None = None,
        flush_batch_size: int | None = None,
        flush_periodic_check: float | None = None,
        logger: logging.Logger | None = None,
        *,
        flush_at: int | None = None,
        tracer_provider: TracerProvider | None = None,
        max_queue_size: int | None = None,
        timeout: float | None = None,
        retry_timeout: float | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics")
        self._api_key = Secret(api_key) if api_key else None
        self._host = host
        self._timeout = timeout
        self._retry_timeout = retry_timeout
        self._flush_interval = _positive(
            flush_interval, "OTEL_BSP_SCHEDULE_DELAY", 1000, DEFAULT_FLUSH_INTERVAL_S
        )
        self._batch_size = int(
            _positive(
                flush_batch_size if flush_batch_size is not None else flush_at,
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, DEFAULT_FLUSH_BATCH_SIZE,
            )
        )
        self._max_queue_size = max(
            self._batch_size,
            int(_positive(max_queue_size, "OTEL_BSP_MAX_QUEUE_SIZE", 1, DEFAULT_MAX_QUEUE_SIZE)),
        )
        self._app_provider = tracer_provider
        self._start_lock = threading.Lock()
        self._exporter: TrubricsSpanExporter | None = None
        self._processor: BatchSpanProcessor | None = None
        self._provider: TracerProvider | None = None
        self._tracer: trace_api.Tracer | None = None
        self._observation_tracer: trace_api.Tracer | None = None
        """Starts the tracing API's spans, on whichever provider this client records into."""
        self._tracing = Tracing(self._tracer_for_observations, self._time_ns, self._logger)
        self._resource = Resource.create({})
        self._scope = InstrumentationScope(SCOPE_NAME)
        self._closed = False

    def __repr__(self) -> str:
        host = self._exporter.host if self._exporter else self._host or "(default)"
        return f"Trubrics(host={host!r}, flush_interval={self._flush_interval}, flush_batch_size={self._batch_size})"

    # --- Tracking ----------------------------------------------------------------------

    def track(
        self,
        user_id: str,
        event: str,
        properties: Properties | None = None,
        timestamp: _dt.datetime | None = None,
    ) -> None:
        """Record a product event (``Sign up``, ``Thumbs up``…) for ``user_id``."""
        try:
            user = _identifier(user_id)
            name = _identifier(event)
            if user is None or name is None:
                self._logger.error(
                    "track() skipped: user_id and event must be non-empty strings, got %r and %r",
                    type(user_id).__name__, type(event).__name__,
                )
                return
            attributes: dict[str, Any] = {sc.USER_ID: user, sc.TRUBRICS_EVENT: name}
            if properties:
                attributes[sc.TRUBRICS_PROPERTIES] = dumps(properties)
            end = self._time_ns(timestamp)
            self._record(name, attributes, end, end)
        except Exception:  # never into the app
            self._logger.exception("track() failed; the event is lost")

    def track_llm(
        self,
        user_id: str,
        prompt: str,
        generation: str,
        prompt_event_name: str = "Prompt",
        generation_event_name: str = "Generation",
        assistant_id: str | None = None,
        properties: Properties | None = None,
        timestamp: _dt.datetime | None = None,
        latency: float | None = None,
        thread_id: str | None = None,
    ) -> None:
        """Record one LLM exchange: the user's prompt and the assistant's generation.

        ``timestamp`` is when the generation ended; ``latency`` (s) makes the span start
        that long before. ``thread_id`` (or the ``$thread_id`` property) groups a
        conversation; ``assistant_id`` (or ``$assistant_id``) is typically the model.
        """
        try:
            user = _identifier(user_id)
            if user is None:
                self._logger.error(
                    "track_llm() skipped: user_id must be a non-empty string, got %r",
                    type(user_id).__name__,
                )
                return
            props = properties or {}
            thread = thread_id if thread_id is not None else props.get(sc.PROP_THREAD_ID)
            model = assistant_id if assistant_id is not None else props.get(sc.PROP_ASSISTANT_ID)
            attributes: dict[str, Any] = {
                sc.USER_ID: user,
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_INPUT_MESSAGES: _message_json("user", prompt),
                sc.GEN_AI_OUTPUT_MESSAGES: _message_json("assistant", generation),
            }
            if prompt_event_name != "Prompt":  # the encoder's defaults need no attribute
                attributes[sc.TRUBRICS_PROMPT_EVENT_NAME] = str(prompt_event_name)
            if generation_event_name != "Generation":
                attributes[sc.TRUBRICS_GENERATION_EVENT_NAME] = str(generation_event_name)
            if model is not None:
                attributes[sc.GEN_AI_REQUEST_MODEL] = str(model)
            if thread is not None and thread != "":
                attributes[sc.GEN_AI_CONVERSATION_ID] = str(thread)
            if props:
                attributes[sc.TRUBRICS_PROPERTIES] = dumps(props)
                if not _USAGE_KEYS.isdisjoint(props):
                    for prop, attribute in _USAGE_PROPERTIES:
                        if type(props.get(prop)) is int:
                            attributes[attribute] = props[prop]
            end = self._time_ns(timestamp)
            if (latency.__class__ is float or latency.__class__ is int) and 0 <= latency <= _MAX_LATENCY_S:
                start = end - int(latency * 1e9)
            else:
                seconds = _latency(latency, self._logger)
                if seconds is None:
                    attributes[sc.TRUBRICS_LATENCY_UNKNOWN] = True
                start = end - int((seconds or 0.0) * 1e9)
            self._record(f"{sc.OPERATION_CHAT} {model}" if model else sc.OPERATION_CHAT,
                         attributes, start, end, SpanKind.CLIENT)
        except Exception:
            self._logger.exception("track_llm() failed; the event is lost")

    # --- Tracing (see trubrics_otel.tracing) -----------------------------------------------

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
        return self._tracing.observe(
            func, name=name, as_type=as_type, capture_input=capture_input,
            capture_output=capture_output,
        )

    # --- Delivery ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Deliver everything tracked so far; return how many events are still undelivered.

        Returns once every earlier event was delivered, or when ``timeout`` (s) passed.
        """
        if self._processor is None or self._exporter is None or self._closed:
            return 0
        try:
            with self._exporter.deadline(timeout):
                self._processor.force_flush()
                if self._exporter.pending:
                    self._exporter.deliver([])
            pending = self._exporter.pending
            if pending:
                self._logger.warning("flush(): %d events not delivered yet; they stay queued", pending)
            return pending
        except Exception:
            self._logger.exception("flush() failed")
            return self._exporter.pending

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Flush, then stop the background thread. Idempotent; bounded by ``timeout`` (s)."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if self._processor is None or self._exporter is None:
            return
        try:
            with self._exporter.deadline(timeout):
                self._processor.shutdown()  # drains the queue, then shuts the exporter down
            if self._provider is not None:
                self._provider.shutdown()
        except Exception:
            self._logger.exception("close() failed")

    def stats(self) -> dict[str, int]:
        """Counters: ``sent``, ``rejected``, ``pending``, ``retries``, ``dropped``…"""
        return self._exporter.stats() if self._exporter is not None else {}

    # --- Internals ---------------------------------------------------------------------

    def _record(
        self,
        name: str,
        attributes: dict[str, Any],
        start: int,
        end: int,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        if self._processor is None:
            self._start()
        if self._closed:
            self._logger.error("Event %r tracked after close(); it is not sent.", name)
            return
        scope = current_user_context()
        if scope is not None:  # explicit arguments win over the surrounding user_context
            attributes.update(stamp(scope, attributes))
        if self._tracer is not None:  # the app's provider: let its processors see the span
            span = self._tracer.start_span(name, kind=kind, attributes=attributes, start_time=start)
            span.end(end_time=end)
            return
        parent = trace_api.get_current_span().get_span_context()
        if parent.is_valid:
            context = SpanContext(parent.trace_id, random.getrandbits(64), False, _SAMPLED)
        else:
            context = SpanContext(random.getrandbits(128), random.getrandbits(64), False, _SAMPLED)
            parent = None
        self._processor.on_end(  # type: ignore[union-attr]
            ReadableSpan(
                name, context, parent, self._resource, attributes, (), (), kind,
                None, _UNSET, start, end, self._scope,
            )
        )

    def _start(self) -> None:
        with self._start_lock:
            if self._processor is not None:
                return
            self._exporter = TrubricsSpanExporter(
                api_key=self._api_key.reveal() if self._api_key else None,
                host=self._host,
                timeout=self._timeout,
                retry_timeout=self._retry_timeout,
                logger=self._logger,
            )
            self._processor = BatchSpanProcessor(
                self._exporter,
                max_queue_size=self._max_queue_size,
                schedule_delay_millis=self._flush_interval * 1000,
                max_export_batch_size=self._batch_size,
            )
            if self._app_provider is not None:
                self._app_provider.add_span_processor(self._processor)
                self._tracer = self._app_provider.get_tracer(SCOPE_NAME)
                self._observation_tracer = self._tracer
            else:
                # ALWAYS_ON: the app's sampling decisions must not drop analytics events
                self._provider = TracerProvider(
                    resource=self._resource, sampler=ALWAYS_ON, shutdown_on_exit=False
                )
                self._provider.add_span_processor(self._processor)
                self._observation_tracer = self._provider.get_tracer(SCOPE_NAME)
            atexit.register(self.close)

    def _tracer_for_observations(self) -> trace_api.Tracer | None:
        if self._processor is None:
            self._start()
        return None if self._closed else self._observation_tracer

    def _time_ns(self, timestamp: Any) -> int:
        if timestamp is None:
            return time.time_ns()
        try:
            if isinstance(timestamp, str):
                timestamp = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
            if isinstance(timestamp, _dt.datetime):
                if timestamp.tzinfo is None:  # as the official SDK's server reads it: UTC
                    timestamp = timestamp.replace(tzinfo=_dt.timezone.utc)
                return ((timestamp - _EPOCH) // _MICROSECOND) * 1000
            if isinstance(timestamp, _dt.date):
                return self._time_ns(_dt.datetime.combine(timestamp, _dt.time()))
            if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
                return int(timestamp * 1e9)
        except (ValueError, OverflowError):
            pass
        self._logger.error("Invalid timestamp %r: using the current time instead", timestamp)
        return time.time_ns()


_USAGE_PROPERTIES = (
    ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("prompt_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("completion_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
)
_MAX_LATENCY_S = 86_400
_USAGE_KEYS = frozenset(prop for prop, _ in _USAGE_PROPERTIES)


def _message_json(role: str, text: Any) -> str:
    """One GenAI message as JSON, built without a generic encoder (hot path)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return (
        '[{"role":"' + role + '","parts":[{"type":"text","content":'
        + encode_string(text) + "}]}]"
    )


def _identifier(value: Any) -> str | None:
    """A usable id or event name: a non-empty string (an int is taken as its text)."""
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _latency(latency: Any, logger: logging.Logger) -> float | None:
    if latency is None:
        return None
    if isinstance(latency, (int, float)) and not isinstance(latency, bool) and 0 <= latency <= _MAX_LATENCY_S:
        return float(latency)
    logger.error("Invalid latency %r: must be seconds, 0 to %d; sent as unknown", latency, _MAX_LATENCY_S)
    return None


def _positive(value: float | None, env: str, env_scale: float, default: float) -> float:
    """An argument, else the environment variable (divided by ``env_scale``), else default."""
    if value is None:
        try:
            value = float(os.environ[env]) / env_scale
        except (KeyError, ValueError):
            return default
    return value if value > 0 else default
