"""``TrubricsSpanExporter``: OpenTelemetry spans → Trubrics ingestion batches.

Usage with any SDK ``TracerProvider``::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from trubrics_otel import TrubricsSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(TrubricsSpanExporter(api_key="...")))

or with no code at all: ``OTEL_TRACES_EXPORTER=trubrics opentelemetry-instrument python app.py``.

Configuration, by argument or else environment variable:

===============  ==========================  =============================================
argument         environment                 default
===============  ==========================  =============================================
api_key          TRUBRICS_API_KEY            (required by the ingestion API)
host             TRUBRICS_HOST               https://app.trubrics.com/api/ingestion
timeout          TRUBRICS_TIMEOUT            10 s per HTTP request
retry_timeout    TRUBRICS_RETRY_TIMEOUT      60 s of retrying a spooled batch per replay
spool            TRUBRICS_SPOOL              a per-user cache directory; ``False``/``off``
max_spool_bytes  TRUBRICS_MAX_SPOOL_BYTES    256 MiB
allow_insecure   TRUBRICS_ALLOW_INSECURE     False: no API key over ``http://`` off loopback
capture_content  OTEL_INSTRUMENTATION_GENAI_ True (see :mod:`~trubrics_otel.translate.redaction`)
                 CAPTURE_MESSAGE_CONTENT
mask             --                          None: ``mask(value) -> value``
prices           TRUBRICS_PRICES_FILE        custom prices (dict or JSON file) over the maintained
                                             table (``trubrics-otel[cost]``); see README "Cost"
sample_rate      OTEL_TRACES_SAMPLER(_ARG)   keep all; else that share of traces, whole,
                                             decided by trace id (our own events exempt)
all_spans        TRUBRICS_ALL_SPANS          false: spans that are neither LLM calls nor
                                             Trubrics/tool events (HTTP, DB…) are dropped;
                                             true sends them as events named after the span
===============  ==========================  =============================================

The exporter is three steps: the :mod:`~trubrics_otel.translate.encoder` turns spans into
events (pure), the :mod:`~trubrics_otel.translate.redaction` policy masks and bounds them,
and :class:`~trubrics_otel.deliver.delivery.SpoolingDelivery` sends them, spooling what
cannot go now and replaying it oldest first (also after a crash, from the next process).
Delivery is at least once; every event's ``$trace_id`` + ``$span_id`` lets a receiver drop
a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from trubrics_otel import settings
from trubrics_otel.deliver.delivery import Batches, SpoolingDelivery
from trubrics_otel.deliver.forking import reset_in_child
from trubrics_otel.deliver.journal import Journal
from trubrics_otel.deliver.prices import PricesArgument, load_price_table
from trubrics_otel.deliver.spool import SPANS_PATH
from trubrics_otel.deliver.transport import (
    EVENTS_PATH,
    LLM_EVENTS_PATH,
    SendResult,
    Transport,
    config_error,
)
from trubrics_otel.semconv import SCOPE_NAME
from trubrics_otel.translate.cost import PriceTable, price_event
from trubrics_otel.translate.encoder import Encoded, Event, encode_record, encode_spans
from trubrics_otel.translate.redaction import Mask, Policy
from trubrics_otel.translate.sampling import sampler_for
from trubrics_otel.translate.traces import TraceMemory
from trubrics_otel.translate.tracked import TrackedSpan, stored_records, to_bytes


class TrubricsSpanExporter(SpanExporter):
    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        *,
        timeout: float | None = None,
        retry_timeout: float | None = None,
        spool: str | os.PathLike[str] | bool | None = None,
        max_spool_bytes: int | None = None,
        mask: Mask | None = None,
        capture_content: bool | None = None,
        allow_insecure: bool | None = None,
        all_spans: bool | None = None,
        sample_rate: float | None = None,
        prices: PricesArgument = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics")
        api_key = str(settings.read(settings.API_KEY, api_key) or "")
        self.host = str(settings.read(settings.HOST, host))
        self._all_spans = settings.read(settings.ALL_SPANS, all_spans)
        self._sampler = sampler_for(settings.sample_rate() if sample_rate is None else sample_rate)
        self._policy = policy_from_settings(mask, capture_content, self._logger)
        self._prices = load_price_table(prices)  # custom prices now; the maintained table lazily
        refusal = config_error(self.host, api_key, host, allow_insecure)
        if refusal:  # one clear error now; nothing is ever attempted against this endpoint
            self._logger.error("Trubrics events will not be sent: %s. They are spooled.", refusal)
        transport = Transport(
            self.host, api_key, timeout=settings.read(settings.TIMEOUT, timeout), logger=self._logger
        )
        self._delivery = SpoolingDelivery(
            transport,
            _spool_directory(settings.read(settings.SPOOL, _spool_argument(spool)), spool_key(self.host, api_key),
                             self._logger),
            encode=self.encode,
            max_spool_bytes=int(settings.read(settings.MAX_SPOOL_BYTES, max_spool_bytes)),
            retry_timeout=float(settings.read(settings.RETRY_TIMEOUT, retry_timeout)),
            refusal=refusal,
            logger=self._logger,
        )
        self._skipped = self._encode_errors = self._sampled_out = self._merged = 0
        self._traces = TraceMemory()  # ancestors' users and sent calls, across batches
        self._encode_lock = threading.Lock()  # the export thread and track_sync both encode
        reset_in_child(self._after_fork)

    def __repr__(self) -> str:
        return f"TrubricsSpanExporter(host={self.host!r})"

    def _after_fork(self) -> None:
        """In a forked child: a lock no parent thread holds, and this process's own traces."""
        self._encode_lock = threading.Lock()
        self._traces = TraceMemory()
        self._delivery.after_fork()

    # --- SpanExporter ------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._delivery.deliver(self.encode(spans))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Try once more to deliver spooled events, for at most ``timeout_millis``."""
        with self.deadline(timeout_millis / 1000):
            return self.deliver([]) is SpanExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """A last delivery attempt, then the spool is closed: what is left stays on disk."""
        if self._delivery.closed:
            return
        self.force_flush(int(timeout_millis))
        self._delivery.shutdown()

    # --- encode -> policy -> delivery ----------------------------------------------------

    def encode(self, spans: Sequence[ReadableSpan]) -> Batches:
        """Spans → masked, bounded events per path (what may leave the process)."""
        if self._sampler is not None:
            kept = [s for s in spans if _exempt(s) or self._sampler.keep(s.context.trace_id)]
            self._sampled_out += len(spans) - len(kept)
            spans = kept
        with self._encode_lock:
            encoded = encode_spans(spans, all_spans=self._all_spans, memory=self._traces)
        self._merged += encoded.merged_duplicates
        for error in encoded.errors:
            self._logger.error("Could not encode a span; it is skipped: %s", error)
        self._skipped += encoded.skipped
        self._encode_errors += len(encoded.errors)
        events, llm_events = price_and_redact(encoded, self._prices, self._policy)
        return [(EVENTS_PATH, events), (LLM_EVENTS_PATH, llm_events)]

    def export_records(self, payloads: Sequence[bytes], done: Callable[[], object] | None = None) -> None:
        """:meth:`export` for ``Trubrics.track``'s stored records (the journal's): the same
        events as their spans give, without making the spans. ``done`` runs once they are
        sent, spooled or dropped: the last request's answer is read by the next call, while
        this one's batch was being encoded, or by :meth:`settle`."""
        self._delivery.deliver(self.encode_records(payloads), done, overlap=True)

    def settle(self) -> None:
        """Read the answer :meth:`export_records` left in flight (and run its ``done``)."""
        self._delivery.settle()

    def encode_records(self, payloads: Sequence[bytes]) -> Batches:
        """:meth:`encode` for stored records (``tracked.to_bytes``): each is its own event
        (never sampled away, no ancestor to remember), read by the encoder's
        :func:`~trubrics_otel.translate.encoder.encode_record` as its span would be."""
        encoded = Encoded()
        add = {"event": encoded.events.append, "llm": encoded.llm_events.append}
        for record, plain in stored_records(payloads, self._logger):
            try:
                kind, event = encode_record(record, plain)
            except Exception as exc:  # one bad record must not cost the others
                self._encode_errors += 1
                self._logger.error("Could not encode a span; it is skipped: tracked event: %s: %s",
                                   type(exc).__name__, exc)
                continue
            add[kind](event)
        events, llm_events = price_and_redact(encoded, self._prices, self._policy)
        return [(EVENTS_PATH, events), (LLM_EVENTS_PATH, llm_events)]

    def deliver(self, batches: Batches) -> SpanExportResult:
        """Replay the spool, then send ``batches``; spool what meets a lasting failure."""
        return self._delivery.deliver(batches)

    def send_now(self, spans: Sequence[ReadableSpan], timeout: float) -> SendResult:
        """Deliver ``spans`` within ``timeout`` s, ahead of any queue (``track_sync``)."""
        return self._delivery.send_now(self.encode(spans), timeout)

    def spool_spans(self, spans: Sequence[ReadableSpan]) -> None:
        """Into the spool with no network: for queue overflow and what close() could not send.

        The tracker's own spans go as their records (one ``write()``, nothing encoded) unless
        a mask or the content switch must apply first: nothing unmasked reaches the disk.
        """
        raw = [s.record for s in spans if type(s) is TrackedSpan] if self._policy.masks_nothing else []
        if raw:
            self.spool_records([to_bytes(record) for record in raw])
            spans = [s for s in spans if type(s) is not TrackedSpan]
        if spans:
            self._delivery.store(self.encode(spans))

    def spool_records(self, records: list[bytes]) -> None:
        """Span records (``tracked.to_bytes``) into the spool as they are: encoded at replay.
        Only for content no mask or content switch has to change (the journal's)."""
        self._delivery.store([(SPANS_PATH, records)])

    def open_journal(self) -> Journal | None:
        """A crash journal beside the spool for ``Trubrics.track``'s spans; None when there
        is no disk spool, or when a mask or the content switch must apply before anything
        touches the disk (then a ``kill -9`` loses what is queued in memory)."""
        directory = self._delivery.directory
        if directory is None or not self._policy.masks_nothing:
            return None
        try:
            journal = Journal(directory, logger=self._logger)
        except (OSError, ValueError) as exc:
            self._logger.warning("No Trubrics crash journal (%s); a kill -9 loses queued events.", exc)
            return None
        self._delivery.give_back = journal.give_back  # a full disk: the spool comes first
        return journal

    def deadline(self, seconds: float | None) -> contextlib.AbstractContextManager[None]:
        """Context manager bounding every delivery attempt (flush, close) to ``seconds``."""
        return self._delivery.deadline(seconds)

    @property
    def unreachable(self) -> bool:
        """The last attempt met a refused connection on loopback (nothing listens there)."""
        return self._delivery.unreachable

    @property
    def last_failure(self) -> str | None:
        """The URL and cause of the last failed attempt."""
        return self._delivery.last_failure

    @property
    def last_rejection(self) -> str | None:
        """The URL and the server's answer the last time it refused events for good."""
        return self._delivery.last_rejection

    @property
    def pending(self) -> int:
        """Events accepted by this exporter but not yet delivered (spooled ones included)."""
        return self._delivery.pending

    def stats(self) -> dict[str, int]:
        """Counters; every event is ``sent``, ``pending``, ``rejected`` or ``dropped``, and
        each drop also counts under its cause: ``dropped_spool_full`` (``max_spool_bytes``),
        ``dropped_disk_full``, ``dropped_spool_error``, ``dropped_damaged`` (on disk)."""
        counts = self._delivery.counts
        damaged = self._delivery.damaged
        return {
            "sent": counts["sent"],
            "rejected": counts["rejected"],
            "pending": self.pending,
            "retries": self._delivery.retries,
            "spooled": counts["spooled"],
            "replayed": counts["replayed"],
            "dropped": counts["dropped"] + damaged,
            "dropped_spool_full": counts["dropped_spool_full"],
            "dropped_disk_full": counts["dropped_disk_full"],
            "dropped_spool_error": counts["dropped_spool_error"],
            "dropped_damaged": damaged,
            "skipped_spans": self._skipped,
            "encode_errors": self._encode_errors,
            "sampled_out": self._sampled_out,
            "merged_duplicates": self._merged,
        }


