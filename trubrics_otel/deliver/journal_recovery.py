"""Recovery: what the journals of dead processes still hold, claimed by the next start.

::

    for leftover in recover(directory):     # rings whose process is gone, oldest first
        store_elsewhere(leftover.payloads)
        leftover.discard()                  # or leftover.close() to leave it for later

A ring nobody holds a ``flock`` on belongs to a process that is gone. Its records are found
by scanning for the record magic (see the layout in :mod:`~trubrics_otel.deliver.journal`):
a candidate counts when its length fits, its virtual start matches where it lies and it is
not released (and, in format 1, when its CRC holds); otherwise the search goes on at the
next byte, so a damaged record costs only itself. Records come back in virtual order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from trubrics_otel.deliver.files import CLOEXEC, fcntl, same_file, try_lock
from trubrics_otel.deliver.memory_spool import MemorySpool
from trubrics_otel.deliver.spool import SPANS_PATH, Spool
from trubrics_otel.deliver.transport import MAX_BATCH
from trubrics_otel.deliver.journal import (
    _FILE,
    _FILE_CRC,
    _FILE_MAGIC,
    _HEADER_BYTES,
    _MAGIC,
    _RECORD,
    _SLOT,
    _SLOT_OFFSETS,
    _STALE_TMP_NS,
    _SUFFIX,
    _U64,
    _VERSION,
    _open_files,
)

_RECORD_V1 = struct.Struct("<4sIQI")
"""Format 1's record header: magic, payload length, virtual start, CRC32 of the payload
seeded with the start's low 32 bits. Rings a process of an earlier release left are read."""


