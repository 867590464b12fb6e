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
capture_content  OTEL_INSTRUMENTATION_GENAI_ True (see :mod:`~trubrics_otel.redaction`)
                 CAPTURE_MESSAGE_CONTENT
mask             --                          None: ``mask(value) -> value``
sample_rate      OTEL_TRACES_SAMPLER(_ARG)   keep all; else that share of traces, whole,
                                             decided by trace id (our own events exempt)
all_spans        TRUBRICS_ALL_SPANS          false: spans that are neither LLM calls nor
                                             Trubrics/tool events (HTTP, DB…) are dropped;
                                             true sends them as events named after the span
===============  ==========================  =============================================

The :mod:`~trubrics_otel.encoder` turns spans into events (no I/O); the
:mod:`~trubrics_otel.redaction` policy masks and bounds them; the
:mod:`~trubrics_otel.transport` sends them. Events that meet a transient failure for longer
than :data:`FIRST_TRY_S`, or are still undelivered when a flush/close deadline passes, go to
the :mod:`~trubrics_otel.spool` (a directory per endpoint and key, under ``spool``), and
are replayed oldest first as soon as the endpoint answers again, by a background thread
that only runs while the spool holds events, and by the next process that uses the same
endpoint after a crash. While the endpoint is down only that thread probes it; new batches
go straight to the spool. ``spool=False`` keeps them in memory instead (bounded, lost at exit).

Delivery is at least once: after a crash at the wrong moment an event can be sent twice;
its ``$trace_id`` + ``$span_id`` pair lets a receiver drop the copy.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from trubrics_otel.encoder import Event, encode_spans
from trubrics_otel.journal import Journal, recover
from trubrics_otel.redaction import Mask, Policy, RateLimitedLog
from trubrics_otel.sampling import sampler_for
from trubrics_otel.semconv import SCOPE_NAME
from trubrics_otel.spool import (
    DEFAULT_MAX_BYTES,
    SPANS_PATH,
    MemorySpool,
    Record,
    Spool,
    default_directory,
)
from trubrics_otel.tracked import TrackedSpan, spans_from_bytes, to_bytes
from trubrics_otel.transport import (
    DEFAULT_HOST,
    EVENTS_PATH,
    LLM_EVENTS_PATH,
    MAX_BATCH,
    Delivery,
    Transport,
    insecure_reason,
)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_TIMEOUT_S = 60.0
DEFAULT_MAX_QUEUE_SIZE = 20_000
MAX_HELD_EVENTS = 100_000
"""With ``spool=False``: events kept in memory during an outage before new ones are dropped."""
FIRST_TRY_S = 1.0
"""How long a fresh batch is retried before it goes to the spool: a blip costs no disk
write, and a longer outage keeps almost nothing in memory (what a ``kill -9`` would lose)."""
REPLAY_CHUNK_EVENTS = 1_000
"""Events read from the spool at a time: bounds the memory a replay needs."""
REPLAY_INTERVAL_S = 1.0
REPLAY_INTERVAL_MAX_S = 10.0

