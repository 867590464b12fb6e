"""``SpoolingSpanProcessor``: the ``BatchSpanProcessor`` contract, with nothing dropped.

::

    exporter = TrubricsSpanExporter(api_key="...")
    provider.add_span_processor(SpoolingSpanProcessor(exporter, max_queue_size=20_000))

The SDK's ``BatchSpanProcessor`` drops spans when its queue is full and abandons what is
still queued when ``shutdown`` times out. This one keeps the same shape (a queue, one
worker thread, batches of ``max_export_batch_size`` every ``schedule_delay`` seconds or
as soon as a batch is full) but:

* a span that finds the queue full goes straight into the exporter's disk spool (no
  network) instead of being dropped, so memory stays bounded by ``max_queue_size`` spans
  while nothing is lost;
* ``shutdown(timeout_millis)`` returns within its timeout, and spools whatever the worker
  could not deliver by then;
* ``force_flush(timeout_millis)`` (the app's ``TracerProvider.force_flush``) has the worker
  export, the caller waiting, and returns False once its timeout passes (the SDK's exports
  on the caller's thread, however long that takes);
* after ``os.fork()`` the child starts with an empty queue, its own worker and (on its
  first event) its own journal: the parent's spans are the parent's to send, never twice;
* with a ``journal`` (see :mod:`~trubrics_otel.deliver.journal`), ``Trubrics.track`` queues its
  events there rather than in memory: a file mapping that outlives a ``kill -9``. The
  worker exports them like queued spans and releases them once delivered or spooled.

It is written against the public ``SpanProcessor`` interface only, so it does not depend
on the SDK's private batching internals.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from trubrics_otel.deliver.forking import reset_in_child
from trubrics_otel.translate.tracked import (
    TrackedRecord,
    TrackedSpan,
    to_bytes,
    with_json_properties,
)

if TYPE_CHECKING:
    from trubrics_otel.deliver.exporter import TrubricsSpanExporter
    from trubrics_otel.deliver.journal import Journal

_logger = logging.getLogger("trubrics")
T = TypeVar("T")

SPILL_ABOVE = 0.75
"""Journal fill (share of the ring) past which the worker moves its oldest records to the
spool between batches: the export is far behind (an outage, a burst beyond the ring)."""
SPILL_RECORDS = 1_000
"""Records moved per spill: a few ``write()`` calls of 100 events each."""


class SpoolingSpanProcessor(SpanProcessor):
    def __init__(
        self,
        exporter: TrubricsSpanExporter,
        *,
        max_queue_size: int = 20_000,
        schedule_delay: float = 10.0,
        max_export_batch_size: int = 512,
        journal: Journal | None = None,
    ) -> None:
        self._exporter = exporter
        self._max_queue_size = max(1, max_queue_size)
        self._delay = schedule_delay
        self._batch_size = max(1, max_export_batch_size)
        self._shutdown = False
        self._reopen_journal = False
        self._init_state()
        self.journal = journal
        reset_in_child(self._after_fork)

    @property
    def journal(self) -> Journal | None:
        """A second queue: ``Trubrics.track`` appends its records to this crash journal
        (:mod:`~trubrics_otel.deliver.journal`) instead of the in-memory queue; the worker reads,
        exports and then releases them."""
        return self._journal

    @journal.setter
    def journal(self, journal: Journal | None) -> None:
        self._journal = journal
        if journal is not None:  # a full batch in it wakes the worker, whoever appended it
            journal.notify_unread(self._batch_size, self._wake_worker)

    def _wake_worker(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def _after_fork(self) -> None:
        """In a forked child: the parent's queue and journal ring stay the parent's; the
        child opens a journal of its own on its first event."""
        if self.journal is not None:  # the journal dropped the parent's ring by itself
            self.journal = None
            self._reopen_journal = True
        self._init_state()

    def _init_state(self) -> None:
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._flushes: collections.deque[threading.Event] = collections.deque()
        """``force_flush`` calls waiting for the worker to export what was queued before them."""
        self.overflowed = 0
        self._accepted = 0
        self._count_lock = threading.Lock()

    @property
    def queued(self) -> int:
        return len(self._queue) + self._journaled()

    @property
    def accepted(self) -> int:
        """Spans and records taken since the start (or the fork): journaled, queued in
        memory, or spooled at once because both were full."""
        journal = self.journal
        return self._accepted + (0 if journal is None else journal.appended)

    def _accept(self) -> None:
        with self._count_lock:  # app threads: an unlocked += can lose a count
            self._accepted += 1

    # --- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context and span.context.trace_flags.sampled:
            self.enqueue(span)

    def enqueue(self, span: ReadableSpan) -> None:
        """Queue a span known to be sampled, without reading it (``Trubrics.track``'s spans
        are computed on first read, which should be on the worker thread)."""
        if self._shutdown:
            return
        self._accept()
        if self._worker is None:
            self._start_worker()
        queue = self._queue
        if len(queue) >= self._max_queue_size:  # full: to disk, never dropped
            self.overflowed += 1
            self._exporter.spool_spans([span])
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def enqueue_record(self, record: TrackedRecord) -> None:
        """Queue one ``Trubrics.track`` call: into the journal when there is one (a memcpy
        into a file mapping that outlives ``kill -9``; bounded by the ring's bytes, not by
        ``max_queue_size``, which bounds the spans held in memory), else as a span."""
        if self._reopen_journal:
            self._reopen_journal = False
            self.journal = self._exporter.open_journal()
        journal = self.journal
        if journal is None or self._shutdown:
            # memory keeps a snapshot of the properties (the journal's bytes are one already)
            self.enqueue(TrackedSpan(with_json_properties(record)))
            return
        payload = to_bytes(record)
        if journal.append(payload):
            if self._worker is None:
                self._start_worker()
            return
        self.overflowed += 1  # the ring is full (or the record too big for it): to the spool
        self._accept()
        self._exporter.spool_records([payload])

    def journal_appender(self) -> Callable[[bytes], int] | None:
        """``enqueue_record`` for a record's bytes, cut to what the app's thread must do: the
        journal's own ``append`` (a full batch wakes the worker, see the ``journal`` setter).
        It answers 0 when it did nothing (a full ring, shut down, forked): then use
        ``enqueue_record``. Starts the worker, which reads what it appends."""
        journal = self.journal
        if journal is None or self._shutdown:
            return None
        if self._worker is None:
            self._start_worker()
        return journal.append

    def flush(self, timeout: float | None) -> int:
        """Export everything queued, then retry what is spooled until ``timeout`` (s; None:
        30 s for the queue, one attempt for the spool); return the events not delivered.
        On a thread of its own (see :func:`_apart`), unless there is nothing to wait for: no
        span queued, no record unread, nothing spooled, no export running (it holds the lock)."""
        if not (self._unexported() or self._exporter.pending):
            return 0  # an idle flush (one per request, say) starts no thread (bench_flush.py)
        left = _apart(lambda: self._flush(timeout))
        return self._exporter.pending + self.queued if left is None else left

    def _flush(self, timeout: float | None) -> int:
        exporter = self._exporter
        end = None if timeout is None else time.monotonic() + timeout
        with exporter.deadline(timeout):
            self.force_flush(int((30.0 if timeout is None else timeout) * 1000))
            while exporter.pending:  # spooled events: retry until the timeout
                exporter.deliver([])
                if exporter.unreachable:  # nothing listens: waiting is pointless
                    break
                if end is None or time.monotonic() >= end or not exporter.pending:
                    break
                time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return exporter.pending + self.queued

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued before the call, on the processor's own thread, waiting up
        to ``timeout_millis``: True once exported, False when the timeout passed first (the
        export goes on). Never raises: what interrupts the caller (the app's stack nearly
        spent, Ctrl-C) stops only its wait, never a batch halfway."""
        try:
            return self._handed_to_worker(timeout_millis / 1000)
        except Exception:  # never into the app: a RecursionError recurs in the logging
            try:
                _logger.exception("Trubrics force_flush failed")
            except RecursionError:
                pass
            return False

    def _handed_to_worker(self, timeout: float) -> bool:
        if self._shutdown or threading.current_thread() is self._worker:  # it would wait for itself
            return False
        if not self._unexported():
            return True  # nothing to wait for: no thread started, no wake-up
        if self._worker is None:
            self._start_worker()
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        return done.wait(max(0.0, timeout))

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Deliver or spool everything, then stop; on a thread of its own (see :func:`_apart`)."""
        if self._shutdown:
            return
        if threading.current_thread() is self._worker:  # the worker itself: it would wait for itself
            self._shutdown_now(timeout_millis)
        else:
            _apart(lambda: self._shutdown_now(timeout_millis))

    def _shutdown_now(self, timeout_millis: float) -> None:
        if self._shutdown:
            return
        end = time.monotonic() + timeout_millis / 1000
        self._shutdown = True
        if self.journal is not None:  # nothing lands in it after what is left is taken below
            self.journal.stop_appending()
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, end - time.monotonic()))
        # the worker is stuck in a request: what it could not reach goes to the spool
        leftovers = _taken(self._queue)
        if leftovers:
            self._exporter.spool_spans(leftovers)
        journal = self.journal
        if journal is not None:
            records, _ = journal.read(journal.appended)
            if records:
                self._exporter.spool_records(records)
        self._exporter.shutdown(timeout_millis=max(0.0, end - time.monotonic()) * 1000)
        if journal is not None:  # everything is delivered or in the spool now
            journal.release_all()
            journal.close()

    # --- internals ---------------------------------------------------------------------

    def _start_worker(self) -> None:
        with self._start_lock:
            if self._worker is None:
                worker = threading.Thread(target=self._run, name="TrubricsBatchExport", daemon=True)
                worker.start()
                self._worker = worker

    def _run(self) -> None:
        while not self._shutdown:
            timed_out = not self._wake.wait(self._delay)
            self._wake.clear()
            if self._shutdown:
                break
            flushes = _taken(self._flushes)  # after the clear: one asked later wakes us again
            with self._export_lock:
                if timed_out or flushes:
                    self._export_all()
                else:
                    while self._full_batch() and not self._shutdown and self._export_batch():
                        pass
                    self._exporter.settle()  # the last answer: nothing stays in flight while idle
            for done in flushes:
                done.set()
        with self._export_lock:
            self._export_all()
        for done in _taken(self._flushes):
            done.set()

    def _full_batch(self) -> bool:
        return len(self._queue) >= self._batch_size or self._journaled() >= self._batch_size

    def _unexported(self) -> bool:
        """Whether a span is queued, a record unread or an export running (it holds the lock):
        what a flush waits for (else it returns at once, starting no thread)."""
        return bool(self._queue or self._journaled() or self._export_lock.locked())

    def _journaled(self) -> int:
        journal = self.journal
        return 0 if journal is None else journal.appended - journal.consumed

    def _export_all(self) -> None:
        while (self._queue or self._journaled()) and self._export_batch():
            pass
        self._exporter.settle()

    def _export_batch(self) -> bool:
        """One batch: from the in-memory queue, else from the journal (released once
        delivered or spooled: a ``kill -9`` before that leaves it for the next start).
        False when there was nothing to take (a journal closed meanwhile, say)."""
        batch = _taken(self._queue, self._batch_size)
        records: list[bytes] = []
        ticket = 0
        journal = self.journal
        if not batch and journal is not None:
            records, ticket = journal.read(self._batch_size)
            if not records:
                return False
        # records are released once delivered or spooled: the request's answer may be read
        # while the next batch is encoded (export_records' done), so the release waits for it
        done = (lambda: journal.release(ticket)) if ticket else None  # type: ignore[union-attr]
        try:
            if batch:
                self._exporter.export(batch)
            else:  # the tracker's records become events without becoming spans
                self._exporter.export_records(records, done)
                done = None
        except Exception:  # the exporter should not raise; if it does, keep going
            _logger.exception("Trubrics export failed")
        if done is not None:
            done()
        if journal is not None:
            self._keep_room(journal)
        return bool(batch or ticket)

    def _keep_room(self, journal: Journal) -> None:
        """Between batches, so that ``track()`` keeps finding room and never faults: ready the
        journal's next pages, and when the export falls far behind, spill the oldest records
        to the spool in batches (released only once the spool holds them: ``kill -9`` safe)."""
        journal.prepare_ahead()
        if journal.unreleased > journal.capacity * SPILL_ABOVE:
            self._exporter.settle()  # releasing the spilled records releases all before them
            records, ticket = journal.read(SPILL_RECORDS)
            if records:
                self._exporter.spool_records(records)
                journal.release(ticket)


def _taken(queue: collections.deque[T], limit: int | None = None) -> list[T]:
    """Up to ``limit`` items from the front of ``queue`` (another thread may take too: each once)."""
    taken: list[T] = []
    pop = queue.popleft
    try:
        while limit is None or len(taken) < limit:
            taken.append(pop())
    except IndexError:  # empty
        pass
    return taken


def _apart(work: Callable[[], T]) -> T | None:
    """``work()`` on a thread of its own, the caller waiting; None when it raised (logged).
    What interrupts the caller (a RecursionError, the app's stack nearly spent; Ctrl-C) then
    never stops it halfway: a batch read from the journal, neither delivered nor spooled, would
    be released with the next one, lost. A caller interrupted stops waiting; the work goes on."""
    answer: list[T] = []

    def run() -> None:
        try:
            answer.append(work())
        except Exception:  # the exporter should not raise; if it does, the caller counts
            _logger.exception("Trubrics flush or shutdown failed")

    try:
        runner = threading.Thread(target=run, name="TrubricsFlush", daemon=True)
        runner.start()
    except RuntimeError:  # no new thread at interpreter shutdown: this one does it
        run()
    else:
        runner.join()
    return answer[0] if answer else None
