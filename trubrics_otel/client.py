"""``Trubrics``: the official SDK's tracking API, recorded as OpenTelemetry spans.

A drop-in for ``from trubrics import Trubrics``::

    from trubrics_otel import Trubrics

    trubrics = Trubrics(api_key="...")        # or TRUBRICS_API_KEY; host= or TRUBRICS_HOST
    trubrics.track(user_id="u1", event="Sign up", properties={"plan": "pro"})
    trubrics.track_llm(user_id="u1", prompt="What is Trubrics?", generation="An analytics platform.",
                       assistant_id="gpt-4o", latency=1.2, thread_id="t-42")
    trubrics.close()                          # flushes everything, then stops

Each call becomes one span (GenAI semantic conventions for LLM calls, ``trubrics.*`` for
the rest, see :mod:`~trubrics_otel.semconv`) handed to a :class:`~trubrics_otel.processor.SpoolingSpanProcessor`
and exported by :class:`~trubrics_otel.exporter.TrubricsSpanExporter`.

By default the spans live on a private ``TracerProvider``, so the app's other spans are
never shipped; ``tracer_provider=`` records them into the app's provider instead (and
attaches the Trubrics exporter to it). On that private provider ``track`` skips the generic
tracer machinery (span limits, samplers, context activation cost several times the whole
call and buy nothing for a span that starts and ends at once): it keeps a *record* of the
call and copies it into the crash journal, the queue that survives ``kill -9``. The export
thread turns each record into a :class:`~trubrics_otel.tracked.TrackedSpan`.

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
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from trubrics_otel import semconv as sc
from trubrics_otel.context import current_user_context, stamp
from trubrics_otel.exporter import TrubricsSpanExporter
from trubrics_otel.exporter import max_queue_size as queue_bound
from trubrics_otel.processor import SpoolingSpanProcessor
from trubrics_otel.redaction import Mask
from trubrics_otel.sampling import sampler_for
from trubrics_otel.tracing import Observation, Tracing
from trubrics_otel.tracked import EVENT, LLM, RESOURCE, VERSION, Record, TrackedSpan, span_fields

DEFAULT_FLUSH_INTERVAL_S = 10.0
DEFAULT_FLUSH_BATCH_SIZE = 20
DEFAULT_CLOSE_TIMEOUT_S = 30.0
DEFAULT_SYNC_TIMEOUT_S = 10.0
SCOPE_NAME = sc.SCOPE_NAME

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


@dataclass(frozen=True)
class SyncResult:
    """What ``track_sync`` / ``track_llm_sync`` achieved."""

    delivered: bool
    status: int | None = None
    """The server's HTTP status (last attempt), None when no answer came."""
    detail: str | None = None
    """The server's ``detail`` on a 4xx, or the network error."""
    attempts: int = 0
    queued: bool = False
    """Not delivered within the timeout, but kept: it goes out with the next batch."""
    sampled_out: bool = False

    def __bool__(self) -> bool:
        return self.delivered


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)

Properties = Mapping[str, Any]


