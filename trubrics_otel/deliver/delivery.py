"""``SpoolingDelivery``: send now, else spool; replay the spool oldest first.

::

    delivery = SpoolingDelivery(transport, directory, encode=exporter.encode, ...)
    delivery.deliver([("publish_events", events), ("publish_llm_events", llm_events)])
    with delivery.deadline(5):          # flush / close: every attempt bounded
        delivery.deliver([])            # replay what is spooled
    delivery.shutdown()

Events that meet a transient failure for longer than :data:`FIRST_TRY_S`, or are still
undelivered when a flush/close deadline passes, go to the :mod:`~trubrics_otel.deliver.spool`
(a directory per endpoint and key) and are replayed oldest first as soon as the endpoint
answers again: by a background thread that only runs while the spool holds events, and by the
next process that uses the same endpoint after a crash. While the endpoint is down only that
thread probes it; new batches go straight to the spool. Without a directory the spool is in
memory (bounded, lost at exit).

Delivery is at least once: after a crash at the wrong moment an event can be sent twice; its
``$trace_id`` + ``$span_id`` pair lets a receiver drop the copy. A close while a request hangs
spools every batch that request's call still held, of every path. An event that cannot be
kept is counted in ``counts["dropped"]`` and under its cause (``dropped_spool_full``,
``dropped_disk_full``, ``dropped_spool_error``) and logged once a minute naming it; a full
disk first makes the crash journal give its spare pages back (``give_back``).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from trubrics_otel.deliver.closing import closing_report
from trubrics_otel.deliver.deadlines import Deadlines
from trubrics_otel.deliver.journal_recovery import describe_bound, open_spool
from trubrics_otel.deliver.memory_spool import MemorySpool
from trubrics_otel.deliver.refused import keep_refused
from trubrics_otel.deliver.spool import SPANS_PATH, Spool, SpoolRecord
from trubrics_otel.deliver.transport import MAX_BATCH, SendResult, Started, Transport
from trubrics_otel.logs import RateLimitedLog
from trubrics_otel.translate.tracked import spans_from_bytes

Event = dict[str, Any]
Batches = list[tuple[str, list[Event]]]
Encode = Callable[[Sequence[ReadableSpan]], Batches]
Done = Callable[[], object] | None

FIRST_TRY_S = 1.0
"""How long a fresh batch is retried before it goes to the spool: a blip costs no disk
write, and a longer outage keeps almost nothing in memory (what a ``kill -9`` would lose)."""
REPLAY_CHUNK_EVENTS = 1_000
"""Events read from the spool at a time: bounds the memory a replay needs."""
REPLAY_INTERVAL_S = 1.0
REPLAY_INTERVAL_MAX_S = 10.0
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class SpoolingDelivery:
    def __init__(
        self,
        transport: Transport,
        directory: Path | None,
        *,
        encode: Encode,
        max_spool_bytes: int,
        retry_timeout: float,
        refusal: str | None,
        logger: logging.Logger,
    ) -> None:
        self._transport = transport
        self.directory = directory
        """The disk spool's directory; None keeps undelivered events in memory."""
        self._encode = encode
        self._max_spool_bytes = max_spool_bytes
        self._retry_timeout = retry_timeout
        self._refusal = refusal
        self._logger = logger
        self._log = RateLimitedLog(logger)
        self.give_back: Callable[[], bool] | None = None
        """Frees disk space held elsewhere (the crash journal's pages); True if it did."""
        self.after_fork()

    def after_fork(self) -> None:
        """Fresh state; in a forked child the parent's spool and connections stay the parent's."""
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.after_fork()
        self._transport.after_fork()
        self._spool: Spool | MemorySpool | None = None
        self._spool_lock = threading.Lock()
        self.deadlines = Deadlines(on_enter=self._transport.interrupt)
        """The flush and close deadlines bounding every attempt; see :meth:`deadline`."""
        self._lock = threading.Lock()
        self.counts = collections.Counter[str]()
        self._count_lock = threading.Lock()
        self._down = False
        self.unreachable = False
        """Waiting is pointless: the last attempt met a refused connection on loopback, or
        the configuration forbids sending (no key, not a URL, insecure)."""
        self.last_failure: str | None = None
        """The URL and cause of the last failed attempt, for the messages that report it."""
        self.last_rejection: str | None = None
        """The URL and the server's answer the last time it refused events for good."""
        self._not_before = 0.0
        self._inflight: Batches | None = None
        self._inflight_lock = threading.Lock()
        self._started: Any = None  # (path, events, the written request, done): see settle()
        self._waiting: list[Batches] = []
        self._settle_lock = threading.Lock()
        self._closed = False
        self._replayer: threading.Thread | None = None
        self._replayer_lock = threading.Lock()
        self._wake_replayer = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def retries(self) -> int:
        return self._transport.retries

    @property
    def pending(self) -> int:
        """Events accepted but not yet delivered (spooled ones included)."""
        spool = self._spool
        return spool.pending if spool is not None else 0

    @property
    def damaged(self) -> int:
        """Spooled events found damaged on disk (a power cut, a bad disk): dropped."""
        return getattr(self._spool, "damaged", 0)

    def deadline(self, seconds: float | None) -> contextlib.AbstractContextManager[None]:
        """Context manager bounding every delivery attempt (flush, close) to ``seconds``."""
        return self.deadlines.bound(seconds)

    # --- sending -------------------------------------------------------------------------

    def deliver(self, batches: Batches, done: Done = None, *, overlap: bool = False) -> Any:
        """Replay the spool, then send ``batches``; spool what meets a lasting failure. ``done`` runs once
        they are sent, spooled or dropped; ``overlap``: the last answer may be read by :meth:`settle`."""
        result: Any = SpanExportResult.FAILURE
        with self._inflight_lock:  # while the last answer is read: a shutdown spools these too
            self._waiting.append(batches)
        try:
            settled = self.settle()
            with self._inflight_lock:
                taken = all(waiting is not batches for waiting in self._waiting)
                self._waiting = [waiting for waiting in self._waiting if waiting is not batches]
            if taken or not settled:  # spooled by a shutdown; or an answer hangs past our deadline
                self.store([] if taken else batches)
                return result
            result = self._deliver(batches, (done,) if overlap else None)
            return SpanExportResult.SUCCESS if result is _LEFT_IN_FLIGHT else result
        finally:
            done() if done is not None and result is not _LEFT_IN_FLIGHT else None  # else settle() does

    def settle(self) -> bool:
        """Read the answer :meth:`deliver` left in flight, then run its ``done``; False: it hangs."""
        if not self._settle_lock.acquire(timeout=self.deadlines.left()):
            return False
        try:
            return self._settle() or True
        finally:
            self._settle_lock.release()

    def _settle(self) -> None:
        if self._started is None:
            return
        (path, events, started, done), self._started = self._started, None
        try:
            pending = self._send(path, events, FIRST_TRY_S, started)
            with self._inflight_lock:
                taken, self._inflight = self._inflight is None, None
            if pending and not taken:
                self.store([(path, pending)])
        finally:
            done() if done is not None else None

    def _deliver(self, batches: Batches, overlap: tuple[Done] | None) -> Any:
        spool = self._spool
        # an outage (only the replay thread probes, new events queue on disk), or a send hangs
        if (batches and self._down and spool is not None and spool.pending
                or not self._lock.acquire(timeout=self.deadlines.left())):
            self.store(batches)
            return SpanExportResult.FAILURE
        try:
            spool = self._open_spool()
            if self._refusal:  # logged once, when the exporter was made
                self.unreachable = True
                self.last_failure = f"not sending to {self._transport.base}: {self._refusal}"
                self.store(batches)
                return SpanExportResult.FAILURE
            if self.deadlines.expired() or not self._replay(spool):  # past a deadline, or still down
                self.store(batches)
                return SpanExportResult.FAILURE
            return self._send_fresh(batches, overlap)
        finally:
            self._lock.release()

    def _send_fresh(self, batches: Batches, overlap: tuple[Done] | None = None) -> Any:
        """Send ``batches`` in order; what is left when one fails goes to the spool. Until
        then they are :attr:`_inflight`: a shutdown while a request hangs spools all of them
        (every path, not just the one on the wire) and this thread then leaves them be. With
        ``overlap`` (its ``done``) the last request is only written, for :meth:`settle`."""
        if not batches:
            return SpanExportResult.SUCCESS
        with self._inflight_lock:
            self._inflight = batches
        last = max((i for i, (_, events) in enumerate(batches) if events), default=-1)
        for i, (path, events) in enumerate(batches):
            if overlap and i == last and (started := self._transport.start(path, events)) is not None:
                with self._inflight_lock:
                    self._inflight = [(path, events)]
                self._started = (path, events, started, overlap[0])
                return _LEFT_IN_FLIGHT
            pending = self._send(path, events, FIRST_TRY_S)
            with self._inflight_lock:
                if self._inflight is None:  # taken (and spooled) by shutdown meanwhile
                    return SpanExportResult.FAILURE
                rest = [(path, pending)] + batches[i + 1 :] if pending else batches[i + 1 :]
                self._inflight = None if pending else rest
            if pending:
                self.store(rest)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def send_now(self, batches: Batches, timeout: float) -> SendResult:
        """Deliver ``batches`` within ``timeout`` s, ahead of any queue (``track_sync``).
        What meets a transient failure is spooled, like an exported batch."""
        deadline = time.monotonic() + timeout
        results = []
        for path, events in batches:
            if not events:
                continue
            if self._refusal:
                self.store([(path, events)])
                results.append(SendResult(ok=False, detail=self._refusal, pending=events))
                continue
            result = self._transport.send(path, events, deadline=deadline)
            self._add("sent", result.sent)
            self._add("rejected", result.rejected)
            if result.pending:
                self.store([(path, result.pending)])
            results.append(result)
        failed = [r for r in results if not r.ok]
        return failed[0] if failed else results[-1] if results else SendResult(ok=True)

    def shutdown(self) -> None:
        """The spool is closed: what is left stays on disk for the next process."""
        if self._closed:
            return
        self._closed = True
        self._wake_replayer.set()
        with self._inflight_lock:
            inflight = (self._inflight or []) + [batch for waiting in self._waiting for batch in waiting]
            self._inflight, self._waiting = None, []
        if inflight:  # a request still hangs: keep its events (maybe twice) and the rest
            self.store(inflight)
        spool = self._spool
        if spool is not None and spool.pending:
            self._logger.error(closing_report(spool.pending, spool.directory, self.last_failure, self._refusal))
        if spool is not None:
            spool.close()
        self._transport.close()

    def _send(self, path: str, events: list[Event], budget: float, started: Started | None = None) -> list[Event]:
        """Send with a retry budget of its own (s); what is still pending. ``started``: written."""
        if not events:
            return []
        began = time.monotonic()
        result = self._transport.send(
            path, events, deadline=lambda: self.deadlines.until(began, budget),
            cutoff=self.deadlines.or_never, started=started,
        )
        self._add("sent", result.sent)
        self._add("rejected", result.rejected)
        if result.rejected:
            self.last_rejection = f"{self._transport.base}/{path}: HTTP {result.status}: {result.detail}"
        self._down = bool(result.pending)
        self.unreachable = result.unreachable
        if result.pending:
            cause = f"HTTP {result.status}: {result.detail}" if result.status else result.detail
            self.last_failure = f"{self._transport.base}/{path} failed ({cause})"
        if result.pending and result.retry_after:  # never longer than a retry budget
            self._not_before = time.monotonic() + min(result.retry_after, self._retry_timeout)
        return result.pending

    # --- the spool -----------------------------------------------------------------------

    def store(self, batches: Batches) -> None:
        """Into the spool, one request's worth per record (so a replay never splits one)."""
        spool = self._open_spool()
        stored = False
        for path, events in batches:
            for start in range(0, len(events), MAX_BATCH):
                chunk = events[start : start + MAX_BATCH]
                cause = self._append(spool, path, chunk)
                if cause is None:
                    self._add("spooled", len(chunk))
                    stored = True
                    continue
                self._add("dropped", len(chunk))
                self._add(f"dropped_{cause[0]}", len(chunk))
                self._log.error(
                    f"dropped-{cause[0]}", "Dropped %d Trubrics events: %s.", len(chunk), cause[1]
                )
        if stored:
            self._ensure_replayer()

    def _append(self, spool: Spool | MemorySpool, path: str, chunk: list[Event]) -> tuple[str, str] | None:
        """Into the spool; None when stored, else the cause: a key for the counts, a sentence.
        A full disk first asks the journal to give back the pages it holds (released ones,
        and those prepared ahead): the spool needs the space more."""
        for attempt in (1, 2):
            try:
                if spool.append(path, chunk):
                    return None
                return "spool_full", f"the spool is full ({describe_bound(spool)})"
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    return "spool_error", f"the spool write failed ({exc})"
                if attempt == 1 and self.give_back is not None and self.give_back():
                    continue
                where = spool.directory if isinstance(spool, Spool) else "the spool"
                return "disk_full", f"the disk is full ({where}: {os.strerror(exc.errno)})"
        return None  # unreachable: the loop returns

    def _replay(self, spool: Spool | MemorySpool) -> bool:
        """Send spooled events oldest first; False when the endpoint fails again."""
        while spool.pending and not self.deadlines.expired():
            records = spool.read(REPLAY_CHUNK_EVENTS)
            if not records:
                return True
            for group in _requests(records):  # small records (overflow) share a request
                wait = self._not_before - time.monotonic()  # honour Retry-After across calls
                if wait > 0 and not self._transport.wait(wait, self.deadlines.or_never):
                    return False
                if group[0].path == SPANS_PATH:
                    if not self._replay_spans(spool, group):
                        return False
                    continue
                events = [e for record in group for e in record.events]
                if self._send(group[0].path, events, self._retry_timeout):
                    return False
                for record in group:
                    spool.ack(record)
                self._add("replayed", len(events))
        return not self.deadlines.expired() or not spool.pending

    def _replay_spans(self, spool: Spool | MemorySpool, group: list[SpoolRecord]) -> bool:
        """Spilled span records: encoded now and sent; what fails goes back to the spool as
        events, so the records are done either way. False when a send failed."""
        refused: list[bytes] = []  # a newer release's format: kept aside, reported, not sent
        spans = spans_from_bytes((blob for record in group for blob in record.events), self._logger, refused)
        keep_refused(self.directory, refused, self._logger)
        batches = self._encode(spans)
        ok = True
        for i, (path, events) in enumerate(batches):
            pending = self._send(path, events, self._retry_timeout)
            self._add("replayed", len(events) - len(pending))
            if pending:
                self.store([(path, pending)] + batches[i + 1 :])
                ok = False
                break
        for record in group:
            spool.ack(record)
        return ok

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

    def _make_spool(self) -> Spool | MemorySpool:
        return open_spool(self.directory, self._max_spool_bytes, self._logger)

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

    # --- time ----------------------------------------------------------------------------

    def _add(self, name: str, n: int) -> None:
        with self._count_lock:  # called from app threads too (queue overflow, track_sync)
            self.counts[name] += n


_LEFT_IN_FLIGHT = object()  # what _send_fresh answers when the last request awaits its answer


def _requests(records: list[SpoolRecord]) -> list[list[SpoolRecord]]:
    """Consecutive records of one path, grouped to at most one request (MAX_BATCH events)."""
    groups: list[list[SpoolRecord]] = []
    size = 0
    for record in records:
        if groups and groups[-1][0].path == record.path and size + len(record.events) <= MAX_BATCH:
            groups[-1].append(record)
            size += len(record.events)
        else:
            groups.append([record])
            size = len(record.events)
    return groups

