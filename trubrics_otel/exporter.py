"""``TrubricsSpanExporter``: OpenTelemetry spans → Trubrics ingestion batches.

Usage with any SDK ``TracerProvider``::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from trubrics_otel import TrubricsSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(TrubricsSpanExporter(api_key="...")))

or with no code at all: ``OTEL_TRACES_EXPORTER=trubrics opentelemetry-instrument python app.py``.

Configuration, by argument or else environment variable:

==============  ====================  ==============================================
argument        environment           default
==============  ====================  ==============================================
api_key         TRUBRICS_API_KEY      (required by the ingestion API)
host            TRUBRICS_HOST         https://app.trubrics.com/api/ingestion
timeout         TRUBRICS_TIMEOUT      10 s per HTTP request
retry_timeout   TRUBRICS_RETRY_TIMEOUT  60 s of retrying one batch before holding it
all_spans       TRUBRICS_ALL_SPANS    false: spans that are neither LLM calls nor
                                      Trubrics/tool events (HTTP, DB…) are dropped;
                                      true sends them as events named after the span
==============  ====================  ==============================================

The :mod:`~trubrics_otel.encoder` turns spans into events (no I/O); the
:mod:`~trubrics_otel.transport` sends them. Events that meet a transient failure for longer
than ``retry_timeout`` are held in memory (oldest first, bounded) and go out ahead of the
next batch, so an outage delays events instead of losing them.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from trubrics_otel.encoder import Event, encode_spans
from trubrics_otel.transport import DEFAULT_HOST, EVENTS_PATH, LLM_EVENTS_PATH, Transport

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_TIMEOUT_S = 60.0
MAX_HELD_EVENTS = 100_000


class TrubricsSpanExporter(SpanExporter):
    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        *,
        timeout: float | None = None,
        retry_timeout: float | None = None,
        all_spans: bool | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics")
        api_key = str(api_key or os.environ.get("TRUBRICS_API_KEY") or "")
        if not api_key:
            self._logger.error("No Trubrics API key: pass api_key= or set TRUBRICS_API_KEY.")
        self.host = host or os.environ.get("TRUBRICS_HOST") or DEFAULT_HOST
        self._transport = Transport(
            self.host,
            api_key,
            timeout=_setting(timeout, "TRUBRICS_TIMEOUT", DEFAULT_TIMEOUT_S),
            logger=self._logger,
        )
        if all_spans is None:
            all_spans = os.environ.get("TRUBRICS_ALL_SPANS", "").strip().lower() in ("1", "true", "yes")
        self._all_spans = all_spans
        self._retry_timeout = _setting(retry_timeout, "TRUBRICS_RETRY_TIMEOUT", DEFAULT_RETRY_TIMEOUT_S)
        self._held: collections.deque[tuple[str, list[Event]]] = collections.deque()
        self._held_count = 0
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._counts = collections.Counter[str]()

    def __repr__(self) -> str:
        return f"TrubricsSpanExporter(host={self.host!r})"

    # --- SpanExporter ------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encoded = encode_spans(spans, all_spans=self._all_spans)
        for error in encoded.errors:
            self._logger.error("Could not encode a span; it is skipped: %s", error)
        self._counts["skipped"] += encoded.skipped
        self._counts["encode_errors"] += len(encoded.errors)
        return self.deliver([(EVENTS_PATH, encoded.events), (LLM_EVENTS_PATH, encoded.llm_events)])

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Try once more to deliver held events, for at most ``timeout_millis``."""
        with self.deadline(timeout_millis / 1000):
            return self.deliver([]) is SpanExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        self.force_flush(int(timeout_millis))
        if self._held_count:
            self._logger.error(
                "Closing with %d Trubrics events undelivered: the endpoint kept failing.",
                self._held_count,
            )
        self._transport.close()

    # --- Delivery ----------------------------------------------------------------------

    def deliver(self, batches: list[tuple[str, list[Event]]]) -> SpanExportResult:
        """Send held events first, then ``batches``; hold what meets a transient failure."""
        with self._lock:
            started = time.monotonic()
            todo = list(self._held) + [(p, e) for p, e in batches if e]
            self._held.clear()
            self._held_count = 0
            failing = False
            for path, events in todo:
                if failing:  # the endpoint is down: keep order, don't hammer it
                    self._hold(path, events)
                    continue
                delivery = self._transport.send(
                    path, events, deadline=lambda: self._until(started)
                )
                self._counts["sent"] += delivery.sent
                self._counts["rejected"] += delivery.rejected
                if delivery.pending:
                    failing = True
                    self._hold(path, delivery.pending)
            return SpanExportResult.FAILURE if failing else SpanExportResult.SUCCESS

    def deadline(self, seconds: float | None) -> _Deadline:
        """Context manager bounding every delivery attempt (flush, close) to ``seconds``."""
        return _Deadline(self, seconds)

    @property
    def pending(self) -> int:
        """Events accepted by this exporter but not yet delivered."""
        return self._held_count

    def stats(self) -> dict[str, int]:
        return {
            "sent": self._counts["sent"],
            "rejected": self._counts["rejected"],
            "pending": self._held_count,
            "retries": self._transport.retries,
            "dropped": self._counts["dropped"],
            "skipped_spans": self._counts["skipped"],
            "encode_errors": self._counts["encode_errors"],
        }

    def _until(self, started: float) -> float:
        until = started + self._retry_timeout
        return until if self._deadline is None else min(until, self._deadline)

    def _hold(self, path: str, events: list[Event]) -> None:
        self._held.append((path, events))
        self._held_count += len(events)
        while self._held_count > MAX_HELD_EVENTS:
            _, dropped = self._held.popleft()
            self._held_count -= len(dropped)
            self._counts["dropped"] += len(dropped)
            self._logger.error(
                "Dropped %d undelivered Trubrics events: more than %d held during an outage.",
                len(dropped), MAX_HELD_EVENTS,
            )


class _Deadline:
    """Nested deadlines only ever tighten: close(timeout=2) stays 2 s through shutdown."""

    def __init__(self, exporter: TrubricsSpanExporter, seconds: float | None) -> None:
        self._exporter = exporter
        self._seconds = seconds

    def __enter__(self) -> None:
        self._outer = self._exporter._deadline
        if self._seconds is not None:
            mine = time.monotonic() + self._seconds
            self._exporter._deadline = mine if self._outer is None else min(mine, self._outer)
            self._exporter._transport.interrupt()

    def __exit__(self, *exc_info: Any) -> None:
        self._exporter._deadline = self._outer


def _setting(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return float(value)
    try:
        return float(os.environ[env])
    except (KeyError, ValueError):
        return default