class Trubrics:
    """Track product and LLM events; see the module docstring for usage.

    ``flush_interval`` (s) and ``flush_batch_size`` become the ``BatchSpanProcessor``'s
    schedule delay and export batch size (``flush_at`` is the older name of the latter);
    when not given they fall back to ``OTEL_BSP_SCHEDULE_DELAY`` /
    ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and then to the official SDK's 10 s and 20.
    ``track``'s events wait for the export thread in the crash journal (an 8 MiB ring
    file, see :mod:`~trubrics_otel.journal`); ``max_queue_size`` (``OTEL_BSP_MAX_QUEUE_SIZE``)
    bounds spans waiting in memory (the tracing API's, or all of them without a journal).
    What fits in neither waits in the disk spool. ``spool``, ``max_spool_bytes``, ``mask``,
    ``capture_content`` and ``allow_insecure`` are the exporter's (see
    :mod:`~trubrics_otel.exporter`).
    ``flush_periodic_check`` is accepted for compatibility and unused: the processor
    wakes itself when a batch is full. ``sample_rate`` (off by default: every event
    counts) keeps that share of traces, decided by trace id, for very high-volume apps.
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
        sample_rate: float | None = None,
        spool: str | os.PathLike[str] | bool | None = None,
        max_spool_bytes: int | None = None,
        mask: Mask | None = None,
        capture_content: bool | None = None,
        allow_insecure: bool | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics")
        self._exporter_options: dict[str, Any] = dict(
            spool=spool, max_spool_bytes=max_spool_bytes, mask=mask,
            capture_content=capture_content, allow_insecure=allow_insecure,
        )
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
            queue_bound(max_queue_size),
        )
        self._app_provider = tracer_provider
        self._start_lock = threading.Lock()
        self._exporter: TrubricsSpanExporter | None = None
        self._processor: SpoolingSpanProcessor | None = None
        self._provider: TracerProvider | None = None
        self._tracer: trace_api.Tracer | None = None
        self._observation_tracer: trace_api.Tracer | None = None
        """Starts the tracing API's spans, on whichever provider this client records into."""
        self._tracing = Tracing(self._tracer_for_observations, self._time_ns, self._logger)
        self._closed = False
        self._sampler = sampler_for(sample_rate, from_env=False)
        self._sampled_out_count = 0
        self._journal_wanted = False

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
            body = self._event_body(user_id, event, properties, timestamp)
            if body is not None and self._ready(body[1]):
                self._enqueue(self._record(EVENT, body))
        except Exception:  # never into the app
            self._logger.exception("track() failed; the event is lost")

    def track_sync(
        self,
        user_id: str,
        event: str,
        properties: Properties | None = None,
        timestamp: _dt.datetime | None = None,
        timeout: float = DEFAULT_SYNC_TIMEOUT_S,
    ) -> SyncResult:
        """``track``, delivered before it returns (scripts, serverless handlers, tests).

        The same span, encoder and transport as ``track``, but not through the batch queue,
        and nothing else is flushed. Retries follow the batch policy, bounded by ``timeout``
        (s). Never raises: the result says whether the event was delivered, and what was not
        delivered in time is kept and sent with the next batch (``queued``).
        """
        try:
            body = self._event_body(user_id, event, properties, timestamp)
            return self._send_now(EVENT, body, body and body[1], timeout)
        except Exception as exc:
            self._logger.exception("track_sync() failed")
            return SyncResult(delivered=False, detail=f"{type(exc).__name__}: {exc}")

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
            body = self._llm_body(
                user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                properties, timestamp, latency, thread_id
            )
            if body is not None and self._ready(sc.OPERATION_CHAT):
                self._enqueue(self._record(LLM, body))
        except Exception:
            self._logger.exception("track_llm() failed; the event is lost")

    def track_llm_sync(
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
        timeout: float = DEFAULT_SYNC_TIMEOUT_S,
    ) -> SyncResult:
        """``track_llm``, delivered before it returns; see :meth:`track_sync`."""
        try:
            body = self._llm_body(
                user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                properties, timestamp, latency, thread_id
            )
            return self._send_now(LLM, body, sc.OPERATION_CHAT, timeout)
        except Exception as exc:
            self._logger.exception("track_llm_sync() failed")
            return SyncResult(delivered=False, detail=f"{type(exc).__name__}: {exc}")

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
            end = None if timeout is None else time.monotonic() + timeout
            with self._exporter.deadline(timeout):
                self._processor.force_flush(int((30.0 if timeout is None else timeout) * 1000))
                while self._exporter.pending:  # spooled events: retry until the timeout
                    self._exporter.deliver([])
                    if end is None or time.monotonic() >= end or not self._exporter.pending:
                        break
                    time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            pending = self._exporter.pending + self._processor.queued
            if pending:
                self._logger.warning("flush(): %d events not delivered yet; they stay queued", pending)
            return pending
        except Exception:
            self._logger.exception("flush() failed")
            return self._exporter.pending + self._processor.queued

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
                # drains the queue, spools what it cannot deliver in time, shuts the exporter
                self._processor.shutdown(
                    timeout_millis=(DEFAULT_CLOSE_TIMEOUT_S if timeout is None else timeout) * 1000
                )
            if self._provider is not None:
                self._provider.shutdown()
        except Exception:
            self._logger.exception("close() failed")

    def stats(self) -> dict[str, int]:
        """Counters: ``queued`` (in memory), ``sent``, ``retries``, ``spooled``, ``pending``
        (undelivered, on disk), ``dropped`` (spool full), ``rejected`` (refused by the server)…"""
        counts = self._exporter.stats() if self._exporter is not None else {}
        if self._processor is not None:
            counts["queued"] = self._processor.queued
        counts["sampled_out"] = counts.get("sampled_out", 0) + self._sampled_out_count
        return counts

    # --- Internals ---------------------------------------------------------------------

    def _ready(self, name: str) -> bool:
        """Start on first use; refuse after close."""
        if self._processor is None:
            self._start()
        elif self._journal_wanted:
            self._open_journal()
        if self._closed:
            self._logger.error("Event %r tracked after close(); it is not sent.", name)
            return False
        return True

    def _record(self, kind: str, body: tuple[Any, ...]) -> Record | None:
        """The call's record: ids (in the current trace if there is one) and the surrounding
        user_context added; None when sampling leaves it out."""
        parent = trace_api.get_current_span().get_span_context()
        if parent.is_valid:
            trace_id, parent_id = parent.trace_id, parent.span_id
        else:
            trace_id, parent_id = random.getrandbits(128), 0
        if self._sampler is not None and not self._sampler.keep(trace_id):
            self._sampled_out_count += 1
            return None
        scope = current_user_context()
        return (
            VERSION, kind, trace_id, random.getrandbits(64), parent_id,
            None if scope is None else stamp(scope, {}), body,
        )

    def _enqueue(self, record: Record | None) -> None:
        if record is None:
            return
        if self._tracer is not None:  # the app's provider: let its processors see the span
            name, attributes, start, end, kind = span_fields(record)
            span = self._tracer.start_span(name, kind=kind, attributes=attributes, start_time=start)
            span.end(end_time=end)
            return
        self._processor.enqueue_record(record)  # type: ignore[union-attr]

    def _send_now(
        self, kind: str, body: tuple[Any, ...] | None, name: str | None, timeout: float
    ) -> SyncResult:
        if body is None or name is None:
            return SyncResult(delivered=False, detail="skipped: invalid user_id or event (logged)")
        if not self._ready(name):
            return SyncResult(delivered=False, detail="the client is closed")
        record = self._record(kind, body)
        if record is None:
            return SyncResult(delivered=False, detail="sampled out", sampled_out=True)
        span = TrackedSpan(record)
        delivery = self._exporter.send_now([span], timeout)  # type: ignore[union-attr]
        return SyncResult(
            delivered=delivery.ok,
            status=delivery.status,
            detail=delivery.detail,
            attempts=delivery.attempts,
            queued=bool(delivery.pending),
        )

    def _event_body(
        self, user_id: Any, event: Any, properties: Properties | None, timestamp: Any
    ) -> tuple[Any, ...] | None:
        """A product event's record body, or None (logged) for input that cannot be one."""
        if not (user_id.__class__ is str and event.__class__ is str and user_id and event):
            user, name = _identifier(user_id), _identifier(event)
            if user is None or name is None:
                self._logger.error(
                    "track() skipped: user_id and event must be non-empty strings, got %r and %r",
                    type(user_id).__name__, type(event).__name__,
                )
                return None
            user_id, event = user, name
        return (
            user_id,
            event,
            properties or None,  # as given: to_bytes or with_json_properties snapshot it
            time.time_ns() if timestamp is None else self._time_ns(timestamp),
        )

    def _llm_body(
        self,
        user_id: Any,
        prompt: Any,
        generation: Any,
        prompt_event_name: Any,
        generation_event_name: Any,
        assistant_id: Any,
        properties: Properties | None,
        timestamp: Any,
        latency: Any,
        thread_id: Any,
    ) -> tuple[Any, ...] | None:
        """An LLM exchange's record body, or None (logged) for input that cannot be one."""
        user = user_id if user_id.__class__ is str and user_id else _identifier(user_id)
        if user is None:
            self._logger.error(
                "track_llm() skipped: user_id must be a non-empty string, got %r",
                type(user_id).__name__,
            )
            return None
        props = properties or {}
        thread = thread_id if thread_id is not None else props.get(sc.PROP_THREAD_ID)
        model = assistant_id if assistant_id is not None else props.get(sc.PROP_ASSISTANT_ID)
        usage = None
        if props and not _USAGE_KEYS.isdisjoint(props):
            usage = {attr: props[prop] for prop, attr in _USAGE_PROPERTIES if type(props.get(prop)) is int}
        if not ((latency.__class__ is float or latency.__class__ is int) and 0 <= latency <= _MAX_LATENCY_S):
            latency = _latency(latency, self._logger)
        return (
            user,
            _text(prompt),
            _text(generation),
            _name(prompt_event_name),
            _name(generation_event_name),
            None if model is None else _name(model),
            props or None,
            time.time_ns() if timestamp is None else self._time_ns(timestamp),
            latency,
            None if thread is None or thread == "" else _name(thread),
            usage,
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
                **self._exporter_options,
            )
            self._processor = SpoolingSpanProcessor(
                self._exporter,
                max_queue_size=self._max_queue_size,
                schedule_delay=self._flush_interval,
                max_export_batch_size=self._batch_size,
            )
            if self._app_provider is not None:
                self._app_provider.add_span_processor(self._processor)
                self._tracer = self._app_provider.get_tracer(SCOPE_NAME)
                self._observation_tracer = self._tracer
            else:
                # ALWAYS_ON: the app's sampling decisions must not drop analytics events
                self._provider = TracerProvider(
                    resource=RESOURCE, sampler=ALWAYS_ON, shutdown_on_exit=False
                )
                self._provider.add_span_processor(self._processor)
                self._observation_tracer = self._provider.get_tracer(SCOPE_NAME)
                self._open_journal()
                if hasattr(os, "register_at_fork"):  # the parent's journal is the parent's
                    ref = weakref.WeakMethod(self._open_journal)
                    os.register_at_fork(after_in_child=lambda: (m := ref()) and m(later=True))
            atexit.register(self.close)

    def _open_journal(self, later: bool = False) -> None:
        """The crash journal for queued events (see :mod:`~trubrics_otel.journal`); in a
        forked child, a new one on the child's first event (``later``)."""
        self._journal_wanted = later
        if not later and self._exporter is not None and self._processor is not None:
            self._processor.journal = self._exporter.open_journal()

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


def _text(value: Any) -> str:
    """A prompt or generation as text: None is empty."""
    if value.__class__ is str:
        return value
    return "" if value is None else str(value)


def _name(value: Any) -> str:
    return value if value.__class__ is str else str(value)


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
