"""The disk spool: events that could not be delivered yet, kept safe outside the process.

::

    spool = Spool("/var/cache/app/trubrics")       # a directory, created 0o700
    spool.append("publish_events", events)          # False when the size bound is reached
    for record in spool.read(max_events=1000):      # oldest first
        send(record.path, record.events)
        spool.ack(record)                           # the segment goes once fully acknowledged

Layout: a directory of append-only *segment* files ``<time_ns>-<pid>.seg``, each a
sequence of records::

    magic "TS" (2) | event count (2) | payload length (4) | CRC32 of payload (4) | payload
    payload = path (ASCII) + "\\n" + JSON array of events
              (for SPANS_PATH: length-prefixed span records instead, see tracked.py)

Each record is written with one ``write()`` on an ``O_APPEND`` descriptor, so a crash
of the process (``kill -9``) never tears it: the kernel already holds the bytes. A power
loss or a full disk can leave a torn tail: a record whose length or CRC does not match is
skipped, and reading resumes at the next ``magic`` that starts a valid record, so one
damaged record never costs the rest of the file.

fsync policy: a segment is fsynced when it is rotated and when the spool is closed, not
on every record; an OS crash can therefore lose the records of the last few seconds,
a process crash loses none.

Ownership: each process writes only its own segments and holds an exclusive ``flock`` on
every segment it has open, so two processes (or a parent and its forked child) never
write or replay the same file. A segment nobody holds belongs to a process that is gone:
the next spool opened on the directory claims it and replays it, oldest first. Progress
through a segment is kept in ``<segment>.ack`` (offset + CRC), so a replay interrupted by
a crash resends at most one record. Files are created owner-only (0o600).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trubrics_otel import settings
from trubrics_otel.deliver.files import (
    CLOEXEC,
    lock_file,
    private_directory,
    same_file,
    try_lock,
)

DEFAULT_MAX_BYTES = settings.MAX_SPOOL_BYTES.default
DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024

_MAGIC = b"TS"
_HEADER = struct.Struct(">2sHII")  # magic, event count, payload length, crc32
_ACK = struct.Struct(">QI")  # offset, crc32 of the offset bytes
_MAX_RECORD_EVENTS = 0xFFFF
_SUFFIX = ".seg"
_BLOB = struct.Struct(">I")
_NOWHERE = 1 << 62

SPANS_PATH = "spans"
"""The path of records whose "events" are spans not encoded yet (``tracked.to_bytes``
blobs): a full queue spills them here at the cost of one ``write()``, and the exporter
encodes them when it replays them."""
_SPANS_PATH_BYTES = SPANS_PATH.encode("ascii")

Event = dict[str, Any]


@dataclass(frozen=True)
class SpoolRecord:
    path: str
    events: list[Event]
    segment: Any
    end: int
    """Offset just past this record in its segment (what :meth:`Spool.ack` stores)."""


class _Segment:
    __slots__ = ("file", "fd", "size", "offset", "events", "own", "ack_fd", "dead_from")

    def __init__(self, file: Path, fd: int, size: int, offset: int, events: int, own: bool) -> None:
        self.file = file
        self.fd = fd
        self.size = size
        self.offset = offset
        self.events = events
        self.own = own
        self.ack_fd: int | None = None
        self.dead_from = _NOWHERE
        """Where damage that runs to the end of the file starts (a torn tail)."""


class Spool:
    """Append-only segments on disk with a size bound; see the module docstring."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        logger: logging.Logger | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._logger = logger or logging.getLogger("trubrics")
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()  # oldest first; ours last
        self._writer: _Segment | None = None
        self._bytes = 0
        self._pending = 0
        self.skipped_bytes = 0
        self.damaged = 0
        """Events of records found damaged on disk (a power cut, a bad disk) and skipped."""
        private_directory(self.directory)
        self._claim_leftovers()

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, pending={self._pending})"

    @property
    def pending(self) -> int:
        """Events in the spool not yet acknowledged (including claimed leftovers)."""
        return self._pending

    def append(self, path: str, events: list[Event]) -> bool:
        """Store ``events`` for ``path``; False (nothing stored) when the bound is reached.
        ``OSError`` (``ENOSPC`` for a full disk) when the disk refuses them: nothing is
        stored then either, not even the part of a record a short write let through."""
        if not events:
            return True
        records = [
            _encode(path, events[i : i + _MAX_RECORD_EVENTS])
            for i in range(0, len(events), _MAX_RECORD_EVENTS)
        ]
        size = sum(len(r) for r in records)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return False
            writer = self._writable()
            try:
                for record in records:
                    _write_all(writer.fd, record)
            except OSError:  # a full disk: no torn record stays behind, nothing is counted
                with contextlib.suppress(OSError):
                    os.ftruncate(writer.fd, writer.size)
                raise
            writer.size += size
            writer.dead_from = _NOWHERE
            writer.events += len(events)
            self._bytes += size
            self._pending += len(events)
        return True

    def read(self, max_events: int) -> list[SpoolRecord]:
        """The oldest records, about ``max_events`` events in all; not removed until acked."""
        out: list[SpoolRecord] = []
        count = 0
        with self._lock:  # a snapshot: written bytes never change, so read them unlocked
            plan = [(segment, segment.offset, segment.size) for segment in self._segments]
        for segment, offset, size in plan:
            try:
                while count < max_events and offset < size:
                    found = self._next_record(segment, offset, size)
                    if found is None:
                        break
                    path, events, end = found
                    out.append(SpoolRecord(path, events, segment, end))
                    count += len(events)
                    offset = end
            except OSError:  # closed meanwhile (close() or fork): nothing more to read
                break
            if count >= max_events:
                break
        if not out and self._pending:  # only damaged bytes were left: forget them
            with self._lock:
                for segment in list(self._segments):
                    if segment.offset >= min(segment.size, segment.dead_from):
                        self._forget(segment)
        return out

    def ack(self, record: SpoolRecord) -> None:
        """Mark ``record`` (and everything before it in its segment) delivered."""
        with self._lock:
            segment: _Segment = record.segment
            if segment.fd < 0 or record.end <= segment.offset:
                return
            segment.offset = record.end
            segment.events -= len(record.events)
            self._pending -= len(record.events)
            if segment.offset >= min(segment.size, segment.dead_from):  # fully delivered
                self._forget(segment)  # the disk space goes now
            else:
                self._store_ack(segment)

    def close(self) -> None:
        """fsync and release every segment; what is left is replayed by the next process."""
        with self._lock:
            for segment in self._segments:
                if segment.own:
                    with contextlib.suppress(OSError):
                        os.fsync(segment.fd)
                if segment.offset >= segment.size:
                    self._unlink(segment)
                self._close_fds(segment)
            self._segments.clear()
            self._writer = None

    def after_fork(self) -> None:
        """In a forked child: forget the parent's segments without releasing its locks.

        The child then opens a new :class:`Spool` on the same directory for its own events.
        """
        self._lock = threading.Lock()
        for segment in self._segments:
            self._close_fds(segment)  # our copies only: flock stays with the parent's
        self._segments.clear()
        self._writer = None
        self._pending = 0
        self._bytes = 0

    # --- internals -----------------------------------------------------------------------

    def _writable(self) -> _Segment:
        writer = self._writer
        if writer is not None and writer.size < self._segment_bytes:
            return writer
        if writer is not None:
            with contextlib.suppress(OSError):
                os.fsync(writer.fd)
            if writer.offset >= writer.size:  # already fully delivered
                self._remove(writer)
            self._claim_leftovers()  # a good moment to notice processes that died since
        for attempt in range(100):
            file = self.directory / f"{time.time_ns():020d}-{os.getpid()}{_SUFFIX}"
            try:
                fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | CLOEXEC, 0o600)
            except FileExistsError:
                continue
            lock_file(fd)
            self._writer = _Segment(file, fd, 0, 0, 0, own=True)
            self._segments.append(self._writer)
            return self._writer
        raise OSError(f"could not create a spool segment in {self.directory}")

    def _claim_leftovers(self) -> None:
        """Adopt segments whose owner is gone (nobody holds their lock), oldest first."""
        known = {s.file.name for s in self._segments}
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        except OSError:
            return
        claimed: list[_Segment] = []
        for name in names:
            if name in known:
                continue
            file = self.directory / name
            try:
                fd = os.open(file, os.O_RDWR | CLOEXEC)
            except OSError:
                continue
            if not try_lock(fd) or not same_file(fd, file):
                os.close(fd)  # alive owner, or deleted while we waited
                continue
            size = os.fstat(fd).st_size
            segment = _Segment(file, fd, size, _load_ack(file, size), 0, own=False)
            segment.events = self._count_events(segment)
            claimed.append(segment)
            self._bytes += size
            self._pending += segment.events
        if claimed:
            # leftovers are older than anything we wrote: they go first
            self._segments.extendleft(reversed(claimed))
            self._logger.info(
                "Trubrics spool: %d undelivered events left by earlier processes will be sent.",
                sum(s.events for s in claimed),
            )

    def _count_events(self, segment: _Segment) -> int:
        return _count_records(os.pread(segment.fd, segment.size, 0), segment.offset)

    def _next_record(
        self, segment: _Segment, offset: int, size: int
    ) -> tuple[str, list[Event], int] | None:
        """The record at ``offset`` or the next valid one after damage; None at the end."""
        while offset < size:
            header = os.pread(segment.fd, _HEADER.size, offset)
            if len(header) == _HEADER.size:
                magic, count, length, crc = _HEADER.unpack(header)
                if magic == _MAGIC and offset + _HEADER.size + length <= size:
                    payload = os.pread(segment.fd, length, offset + _HEADER.size)
                    decoded = _decode(payload, crc)
                    if decoded is not None:
                        return decoded[0], decoded[1], offset + _HEADER.size + length
            # torn or damaged: skip to the next record start (the acknowledged position stays
            # where it is: a replay that fails resends what came before the damage)
            start = offset
            offset = self._resync(segment, offset + 1, size)
            self.skipped_bytes += offset - start
            self._logger.warning(
                "Trubrics spool: skipped %d damaged bytes in %s", offset - start, segment.file.name
            )
            if offset >= size:  # nothing valid after it (until the next append, if ours)
                segment.dead_from = min(segment.dead_from, start)
        return None

    def _resync(self, segment: _Segment, offset: int, size: int | None = None) -> int:
        """Offset of the next ``magic`` at or after ``offset`` (or the segment's end)."""
        size = segment.size if size is None else size
        while offset < size:
            chunk = os.pread(segment.fd, 1 << 16, offset)
            if not chunk:
                break
            found = chunk.find(_MAGIC)
            if found >= 0:
                return offset + found
            offset += max(1, len(chunk) - 1)
        return size

    def _store_ack(self, segment: _Segment) -> None:
        try:
            if segment.ack_fd is None:
                segment.ack_fd = os.open(
                    _ack_file(segment.file), os.O_RDWR | os.O_CREAT | CLOEXEC, 0o600
                )
            offset = struct.pack(">Q", segment.offset)
            os.pwrite(segment.ack_fd, _ACK.pack(segment.offset, zlib.crc32(offset)), 0)
        except OSError as exc:
            self._logger.warning("Trubrics spool: could not record progress: %s", exc)

    def _forget(self, segment: _Segment) -> None:
        """A segment with nothing left to deliver: what it still counts was damaged."""
        self._pending -= segment.events
        self.damaged += segment.events
        self._remove(segment)

    def _remove(self, segment: _Segment) -> None:
        self._unlink(segment)
        self._close_fds(segment)
        self._bytes -= segment.size
        with contextlib.suppress(ValueError):
            self._segments.remove(segment)
        if segment is self._writer:
            self._writer = None

    def _unlink(self, segment: _Segment) -> None:
        # the segment first, while we still hold its lock: a process waiting for that
        # lock then finds the file gone and does not replay it
        for file in (segment.file, _ack_file(segment.file)):
            with contextlib.suppress(OSError):
                os.unlink(file)

    @staticmethod
    def _close_fds(segment: _Segment) -> None:
        for fd in (segment.fd, segment.ack_fd):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        segment.fd = -1
        segment.ack_fd = None