@dataclass
class Leftover:
    """The unreleased records of a ring whose process is gone; its file stays locked."""

    file: Path
    payloads: list[bytes]
    _fd: int = field(default=-1, repr=False, compare=False)

    def discard(self) -> None:
        """Delete the file, once its payloads are stored elsewhere."""
        if self._fd < 0:
            return  # not ours (any more)
        with contextlib.suppress(OSError):
            os.unlink(self.file)  # while locked: nobody claims it meanwhile
        self.close()
        if fcntl is None:  # Windows: an open file cannot be deleted
            with contextlib.suppress(OSError):
                os.unlink(self.file)

    def close(self) -> None:
        """Give the file back untouched: the next :func:`recover` claims it again."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


def recover(
    directory: str | os.PathLike[str], logger: logging.Logger | None = None
) -> list[Leftover]:
    """Claim the rings of processes that are gone, oldest first; never raises.

    Rings held by a live process, this one included, are left alone. A ring with nothing
    left in it is deleted at once.
    """
    logger = logger or logging.getLogger("trubrics")
    directory = Path(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out: list[Leftover] = []
    for name in names:
        file = directory / name
        if name.endswith(_SUFFIX + ".tmp"):
            _remove_stale_tmp(file)
            continue
        if not name.endswith(_SUFFIX) or str(file) in _open_files:
            continue
        try:
            fd = os.open(file, os.O_RDWR | CLOEXEC)
        except OSError:
            continue
        if not try_lock(fd) or not same_file(fd, file):
            os.close(fd)  # a live owner, or deleted while we waited
            continue
        leftover = Leftover(file, [], fd)
        try:
            leftover.payloads = _read_ring(fd, name, logger)
        except _Refused:
            leftover.close()  # kept for the release that wrote it
            continue
        except Exception as exc:  # never let a damaged file stop the process from starting
            logger.warning("Trubrics journal: could not read %s: %s", name, exc)
            leftover.close()  # kept: a later start may read it
            continue
        if leftover.payloads:
            out.append(leftover)
        else:
            leftover.discard()
    if out:
        logger.info(
            "Trubrics journal: %d events left by earlier processes will be sent.",
            sum(len(leftover.payloads) for leftover in out),
        )
    return out



class _Refused(Exception):
    """A ring in a newer format: left as it is."""


def _read_ring(fd: int, name: str, logger: logging.Logger) -> list[bytes]:
    size = os.fstat(fd).st_size
    chunks = []
    while (read := sum(len(c) for c in chunks)) < size:
        chunk = os.pread(fd, size - read, read)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) <= _HEADER_BYTES:
        if data:
            logger.warning("Trubrics journal: %s is truncated (%d bytes)", name, len(data))
        return []
    magic, version, header_bytes, capacity = _FILE.unpack_from(data, 0)
    (crc,) = _FILE_CRC.unpack_from(data, _FILE.size)
    if magic == _FILE_MAGIC and version > _VERSION and crc == zlib.crc32(data[: _FILE.size]):
        logger.error(  # a newer release's journal: never guessed at, kept for that release
            "Trubrics journal: %s is in format %d, newer than this trubrics-otel reads (%d); "
            "it is kept, not sent.", name, version, _VERSION,
        )
        raise _Refused
    versions = [version]
    if magic != _FILE_MAGIC or version not in (1, _VERSION) or crc != zlib.crc32(data[: _FILE.size]):
        logger.warning("Trubrics journal: %s has a damaged header; reading what looks valid", name)
        header_bytes, capacity, versions = _HEADER_BYTES, len(data) - _HEADER_BYTES, [_VERSION, 1]
    raw = data[header_bytes : header_bytes + capacity]
    if len(raw) < capacity:
        logger.warning("Trubrics journal: %s is truncated; reading what is left", name)
    released = -1
    for offset in _SLOT_OFFSETS:
        tail, crc = _SLOT.unpack_from(data, offset)
        if crc == zlib.crc32(_U64.pack(tail)):
            released = max(released, tail)
    if released < 0:
        logger.warning(
            "Trubrics journal: %s lost its released position; some events may come twice", name
        )
        released = 0
    found: list[tuple[int, bytes]] = []
    damaged = 0
    for version in versions:  # a damaged header: the current format, else format 1
        found, damaged = _scan(raw, capacity, released, version)
        if found:
            break
    if found:  # without a trustworthy released position, one lap at most is current
        newest = max(start + _RECORD.size + len(payload) for start, payload in found)
        found = [(start, payload) for start, payload in found if start >= newest - capacity]
    if damaged:
        logger.warning("Trubrics journal: skipped %d damaged records in %s", damaged, name)
    found.sort(key=lambda record: record[0])
    return [payload for _, payload in found]


def _scan(raw: bytes, capacity: int, released: int, version: int) -> tuple[list[tuple[int, bytes]], int]:
    """Every unreleased record of the ring's bytes as ``(virtual start, payload)``, and how
    many candidates were damaged (found where a record should be, but cut short)."""
    record = _RECORD_V1 if version == 1 else _RECORD
    magic_at = 0 if version == 1 else _RECORD.size - len(_MAGIC)
    max_length = min(capacity // 2, 0xFFFFFFFF) - record.size
    found: list[tuple[int, bytes]] = []
    damaged = 0
    position = raw.find(_MAGIC, magic_at)
    while position >= 0:
        begin = position - magic_at
        end = begin + record.size
        if end <= len(raw):
            if version == 1:
                _, length, start, crc = record.unpack_from(raw, begin)
            else:
                length, start, _ = record.unpack_from(raw, begin)
            if start % capacity == begin and start >= released and length <= max_length:
                payload = raw[end : end + length]
                if len(payload) == length and (
                    version != 1 or zlib.crc32(payload, start & 0xFFFFFFFF) == crc
                ):
                    found.append((start, payload))
                    position = raw.find(_MAGIC, end + length + magic_at)
                    continue
                damaged += 1  # where an unreleased record should be: cut short or overwritten
        position = raw.find(_MAGIC, position + 1)
    return found, damaged


def _remove_stale_tmp(file: Path) -> None:
    """A ring whose creator was killed before it was ready: empty, nobody will read it."""
    try:
        born = int(file.name.split("-", 1)[0])
    except ValueError:
        return
    if time.time_ns() - born < _STALE_TMP_NS:
        return  # possibly still being prepared
    try:
        fd = os.open(file, os.O_RDWR | CLOEXEC)
    except OSError:
        return
    try:
        if try_lock(fd) and same_file(fd, file):
            os.unlink(file)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_spool(directory: Path | None, max_bytes: int, logger: logging.Logger) -> Spool | MemorySpool:
    """The delivery's spool: in ``directory`` (with what dead processes' journals there held,
    moved in to be sent), else in memory."""
    if directory is None:
        return MemorySpool()
    try:
        spool = Spool(directory, max_bytes=max_bytes, logger=logger)
    except OSError as exc:
        logger.error(
            "Trubrics spool unavailable (%s); undelivered events are kept in memory only.", exc
        )
        return MemorySpool()
    for leftover in recover(directory, logger):  # what killed processes had queued
        # one request's worth per record: a crash during the replay resends at most that
        payloads = leftover.payloads
        try:
            moved = all(
                spool.append(SPANS_PATH, payloads[start : start + MAX_BATCH])
                for start in range(0, len(payloads), MAX_BATCH)
            )
        except OSError as exc:  # a full disk: the ring stays for a later start
            logger.error("Trubrics: the spool cannot take what a process left (%s).", exc)
            moved = False
        if moved:
            logger.info(
                "Trubrics: %d events queued by a process that died will be sent.",
                len(leftover.payloads),
            )
            leftover.discard()
        else:
            leftover.close()
    return spool


def describe_bound(spool: Spool | MemorySpool) -> str:
    """The spool's bound, for the message that says it is full."""
    if isinstance(spool, Spool):
        return f"max_spool_bytes={spool.max_bytes} in {spool.directory}"
    return f"{spool.max_events} events in memory"
