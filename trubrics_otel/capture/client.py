"""``Trubrics``: the official SDK's tracking API, recorded as OpenTelemetry spans.

A drop-in for ``from trubrics import Trubrics``::

    from trubrics_otel import Trubrics

    trubrics = Trubrics(api_key="...")        # or TRUBRICS_API_KEY; host= or TRUBRICS_HOST
    trubrics.track(user_id="u1", event="Sign up", properties={"plan": "pro"})
    trubrics.track_llm(user_id="u1", prompt="What is Trubrics?", generation="An analytics platform.",
                       assistant_id="gpt-4o", latency=1.2, thread_id="t-42")
    trubrics.close()                          # flushes everything, then stops

Each call becomes one span (GenAI semantic conventions for LLM calls, ``trubrics.*`` for
the rest, see :mod:`~trubrics_otel.semconv`) handed to a :class:`~trubrics_otel.deliver.processor.SpoolingSpanProcessor`
and exported by :class:`~trubrics_otel.deliver.exporter.TrubricsSpanExporter`.

By default the spans live on a private ``TracerProvider``, so the app's other spans are
never shipped; ``tracer_provider=`` records them into the app's provider instead (and
attaches the Trubrics exporter to it). On that private provider ``track`` skips the generic
tracer machinery (span limits, samplers, context activation cost several times the whole
call and buy nothing for a span that starts and ends at once): it keeps a *record* of the
call and copies it into the crash journal, the queue that survives ``kill -9``. The export
thread turns each record into a :class:`~trubrics_otel.translate.tracked.TrackedSpan`.

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
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from trubrics_otel import semconv as sc
from trubrics_otel import settings
from trubrics_otel.capture import fast_path
from trubrics_otel.capture.arguments import Properties, batching, event_body, llm_body, time_ns
from trubrics_otel.capture.context import current_user_context, stamp
from trubrics_otel.capture.tracing import Tracing, TracingMethods
from trubrics_otel.deliver.exporter import TrubricsSpanExporter
from trubrics_otel.deliver.prices import PricesArgument
from trubrics_otel.deliver.processor import SpoolingSpanProcessor
from trubrics_otel.logs import RateLimitedLog
from trubrics_otel.translate.redaction import Mask
from trubrics_otel.translate.sampling import sampler_for
from trubrics_otel.translate.tracked import (
    EVENT,
    EVENT_NAME_AT,
    LLM,
    RESOURCE,
    VERSION,
    TrackedRecord,
    TrackedSpan,
    span_fields,
)

DEFAULT_CLOSE_TIMEOUT_S = 30.0
DEFAULT_SYNC_TIMEOUT_S = 10.0
SCOPE_NAME = sc.SCOPE_NAME
_FIRST_LOCK = threading.Lock()

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


STACK_SPENT = SyncResult(delivered=False, detail="RecursionError: the app's stack was spent")  # built in advance


class Trubrics(TracingMethods):
    """Track product and LLM events; see the module docstring for usage.

    ``flush_interval`` (s) and ``flush_batch_size`` become the ``BatchSpanProcessor``'s
    schedule delay and export batch size (``flush_at`` is the older name of the latter);
    when not given they fall back to ``OTEL_BSP_SCHEDULE_DELAY`` /
    ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and then to the official SDK's 10 s and 20.
    ``track``'s events wait for the export thread in the crash journal (a sparse 64 MiB ring
    file, see :mod:`~trubrics_otel.deliver.journal`); ``max_queue_size`` (``OTEL_BSP_MAX_QUEUE_SIZE``)
    bounds spans waiting in memory (the tracing API's, or all of them without a journal).
    What fits in neither waits in the disk spool. ``spool``, ``max_spool_bytes``, ``mask``,
    ``capture_content``, ``allow_insecure`` and ``prices`` are the exporter's (see
    :mod:`~trubrics_otel.deliver.exporter`).
    ``flush_periodic_check`` is accepted for compatibility and unused: the processor
    wakes itself when a batch is full. ``sample_rate`` (off by default: every event
    counts) keeps that share of traces, decided by trace id, for very high-volume apps.
    """

    _first: ClassVar[Trubrics | None] = None

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
        prices: PricesArgument = None,
    ) -> None:
        self.logger = self._logger = logger or logging.getLogger("trubrics")  # the official docs: .logger.setLevel
        self._exporter_options: dict[str, Any] = dict(spool=spool, max_spool_bytes=max_spool_bytes, mask=mask,
            capture_content=capture_content, allow_insecure=allow_insecure, prices=prices)
        self._api_key = settings.Secret(api_key) if api_key else None
        self._host = host
        self._timeout = timeout
        self._retry_timeout = retry_timeout
        self._flush_interval, self._batch_size, self._max_queue_size = batching(
            flush_interval, flush_batch_size if flush_batch_size is not None else flush_at, max_queue_size)
        self._app_provider = tracer_provider
        self._start_lock = threading.Lock()
        self._exporter: TrubricsSpanExporter | None = None
        self._processor: SpoolingSpanProcessor | None = None
        self._provider: TracerProvider | None = None
        self._tracer: trace_api.Tracer | None = None
        self._observation_tracer: trace_api.Tracer | None = None
        """Starts the tracing API's spans, on whichever provider this client records into."""
        self._tracing = Tracing(self._tracer_for_observations, lambda t: time_ns(t, self._logger), self._logger)
        self._closed = False
        self._sampler = sampler_for(sample_rate)
        self._sampled_out_count = self._sync_count = self._rejected_seen = self._failed_calls = 0
        self._log = RateLimitedLog(self._logger)
        self._fast: fast_path.FastEnqueue | None = None
        """Set once started on the private provider with a journal and no sampling (then
        ``track_llm`` becomes :func:`~.fast_path.fast_track_llm` on the instance, too)."""
        with _FIRST_LOCK:  # the process's first client: get_client()'s and module-level observe's
            Trubrics._first = Trubrics._first or self

    def __repr__(self) -> str:
        host = self._exporter.host if self._exporter else self._host or "(default)"
        return f"Trubrics(host={host!r}, flush_interval={self._flush_interval}, flush_batch_size={self._batch_size})"

    # --- Tracking ----------------------------------------------------------------------

    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: Properties | None = None,
        timestamp: _dt.datetime | None = None,
    ) -> None:
        """Record a product event (``Sign up``, ``Thumbs up``…) for ``user_id`` (not given: the
        enclosing ``user_context``'s user)."""
        try:
            if timestamp is None and user_id.__class__ is str and event.__class__ is str and user_id and event:
                body: tuple[Any, ...] | None = (user_id, event, properties or None, time.time_ns())
            else:  # the documented conversions, and the checks that log
                body = event_body(user_id, event, properties, timestamp, self._logger)
            if body is None:
                return
            fast = self._fast
            if fast is not None and fast(EVENT, body):
                return
            if self._ready(body[EVENT_NAME_AT]):
                self._enqueue(self._record(EVENT, body))
        except Exception:  # never into the app, the logging included (a RecursionError can recur there)
            self._failed_calls += 1
            try:
                self._logger.exception("track() failed; the event is lost")
            except RecursionError:
                pass

    def track_sync(
        self,
        user_id: str | None = None,
        event: str | None = None,
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
            body = event_body(user_id, event, properties, timestamp, self._logger)
            return self._send_now(EVENT, body, body and body[EVENT_NAME_AT], timeout)
        except Exception as exc:
            try:  # the logging and the answer may fail again when the app's stack is spent
                self._logger.exception("track_sync() failed")
                return SyncResult(delivered=False, detail=f"{type(exc).__name__}: {exc}")
            except RecursionError:
                return STACK_SPENT

    def track_llm(
        self,
        user_id: str | None = None,
        prompt: str | None = None,
        generation: str | None = None,
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
            body = llm_body(
                user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                properties, timestamp, latency, thread_id, self._logger,
            )
            if body is None:
                return
            fast = self._fast
            if fast is not None and fast(LLM, body):
                return
            if self._ready(sc.OPERATION_CHAT):
                self._enqueue(self._record(LLM, body))
        except Exception:  # never into the app, the logging included (a RecursionError can recur there)
            self._failed_calls += 1
            try:
                self._logger.exception("track_llm() failed; the event is lost")
            except RecursionError:
                pass

    def track_llm_sync(
        self,
        user_id: str | None = None,
        prompt: str | None = None,
        generation: str | None = None,
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
            body = llm_body(
                user_id, prompt, generation, prompt_event_name, generation_event_name, assistant_id,
                properties, timestamp, latency, thread_id, self._logger,
            )
            return self._send_now(LLM, body, sc.OPERATION_CHAT, timeout)
        except Exception as exc:
            try:  # the logging and the answer may fail again when the app's stack is spent
                self._logger.exception("track_llm_sync() failed")
                return SyncResult(delivered=False, detail=f"{type(exc).__name__}: {exc}")
            except RecursionError:
                return STACK_SPENT

    # --- Delivery ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Deliver everything tracked so far; return how many events are not delivered:
        still queued or spooled, plus those the server refused since the last flush (a
        wrong key, say: logged once, never a silent success).

        Returns once every earlier event was delivered, or when ``timeout`` (s) passed.
        Never raises, called with the app's stack nearly spent included.
        """
        if self._processor is None or self._exporter is None or self._closed:
            return 0
        try:
            pending = self._processor.flush(timeout)
            rejected = self._exporter.stats()["rejected"]
            refused, self._rejected_seen = rejected - self._rejected_seen, rejected
            if pending:
                self._logger.warning("flush(): %d events not delivered yet (%s); they stay queued",
                                     pending, self._exporter.last_failure or "no answer in time")
            if refused:  # not retried: a wrong key or a malformed event; never a success
                self._log.warning("refused", "flush(): %d events were refused by the server (%s).",
                                  refused, self._exporter.last_rejection)
            return pending + refused
        except Exception:  # never into the app: a RecursionError recurs in the count and the logging
            left = 1  # not even counted (the stack is spent): never 0, "everything was delivered"
            try:  # inline, the count before the logging (it needs fewer frames): see track()
                left = self._exporter.pending + self._processor.queued
                self._logger.exception("flush() failed")
            except RecursionError:
                pass
            return left

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Flush, then stop the background thread. Idempotent; bounded by ``timeout`` (s)."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        try:  # the processor shuts down on a thread of its own: a spent stack here stops nothing
            atexit.unregister(self.close)
            if self._processor is None or self._exporter is None:
                return
            with self._exporter.deadline(timeout):
                # drains the queue, spools what it cannot deliver in time, shuts the exporter
                millis = (DEFAULT_CLOSE_TIMEOUT_S if timeout is None else timeout) * 1000
                self._processor.shutdown(timeout_millis=millis)
            if self._provider is not None:
                self._provider.shutdown()
        except Exception:  # never into the app, the logging included (a RecursionError recurs there)
            try:
                self._logger.exception("close() failed")
            except RecursionError:
                pass

    def stats(self) -> dict[str, int]:
        """Counters: ``tracked`` (accepted), ``queued`` (for the export thread), ``sent``,
        ``pending`` (in the spool), ``dropped`` (by cause, see the exporter's ``stats``),
        ``rejected`` (refused by the server), ``sampled_out``, ``retries``… (a ``track`` or
        ``track_llm`` that failed in here, logged: ``dropped_call_failed``). After a flush or
        close, ``tracked == sent + pending + dropped + rejected + sampled_out + queued``
        (+ ``skipped_spans`` and ``merged_duplicates``: the tracing API's and others' spans)."""
        counts = self._exporter.stats() if self._exporter is not None else {}
        accepted = self._processor.accepted if self._processor is not None else 0
        counts["tracked"] = accepted + self._sampled_out_count + self._sync_count + self._failed_calls
        counts["dropped_call_failed"] = self._failed_calls
        counts["dropped"] = counts.get("dropped", 0) + self._failed_calls
        if self._processor is not None:
            counts["queued"] = self._processor.queued
        counts["sampled_out"] = counts.get("sampled_out", 0) + self._sampled_out_count
        return counts

    # --- Internals ---------------------------------------------------------------------

    def _ready(self, name: str) -> bool:
        """Start on first use; refuse after close."""
        if self._processor is None:
            self._start()
        if self._closed:
            self._logger.error("Event %r tracked after close(); it is not sent.", name)
            return False
        return True

    def _record(self, kind: str, body: tuple[Any, ...]) -> TrackedRecord | None:
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

    def _enqueue(self, record: TrackedRecord | None) -> None:
        if record is None:
            return
        if self._tracer is not None:  # the app's provider: let its processors see the span
            name, attributes, start, end, kind = span_fields(record)
            span = self._tracer.start_span(name, kind=kind, attributes=attributes, start_time=start)
            span.end(end_time=end)
            return
        self._processor.enqueue_record(record)  # type: ignore[union-attr]

    def _send_now(self, kind: str, body: tuple[Any, ...] | None, name: str | None, timeout: float) -> SyncResult:
        if body is None or name is None:
            return SyncResult(delivered=False, detail="skipped: invalid user_id or event (logged)")
        if not self._ready(name):
            return SyncResult(delivered=False, detail="the client is closed")
        record = self._record(kind, body)
        if record is None:
            return SyncResult(delivered=False, detail="sampled out", sampled_out=True)
        span = TrackedSpan(record)
        with self._start_lock:
            self._sync_count += 1
        delivery = self._exporter.send_now([span], timeout)  # type: ignore[union-attr]
        return SyncResult(delivered=delivery.ok, status=delivery.status, detail=delivery.detail,
                          attempts=delivery.attempts, queued=bool(delivery.pending))

    def _start(self) -> None:
        with self._start_lock:
            if self._processor is not None:
                return
            self._exporter = TrubricsSpanExporter(
                api_key=self._api_key.reveal() if self._api_key else None, host=self._host,
                timeout=self._timeout, retry_timeout=self._retry_timeout, logger=self._logger,
                **self._exporter_options,
            )
            processor = SpoolingSpanProcessor(
                self._exporter, max_queue_size=self._max_queue_size, schedule_delay=self._flush_interval,
                max_export_batch_size=self._batch_size,
            )
            if self._app_provider is not None:
                self._app_provider.add_span_processor(processor)
                self._tracer = self._app_provider.get_tracer(SCOPE_NAME)
                self._observation_tracer = self._tracer
            else:
                # ALWAYS_ON: the app's sampling decisions must not drop analytics events
                self._provider = TracerProvider(resource=RESOURCE, sampler=ALWAYS_ON, shutdown_on_exit=False)
                self._provider.add_span_processor(processor)
                self._observation_tracer = self._provider.get_tracer(SCOPE_NAME)
                # track()'s queue: a ring that outlives kill -9 (None: the memory queue)
                processor.journal = self._exporter.open_journal()
                if self._sampler is None:
                    append_payload = processor.journal_appender()
                    self._fast = fast_path.fast_enqueue(append_payload)
                    fast_llm = fast_path.fast_track_llm(append_payload, full=Trubrics.track_llm.__get__(self))
                    if fast_llm is not None and type(self).track_llm is Trubrics.track_llm:
                        fast_llm.__doc__ = Trubrics.track_llm.__doc__
                        self.track_llm = fast_llm  # type: ignore[method-assign]
            self._processor = processor  # last: a thread that sees it started finds the tracers set
            atexit.register(self.close)

    def _tracer_for_observations(self) -> trace_api.Tracer | None:
        if self._processor is None:
            self._start()
        return None if self._closed else self._observation_tracer