def _write_all(fd: int, data: bytes) -> None:
    """``write`` until all of ``data`` is out; a short write is followed up, and the error
    the next one meets (``ENOSPC``) raised."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no space left on the device")
        view = view[written:]


def _encode(path: str, events: Iterable[Event]) -> bytes:
    events = list(events)
    if path == SPANS_PATH:
        body = b"".join(_BLOB.pack(len(blob)) + blob for blob in events)
    else:
        body = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    payload = path.encode("ascii") + b"\n" + body
    return _HEADER.pack(_MAGIC, len(events), len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes, crc: int) -> tuple[str, list[Event]] | None:
    if zlib.crc32(payload) != crc:
        return None
    path, _, body = payload.partition(b"\n")
    if path == _SPANS_PATH_BYTES:
        blobs, offset = [], 0
        while offset + _BLOB.size <= len(body):
            (length,) = _BLOB.unpack_from(body, offset)
            blobs.append(body[offset + _BLOB.size : offset + _BLOB.size + length])
            offset += _BLOB.size + length
        return SPANS_PATH, blobs
    try:
        events = json.loads(body)
        return path.decode("ascii"), events if isinstance(events, list) else []
    except (ValueError, UnicodeDecodeError):
        return None


def waiting_events(directory: Path) -> int:
    """Events waiting in ``directory``'s segments past their acknowledged part, read from the
    record headers without claiming a segment (for ``trubrics-otel doctor``)."""
    count = 0
    for file in directory.glob(f"*{_SUFFIX}"):
        with contextlib.suppress(OSError):
            data = file.read_bytes()
            count += _count_records(data, _load_ack(file, len(data)))
    return count


def _count_records(data: bytes, at: int) -> int:
    """Events in the records of a segment's ``data`` from ``at``, by their headers (damage
    skipped to the next ``magic``)."""
    count = 0
    while (at := data.find(_MAGIC, at)) >= 0 and at + _HEADER.size <= len(data):
        _, events, length, _ = _HEADER.unpack_from(data, at)
        count, at = count + events, at + _HEADER.size + length
    return count


def _load_ack(file: Path, size: int) -> int:
    try:
        raw = _ack_file(file).read_bytes()
        offset, crc = _ACK.unpack(raw[: _ACK.size])
    except (OSError, struct.error):
        return 0
    if crc != zlib.crc32(struct.pack(">Q", offset)) or offset > size:
        return 0
    return offset


def _ack_file(file: Path) -> Path:
    return file.with_name(file.name + ".ack")