def price_and_redact(encoded: Encoded, prices: PriceTable, policy: Policy,
                     measured: dict[int, bytes] | None = None) -> tuple[list[Event], list[Event]]:
    """What every path does to freshly encoded events before they leave: price each LLM event
    (a mask then sees the cost too), then apply the redaction policy (``measured``: see
    :meth:`Policy.apply_all`)."""
    for event in encoded.llm_events:
        properties = event["properties"]
        price_event(properties, event.get("assistant_id"), properties.get("provider"), prices)
    return policy.apply_all(encoded.events, encoded.llm_events, measured)


def policy_from_settings(
    mask: Mask | None = None, capture_content: bool | None = None, logger: logging.Logger | None = None
) -> Policy:
    """The redaction policy every path applies (exporter, bridge, local server): the arguments,
    else ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, and the size limits."""
    return Policy(mask, settings.read(settings.CAPTURE_CONTENT, capture_content), logger)


def _exempt(span: ReadableSpan) -> bool:
    """Our own events and observations are product analytics: never sampled away here."""
    scope = span.instrumentation_scope
    return scope is not None and scope.name == SCOPE_NAME


def spool_key(host: str, api_key: str) -> str:
    """The spool's subdirectory for one endpoint and key: events wait for where they were going."""
    return hashlib.sha256(f"{host}\0{api_key}".encode()).hexdigest()[:16]


def _spool_argument(value: str | os.PathLike[str] | bool | None) -> Path | bool | None:
    """``spool=``: a directory, ``False`` (off); ``True`` and ``None`` mean the default one
    (``None`` lets ``TRUBRICS_SPOOL`` decide)."""
    if value is None or value is False:
        return value
    return True if value is True else Path(value)


def _spool_directory(setting: Path | bool | None, key: str, logger: logging.Logger) -> Path | None:
    """The spool's directory for this endpoint and key; None keeps events in memory."""
    if setting is False:
        return None
    if not hasattr(os, "pread"):  # Windows: no pread
        logger.warning("No disk spool on this platform; undelivered events stay in memory.")
        return None
    base = settings.cache_directory() / "trubrics-otel" / "spool" if setting in (None, True) else setting
    return Path(base) / key
