"""The crash journal: a memory-mapped ring that keeps tracked events through ``kill -9``.

::

    journal = Journal("/var/cache/app/trubrics/journal")   # a directory, created 0o700
    ticket = journal.append(payload)    # a memcpy into the mapping; 0 = not journaled
    ...                                 # later, in the worker, once delivered or spooled:
    journal.release(ticket)             # everything up to ``ticket`` may be overwritten
    journal.close()                     # the file goes if everything was released

    for leftover in recover(directory):  # at the next start: what a dead process left
        store_elsewhere(leftover.payloads)
        leftover.discard()

Why: events waiting in memory for the background exporter die with the process. Each
one is also copied into a ``MAP_SHARED`` mapping of a file; the pages of such a mapping
belong to the kernel's page cache, not to the process, so they outlive a ``kill -9`` and
the next process reads them back. Copying is a memcpy, not a syscall, so ``track()``
stays cheap. Scope: this survives the death of the process, not power loss or an OS crash
(nothing is ``msync``-ed on the hot path; the kernel writes the pages back when it likes).

File ``<time_ns>-<pid>-<counter>.ring``, owner-only (0o600), ``size`` bytes, all
little-endian::

    0     file header (4096 bytes, a page of its own):
            magic "\\x89TRJRNL\\n" (8) | version (4) | header bytes (4) | capacity (8)
            | CRC32 of those 24 bytes (4)
          at 64 and at 128, the two "released" slots: released position (8) | its CRC32 (4)
    4096  the ring: ``capacity`` = size - 4096 bytes of records

    record = payload length (4) | virtual start (8) | magic "\\xff\\xfeJR" (4) | payload

Positions are *virtual* byte offsets that only grow: ``head`` counts every byte ever
reserved, ``tail`` (the released position) every byte given back; a record at virtual
``v`` lives at ``4096 + v % capacity``. A record never straddles the end of the ring: when
it does not fit, the rest of the lap is skipped (the padding counts as used until
released). Free space is ``capacity - (head - tail)``; unreleased bytes are never
overwritten, so ``append`` returns 0 when the ring is full. The ticket of a record is
its virtual end, and ``release(ticket)`` moves ``tail`` there.

The payload is copied before its header, whose magic is its last four bytes: a process's
stores reach the page cache in program order, so a record whose magic is in place and whose
virtual start matches where it lies was copied whole. A copy cut short by the kill leaves
no header (or an earlier lap's, released, its start smaller by a multiple of the capacity),
and a torn header's start never matches. So no checksum is needed for what the journal
promises (surviving the process, not the machine); format 1's CRC32 per record was a third
of ``append`` for an LLM event (its rings are still read, see
:mod:`~trubrics_otel.deliver.journal_recovery`). ``release`` writes the released position
into the two slots in turn, each with its CRC: a store cut short damages one slot and
recovery uses the other (an older position: a few records come back twice, none lost).

Ownership is the spool's: each process holds an exclusive ``flock`` on its own ring, a
file nobody holds belongs to a process that is gone and is claimed by :func:`recover`.
A new ring is prepared under a ``.tmp`` name and renamed once locked, so it is never
seen unlocked.

The file is sparse: only pages that held a record cost memory or disk, so the ring can be
sized for a whole burst (64 MiB: about 75,000 LLM events) at no cost to a quiet app. Pages
are prepared a chunk ahead of the writer (:mod:`~trubrics_otel.deliver.pages`, mostly by the
export thread, see :meth:`Journal.prepare_ahead`): ``track()`` then never takes a page fault,
and a full disk shows as a chunk that cannot be prepared (``append`` returns 0, the event
goes to the spool) rather than a ``SIGBUS``. When every record is released, the next one
starts a new lap at the ring's start, so a steady trickle keeps reusing the same few pages.
A forked child drops the parent's ring by itself (``os.register_at_fork``): the mapping is
shared, so a write from the child would land in the parent's records. (The batch processor
that holds a journal opens a new one in the child, on its first event.)
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import mmap
import os
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from pathlib import Path

from trubrics_otel.deliver.files import abandon, create_locked, fcntl, private_directory, publish
from trubrics_otel.deliver.pages import Pages

DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024
"""A 50,000-call burst of ~850-byte LLM events fits; the file is sparse (see the docstring)."""
PREPARE_CHUNK_BYTES = 256 * 1024
PREPARE_AHEAD_BYTES = 4 * 1024 * 1024
"""How far ahead of the writer the export thread keeps pages ready (~4,700 LLM events)."""
PRESSURE_S = 10.0
"""After a full disk (:meth:`Journal.give_back`), how long no page is prepared ahead."""

_SUFFIX = ".ring"
_VERSION = 2
"""Format 2: records without a checksum, magic last (format 1 is still recovered)."""
_HEADER_BYTES = 4096
_FILE_MAGIC = b"\x89TRJRNL\n"
_FILE = struct.Struct("<8sIIQ")  # magic, version, header bytes, capacity (+ CRC32, below)
_FILE_CRC = struct.Struct("<I")
_SLOT = struct.Struct("<QI")  # released position, CRC32 of its 8 bytes
_SLOT_OFFSETS = (64, 128)
_U64 = struct.Struct("<Q")
_MAGIC = b"\xff\xfeJR"  # 0xFF and 0xFE never occur in UTF-8 text (JSON payloads)
_RECORD = struct.Struct("<IQ4s")  # payload length, virtual start, magic: the magic goes in last
_RECORD_BYTES = _RECORD.size
_STALE_TMP_NS = 60 * 1_000_000_000

_counter = itertools.count(1)
_open_files: set[str] = set()  # this process's rings, for platforms without flock
_journals: weakref.WeakSet[Journal] = weakref.WeakSet()


class Journal:
    """A ring of records in a shared file mapping; see the module docstring."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        size: int = DEFAULT_JOURNAL_BYTES,
        logger: logging.Logger | None = None,
    ) -> None:
        if size < 2 * _HEADER_BYTES:
            raise ValueError(f"journal size must be at least {2 * _HEADER_BYTES} bytes")
        self.directory = Path(directory)
        self._logger = logger or logging.getLogger("trubrics")
        self._new_lock()
        self._capacity = size - _HEADER_BYTES
        # a record takes half the ring at most: then it always fits once the ring is empty
        self._max_record = min(self._capacity // 2, 0xFFFFFFFF)
        self.max_payload = self._max_record - _RECORD.size
        self._head = self._tail = self._read = self._slot = 0
        self._prepared = 0
        """Ring bytes [_hole, _prepared) have their pages ready (see :mod:`.pages`)."""
        self._hole = 0
        """Ring bytes [0, _hole) were given back (:meth:`give_back`) behind the records."""
        self._pressure_until = 0.0
        self._limit, self._to_file = -1, _HEADER_BYTES
        """Virtual end up to which ``append`` may write unchecked (see :meth:`_set_limit`), and
        what turns a virtual position below it into a file offset."""
        self._accepting = True
        self._notify_at: float = _NEVER
        self._notify_count = 1
        self._notify: Callable[[], object] = _nothing
        self.appended = 0
        """Records appended so far; with :attr:`consumed`, what :meth:`read` has still to give."""
        self.consumed = 0
        private_directory(self.directory)
        self.file, self._fd, self._mm = self._create(size)
        self._set_limit()
        _open_files.add(str(self.file))
        _journals.add(self)

    def __repr__(self) -> str:
        return f"Journal({str(self.file)!r}, unreleased={self.unreleased})"

    @property
    def capacity(self) -> int:
        """Bytes of the ring (the file's size less its header page)."""
        return self._capacity

    @property
    def unreleased(self) -> int:
        """Bytes of the ring in use: records not released yet, with their padding."""
        return self._head - self._tail

    def append(self, payload: bytes) -> int:
        """Copy one record in; its ticket, or 0 when it could not be journaled.

        The hot path of ``track()``: no syscall, and acquire/release rather than ``with``. One comparison with :attr:`_limit` stands for every
        check while the record fits in the current lap's free, prepared bytes (and under the
        size limit); the rest is :meth:`_make_room`. No ``%``: the lap's offset is kept (a big
        int's modulo was a twentieth of ``track_llm``). The payload goes in before its header,
        so a copy cut short by the kill leaves no header that claims it.
        """
        length = len(payload)
        self._acquire()
        try:
            head = self._head
            end = head + _RECORD_BYTES + length
            if end > self._limit:
                head = self._make_room(_RECORD_BYTES + length)
                if head < 0:
                    return 0
                end = head + _RECORD_BYTES + length
            position = head + self._to_file  # below the limit: the lap _set_limit saw
            mm = self._mm
            try:
                mm[position + _RECORD_BYTES : end + self._to_file] = payload  # type: ignore[index]
                _pack_record(mm, position, length, head, _MAGIC)
            except Exception:  # journaling is best effort: the event itself still goes on
                self._limit = -1  # worked out for a head that was not stored: again next time
                return 0
            self._head = end
            self.appended = appended = self.appended + 1
            if appended >= self._notify_at:
                self._notify_at = _NEVER  # once; the next read arms it again
                self._notify()
            return end
        finally:
            self._release()

    def notify_unread(self, count: int, callback: Callable[[], object]) -> None:
        """Call ``callback`` (on the appending thread, with the journal locked: it must be
        quick and leave the journal alone) when ``count`` records wait to be read; armed
        again by every :meth:`read`. For the worker that reads them in batches."""
        with self._lock:
            self._notify_count, self._notify = max(1, count), callback
            self._notify_at = self.consumed + self._notify_count

    def stop_appending(self) -> None:
        """Refuse every later append: for a shutdown about to take what is left."""
        with self._lock:
            self._accepting = False
            self._limit = -1

    def prepare_ahead(self) -> None:
        """Ready the pages the next :data:`PREPARE_AHEAD_BYTES` of records will use; for the
        export thread, so that ``append`` on the app's thread finds them ready."""
        if self._prepared < self._capacity and time.monotonic() >= self._pressure_until:
            self._prepare(self._head % self._capacity + PREPARE_AHEAD_BYTES)
            with self._lock:
                self._set_limit()

    def give_back(self) -> bool:
        """The disk is full: free the pages no record needs (released ones, and those
        prepared ahead) and prepare no more ahead for a while, so the spool gets the space.
        True when pages were freed."""
        with self._lock:
            if self._mm is None:
                return False
            self._pressure_until = time.monotonic() + PRESSURE_S
            head, tail, capacity = self._head, self._tail, self._capacity
            head_at, tail_at = head % capacity, tail % capacity
            same_lap = head - head_at <= tail
            if head == tail:  # nothing unreleased: every page goes
                ranges, self._prepared, self._hole = [(0, self._prepared)], 0, 0
            elif same_lap:  # released before the tail, prepared after the head
                ranges = [(0, tail_at), (head_at, self._prepared)]
                self._hole = max(self._hole, tail_at - tail_at % mmap.PAGESIZE)
            else:  # the head lapped the tail: only the gap between them is free
                ranges = [(head_at, min(tail_at, self._prepared))]
            self._prepared = min(self._prepared, -(-head_at // mmap.PAGESIZE) * mmap.PAGESIZE)
            freed = [self._pages.give_back(_HEADER_BYTES + a, _HEADER_BYTES + b) for a, b in ranges if a < b]
            self._set_limit()
            return any(freed)

    def _make_room(self, size: int) -> int:
        """With the lock held: where a record of ``size`` bytes goes (starting a new lap or
        skipping the rest of this one), its pages ready; -1 when it cannot be journaled."""
        if self._mm is None or not self._accepting or size > self._max_record:
            return -1
        head = self._head
        capacity = self._capacity
        offset = head % capacity
        if offset and head == self._tail:  # all released: a new lap, on pages in use
            head = self._head = self._tail = self._read = head + capacity - offset
            offset = 0
        elif offset + size > capacity:  # does not fit before the end: skip the rest of the lap
            head += capacity - offset
            offset = 0
        if head + size - self._tail > capacity:
            return -1  # full of unreleased records: never overwrite them
        if offset == 0 and self._hole:  # a new lap, over pages given back: prepare them again
            self._prepared = self._hole = 0
        if offset + size > self._prepared and not self._prepare(offset + size):
            return -1  # the disk is full: not journaled, never a SIGBUS
        self._set_limit(head)
        return head

    def _set_limit(self, head: int | None = None) -> None:
        """With the lock held: :attr:`_limit`, the virtual end up to which records starting
        at ``head`` fit with no other check (same lap, released space, prepared pages)."""
        head = self._head if head is None else head
        offset = head % self._capacity
        if self._mm is None or not self._accepting or (offset and head == self._tail):
            self._limit = -1  # closed; or all released: the next record starts a new lap
            return
        lap = head - offset
        self._to_file = _HEADER_BYTES - lap  # a virtual position of this lap -> its file offset
        self._limit = min(lap + self._capacity, self._tail + self._capacity, lap + self._prepared,
                          head + self._max_record)  # longer records: _make_room refuses them

    def _prepare(self, needed: int) -> bool:
        """Pages for ring bytes up to ``needed`` ready, a chunk at a time; False: disk full."""
        needed = min(needed, self._capacity)
        while (prepared := self._prepared) < needed:  # a chunk per call: short waits for append
            end = min(self._capacity, prepared + PREPARE_CHUNK_BYTES)
            if not self._pages.prepare(_HEADER_BYTES + prepared, _HEADER_BYTES + end):
                return False
            self._prepared = max(self._prepared, end)
        return True

    def read(self, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` records not read yet, oldest first, and the ticket that releases
        them (0 when there were none): for the one consumer that delivers them.

        Used when the ring is the queue itself: the export thread reads what ``track()``
        appended, delivers or spools it, then releases it.
        """
        with self._lock:
            mm, head, position = self._mm, self._head, self._read
        out: list[bytes] = []
        capacity = self._capacity
        try:
            while position < head and len(out) < limit:
                offset = position % capacity
                if offset + _RECORD_BYTES <= capacity:
                    length, start, _ = _RECORD.unpack_from(mm, _HEADER_BYTES + offset)  # type: ignore[arg-type]
                    if start == position:
                        begin = _HEADER_BYTES + offset + _RECORD_BYTES
                        out.append(mm[begin : begin + length])  # type: ignore[index]
                        position += _RECORD_BYTES + length
                        continue
                position += capacity - offset  # the writer skipped the rest of this lap
        except (TypeError, ValueError):  # closed meanwhile (close, fork): nothing to give
            return [], 0
        with self._lock:
            if self._mm is not mm:
                return [], 0
            self._read = position
            self.consumed += len(out)
            if self._notify_at == _NEVER:
                self._notify_at = self.consumed + self._notify_count
        return out, position if out else 0

    def release(self, ticket: int) -> None:
        """Records up to ``ticket`` are safe elsewhere: their space may be reused."""
        with self._lock:
            mm = self._mm
            if mm is None or ticket <= self._tail:
                return
            tail = min(ticket, self._head)
            self._slot ^= 1  # the other slot: the latest value survives a torn store
            with contextlib.suppress(OSError, ValueError):
                _SLOT.pack_into(mm, _SLOT_OFFSETS[self._slot], tail, zlib.crc32(_U64.pack(tail)))
            self._tail = tail
            self._set_limit()

    def release_all(self) -> None:
        """Everything appended so far is safe elsewhere (a clean close)."""
        self.release(self._head)

    def close(self) -> None:
        """Delete the ring if everything was released, else leave it for the next process."""
        with self._lock:
            mm, self._mm = self._mm, None
            self._limit = -1
            delete = self._head == self._tail
        if mm is None:
            return
        self._pages.forget()  # waits for a prepare in progress on another thread
        with contextlib.suppress(OSError, ValueError, BufferError):
            if not delete:
                mm.flush()  # shutdown is not the hot path: make the leftovers durable too
            mm.close()
        if delete:  # while we still hold the lock: nobody claims it meanwhile
            with contextlib.suppress(OSError):
                os.unlink(self.file)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        if delete and fcntl is None:  # Windows: an open file cannot be deleted
            with contextlib.suppress(OSError):
                os.unlink(self.file)
        _open_files.discard(str(self.file))

    def after_fork(self) -> None:
        """In a forked child: let go of the parent's ring without touching it.

        The mapping is shared with the parent, so a write here would corrupt its records;
        closing our copies of the descriptors leaves the parent's ``flock`` in place.
        Runs by itself in every child (``os.register_at_fork``); calling it again is harmless.
        """
        self._new_lock()  # the old one may be held by a thread that does not exist here
        self._pages.after_fork()
        mm, self._mm = self._mm, None
        self._limit = -1
        if mm is None:
            return
        with contextlib.suppress(OSError, ValueError, BufferError):
            mm.close()  # munmap of our view only; no flush, no write
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._head = self._tail = self._read = 0
        self.appended = self.consumed = 0
        _open_files.discard(str(self.file))

    def _new_lock(self) -> None:
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release

    def _create(self, size: int) -> tuple[Path, int, mmap.mmap]:
        names = (f"{time.time_ns():020d}-{os.getpid()}-{next(_counter)}{_SUFFIX}" for _ in itertools.count())
        file, fd = create_locked(self.directory, names, size)  # sparse: pages prepared as needed
        try:
            mm = mmap.mmap(fd, size)
            try:
                self._pages = Pages(fd, mm)
                if not self._pages.prepare(0, _HEADER_BYTES + min(PREPARE_CHUNK_BYTES, self._capacity)):
                    raise OSError(errno.ENOSPC, "no space for the journal's first pages")
                self._prepared = min(PREPARE_CHUNK_BYTES, self._capacity)
                header = _FILE.pack(_FILE_MAGIC, _VERSION, _HEADER_BYTES, self._capacity)
                mm[: len(header) + 4] = header + _FILE_CRC.pack(zlib.crc32(header))
                for offset in _SLOT_OFFSETS:
                    _SLOT.pack_into(mm, offset, 0, zlib.crc32(_U64.pack(0)))
                publish(file)
            except BaseException:
                mm.close()
                raise
        except BaseException:
            abandon(file, fd)
            raise
        return file, fd, mm


# --- internals ---------------------------------------------------------------------------

_pack_record = _RECORD.pack_into
_NEVER = float("inf")


def _nothing() -> None:
    pass


def _after_fork_in_child() -> None:
    for journal in list(_journals):
        journal.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