Batches = list[tuple[str, list[Event]]]
_OFF = frozenset({"0", "false", "no", "off", "none", ""})


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
        logger: logging.Logger | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics")
        self._log = RateLimitedLog(self._logger)
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
        self._sampler = sampler_for(sample_rate, from_env=sample_rate is None)
        self._retry_timeout = _setting(retry_timeout, "TRUBRICS_RETRY_TIMEOUT", DEFAULT_RETRY_TIMEOUT_S)
        if allow_insecure is None:
            allow_insecure = os.environ.get("TRUBRICS_ALLOW_INSECURE", "").lower() not in _OFF
        self._refusal = None if allow_insecure else insecure_reason(self.host)
        if self._refusal:
            self._logger.error(
                "Not sending to %s: %s. Use https://, or allow_insecure=True "
                "(TRUBRICS_ALLOW_INSECURE=1) if the network is trusted. Events are spooled.",
                self.host, self._refusal,
            )
        self._policy = Policy(mask, capture_content, self._logger)
        self._spool_setting = _spool_setting(spool)
        self._spool_key = hashlib.sha256(f"{self.host}\0{api_key}".encode()).hexdigest()[:16]
        self._max_spool_bytes = int(
            _setting(max_spool_bytes, "TRUBRICS_MAX_SPOOL_BYTES", DEFAULT_MAX_BYTES)
        )
        self._init_state()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (m := ref()) and m())

    def _init_state(self) -> None:
        self._spool: Spool | MemorySpool | None = None
        self._spool_lock = threading.Lock()
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._counts = collections.Counter[str]()
        self._count_lock = threading.Lock()
        self._down = False
        self._not_before = 0.0
        self._inflight: tuple[str, list[Event]] | None = None
        self._closed = False
        self._replayer: threading.Thread | None = None
        self._replayer_lock = threading.Lock()
        self._wake_replayer = threading.Event()

    def __repr__(self) -> str:
        return f"TrubricsSpanExporter(host={self.host!r})"

    # --- SpanExporter ------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.deliver(self.encode(spans))

    def send_now(self, spans: Sequence[ReadableSpan], timeout: float) -> Delivery:
        """Deliver ``spans`` within ``timeout`` s, ahead of any queue (``track_sync``).

        What meets a transient failure is spooled, like an exported batch, so it is sent later.
        """
        deadline = time.monotonic() + timeout
        results = []
        for path, events in self.encode(spans):
            if not events:
                continue
            if self._refusal:
                self._store([(path, events)])
                results.append(Delivery(ok=False, detail=self._refusal, pending=events))
                continue
            result = self._transport.send(path, events, deadline=deadline)
            self._counts["sent"] += result.sent
            self._counts["rejected"] += result.rejected
            if result.pending:
                self._store([(path, result.pending)])
            results.append(result)
        failed = [r for r in results if not r.ok]
        return failed[0] if failed else results[-1] if results else Delivery(ok=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Try once more to deliver spooled events, for at most ``timeout_millis``."""
        with self.deadline(timeout_millis / 1000):
            return self.deliver([]) is SpanExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """A last delivery attempt, then the spool is closed: what is left stays on disk."""
        if self._closed:
            return
        self.force_flush(int(timeout_millis))
        self._closed = True
        self._wake_replayer.set()
        inflight = self._inflight
        if inflight is not None:  # a request still hangs: keep its events (maybe twice)
            self._store([inflight])
        spool = self._spool
        if spool is not None and spool.pending:
            where = (
                f"spooled in {spool.directory} for the next process using this endpoint"
                if spool.directory is not None else "lost (the spool is off)"
            )
            self._logger.error(
                "Closing with %d Trubrics events undelivered: the endpoint kept failing; %s.",
                spool.pending, where,
            )
        if spool is not None:
            spool.close()
        self._transport.close()

    # --- Delivery ----------------------------------------------------------------------

    def encode(self, spans: Sequence[ReadableSpan]) -> Batches:
        """Spans → masked, bounded events per path (what may leave the process)."""
        if self._sampler is not None:
            kept = [s for s in spans if _exempt(s) or self._sampler.keep(s.context.trace_id)]
            self._counts["sampled_out"] += len(spans) - len(kept)
            spans = kept
        encoded = encode_spans(spans, all_spans=self._all_spans)
        for error in encoded.errors:
            self._logger.error("Could not encode a span; it is skipped: %s", error)
        self._counts["skipped"] += encoded.skipped
        self._counts["encode_errors"] += len(encoded.errors)
        events, llm_events = self._policy.apply_all(encoded.events, encoded.llm_events)
        return [(EVENTS_PATH, events), (LLM_EVENTS_PATH, llm_events)]

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
            self._store(self.encode(spans))

    def spool_records(self, records: list[bytes]) -> None:
        """Span records (``tracked.to_bytes``) into the spool as they are: encoded at replay.
        Only for content no mask or content switch has to change (the journal's)."""
        self._store([(SPANS_PATH, records)])

    def deliver(self, batches: Batches) -> SpanExportResult:
        """Replay the spool, then send ``batches``; spool what meets a lasting failure."""
        spool = self._spool
        if batches and self._down and spool is not None and spool.pending:
            # an outage: only the replay thread probes the endpoint; new events queue on disk
            self._store(batches)
            return SpanExportResult.FAILURE
        if not self._lock.acquire(timeout=self._lock_wait()):  # a send hangs past our deadline
            self._store(batches)
            return SpanExportResult.FAILURE
        try:
            spool = self._open_spool()
            if self._refusal:
                self._log.error("insecure", "Not sending to %s: %s", self.host, self._refusal)
                self._store(batches)
                return SpanExportResult.FAILURE
            if self._expired():  # past a flush/close deadline: no new attempt
                self._store(batches)
                return SpanExportResult.FAILURE
            if not self._replay(spool):
                self._store(batches)
                return SpanExportResult.FAILURE
            for i, (path, events) in enumerate(batches):
                pending = self._send(path, events, FIRST_TRY_S)
                if pending:
                    self._store([(path, pending)] + batches[i + 1 :])
                    return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS
        finally:
            self._lock.release()

    def deadline(self, seconds: float | None) -> _Deadline:
        """Context manager bounding every delivery attempt (flush, close) to ``seconds``."""
        return _Deadline(self, seconds)

    @property
    def pending(self) -> int:
        """Events accepted by this exporter but not yet delivered (spooled ones included)."""
        spool = self._spool
        return spool.pending if spool is not None else 0

    def stats(self) -> dict[str, int]:
        return {
            "sent": self._counts["sent"],
            "rejected": self._counts["rejected"],
            "pending": self.pending,
            "retries": self._transport.retries,
            "spooled": self._counts["spooled"],
            "replayed": self._counts["replayed"],
            "dropped": self._counts["dropped"],
            "skipped_spans": self._counts["skipped"],
            "encode_errors": self._counts["encode_errors"],
            "sampled_out": self._counts["sampled_out"],
        }

    # --- internals ---------------------------------------------------------------------

    def _send(self, path: str, events: list[Event], budget: float) -> list[Event]:
        """Send with a retry budget of its own (s); return what is still pending."""
        if not events:
            return []
        started = time.monotonic()
        self._inflight = (path, events)
        try:
            delivery = self._transport.send(
                path, events, deadline=lambda: self._until(started, budget),
                cutoff=self._deadline_or_never,
            )
        finally:
            self._inflight = None
        self._counts["sent"] += delivery.sent
        self._counts["rejected"] += delivery.rejected
        self._down = bool(delivery.pending)
        if delivery.pending and delivery.retry_after:
            self._not_before = time.monotonic() + delivery.retry_after
        return delivery.pending

    def _replay(self, spool: Spool | MemorySpool) -> bool:
        """Send spooled events oldest first; False when the endpoint fails again."""
        while spool.pending and not self._expired():
            records = spool.read(REPLAY_CHUNK_EVENTS)
            if not records:
                return True
            for group in _requests(records):  # small records (overflow) share a request
                events = [e for record in group for e in record.events]
                wait = self._not_before - time.monotonic()  # honour Retry-After across calls
                if wait > 0 and not self._transport.wait(wait, self._deadline_or_never):
                    return False
                if group[0].path == SPANS_PATH:
                    if not self._replay_spans(spool, group):
                        return False
                    continue
                if self._send(group[0].path, events, self._retry_timeout):
                    return False
                for record in group:
                    spool.ack(record)
                self._counts["replayed"] += len(events)
        return not self._expired() or not spool.pending

    def _replay_spans(self, spool: Spool | MemorySpool, group: list[Record]) -> bool:
        """Spilled span records: encoded now and sent; what fails goes back to the spool as
        events, so the records are done either way. False when a send failed."""
        spans = spans_from_bytes((blob for record in group for blob in record.events), self._logger)
        batches = self.encode(spans)
        ok = True
        for i, (path, events) in enumerate(batches):
            pending = self._send(path, events, self._retry_timeout)
            self._counts["replayed"] += len(events) - len(pending)
            if pending:
                self._store([(path, pending)] + batches[i + 1 :])
                ok = False
                break
        for record in group:
            spool.ack(record)
        return ok

    def _store(self, batches: Batches) -> None:
        """Into the spool, one request's worth per record (so a replay never splits one)."""
        spool = self._open_spool()
        stored = False
        for path, events in batches:
            for start in range(0, len(events), MAX_BATCH):
                chunk = events[start : start + MAX_BATCH]
                try:
                    ok = spool.append(path, chunk)
                except OSError as exc:
                    self._log.error("spool-io", "Trubrics spool write failed: %s", exc)
                    ok = False
                with self._count_lock:  # called from app threads too (queue overflow)
                    self._counts["spooled" if ok else "dropped"] += len(chunk)
                if ok:
                    stored = True
                else:
                    self._log.error(
                        "dropped",
                        "Dropped %d Trubrics events: the spool is full (%s).",
                        len(chunk), _describe_bound(spool),
                    )
        if stored:
            self._ensure_replayer()

    def _open_spool(self) -> Spool | MemorySpool:
        spool = self._spool
        if spool is not None:
            return spool
        with self._spool_lock:
            if self._spool is None:
                self._spool = self._make_spool()
                if self._spool.pending:
                    self._ensure_replayer()
            return self._spool

    def open_journal(self) -> Journal | None:
        """A crash journal beside the spool for ``Trubrics.track``'s spans; None when there
        is no disk spool, or when a mask or the content switch must apply before anything
        touches the disk (then a ``kill -9`` loses what is queued in memory)."""
        directory = self._spool_directory()
        if directory is None or not self._policy.masks_nothing:
            return None
        try:
            return Journal(directory, logger=self._logger)
        except (OSError, ValueError) as exc:
            self._logger.warning("No Trubrics crash journal (%s); a kill -9 loses queued events.", exc)
            return None

    def _spool_directory(self) -> Path | None:
        if self._spool_setting is False or not hasattr(os, "pread"):  # Windows: no pread
            return None
        base = default_directory() if self._spool_setting is None else self._spool_setting
        return Path(base) / self._spool_key

    def _make_spool(self) -> Spool | MemorySpool:
        directory = self._spool_directory()
        if directory is None:
            if self._spool_setting is not False:
                self._logger.warning("No disk spool on this platform; undelivered events stay in memory.")
            return MemorySpool(MAX_HELD_EVENTS)
        try:
            spool = Spool(directory, max_bytes=self._max_spool_bytes, logger=self._logger)
        except OSError as exc:
            self._logger.error(
                "Trubrics spool unavailable (%s); undelivered events are kept in memory only.", exc
            )
            return MemorySpool(MAX_HELD_EVENTS)
        for leftover in recover(directory, self._logger):  # what killed processes had queued
            if spool.append(SPANS_PATH, leftover.payloads):
                self._logger.info(
                    "Trubrics: %d events queued by a process that died will be sent.",
                    len(leftover.payloads),
                )
                leftover.discard()
            else:
                leftover.close()
        return spool

    def _ensure_replayer(self) -> None:
        if self._closed or self._refusal:
            return
        with self._replayer_lock:
            if self._replayer is None:
                self._replayer = threading.Thread(
                    target=self._replay_loop, name="TrubricsSpoolReplay", daemon=True
                )
                self._replayer.start()

    def _replay_loop(self) -> None:
        """Probe the endpoint while the spool holds events; ends when it is empty."""
        interval = REPLAY_INTERVAL_S
        while True:
            self._wake_replayer.wait(interval)
            self._wake_replayer.clear()
            with self._replayer_lock:
                spool = self._spool
                if self._closed or spool is None or not spool.pending:
                    self._replayer = None
                    return
            try:
                self.deliver([])
            except Exception:
                self._logger.exception("Trubrics spool replay failed")
            interval = min(interval * 2, REPLAY_INTERVAL_MAX_S) if self._down else REPLAY_INTERVAL_S

    def _after_fork(self) -> None:
        """In a forked child: the parent's spool, queue and connections stay the parent's."""
        spool = self._spool
        if spool is not None:
            spool.after_fork()
        self._transport.after_fork()
        self._init_state()

    def _lock_wait(self) -> float:
        if self._deadline is None:
            return -1
        return max(0.0, self._deadline - time.monotonic())

    def _deadline_or_never(self) -> float:
        return float("inf") if self._deadline is None else self._deadline

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _until(self, started: float, budget: float | None = None) -> float:
        until = started + (self._retry_timeout if budget is None else budget)
        return until if self._deadline is None else min(until, self._deadline)


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


def max_queue_size(value: int | None = None) -> int:
    """Spans held in memory before the spool takes over: the argument, else
    ``OTEL_BSP_MAX_QUEUE_SIZE``, else 20,000 (~20 MB of spans; beyond it events go to disk)."""
    return int(_setting(value, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE))


def _exempt(span: ReadableSpan) -> bool:
    """Our own events and observations are product analytics: never sampled away here."""
    scope = span.instrumentation_scope
    return scope is not None and scope.name == SCOPE_NAME


def _spool_setting(value: str | os.PathLike[str] | bool | None) -> Path | bool | None:
    """A directory, ``False`` (off) or ``None`` (the default directory)."""
    if value is None:
        env = os.environ.get("TRUBRICS_SPOOL")
        if env is None:
            return None
        value = False if env.strip().lower() in _OFF else env
    if value is True:
        return None
    if value is False:
        return False
    return Path(value)


def _requests(records: list[Record]) -> list[list[Record]]:
    """Consecutive records of one path, grouped to at most one request (MAX_BATCH events)."""
    groups: list[list[Record]] = []
    size = 0
    for record in records:
        if groups and groups[-1][0].path == record.path and size + len(record.events) <= MAX_BATCH:
            groups[-1].append(record)
            size += len(record.events)
        else:
            groups.append([record])
            size = len(record.events)
    return groups


def _describe_bound(spool: Spool | MemorySpool) -> str:
    if isinstance(spool, Spool):
        return f"max_spool_bytes={spool.max_bytes} in {spool.directory}"
    return f"{spool.max_events} events in memory"


def _setting(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return float(value)
    try:
        return float(os.environ[env])
    except (KeyError, ValueError):
        return default
