"""Stored events in a format this version cannot read: kept on disk and reported, never dropped.

::

    keep_refused(spool_directory, payloads, logger)   # -> refused-<time_ns>-<pid>.records

A spool or journal can outlive the release that wrote it: a rollback to an older
trubrics-otel meets records in a newer format (see :mod:`~trubrics_otel.translate.record_codec`).
Guessing would send wrong events and skipping would lose them, so the replay sets them
aside in a file of their own beside the spool, says so at ERROR naming the file, and goes on
with the rest. The file is ``magic "TRREFUSED\\n" | (length (4, big-endian) | payload)*``,
the payloads exactly as stored, for the release that can read them.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from pathlib import Path

from trubrics_otel.deliver.files import CLOEXEC

_MAGIC = b"TRREFUSED\n"
_LENGTH = struct.Struct(">I")


def keep_refused(directory: Path | None, payloads: list[bytes], logger: logging.Logger) -> Path | None:
    """Write ``payloads`` to a new file in ``directory``; its path, or None when that failed
    (then the error says the events are lost). Never raises."""
    if not payloads:
        return None
    file = None
    if directory is not None:
        file = directory / f"refused-{time.time_ns():020d}-{os.getpid()}.records"
        data = _MAGIC + b"".join(_LENGTH.pack(len(p)) + p for p in payloads)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | CLOEXEC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("Could not keep %d refused Trubrics events in %s: %s", len(payloads), file, exc)
            file = None
    if file is None:
        logger.error(
            "%d stored Trubrics events are in a format this trubrics-otel cannot read "
            "(written by a newer release?) and could not be kept; they are lost.", len(payloads),
        )
        return None
    logger.error(
        "%d stored Trubrics events are in a format this trubrics-otel cannot read (written by "
        "a newer release?). They are not sent and kept in %s for a release that can read them.",
        len(payloads), file,
    )
    return file


def read_refused(file: Path) -> list[bytes]:
    """The payloads of a file written by :func:`keep_refused`."""
    data = Path(file).read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{file} is not a refused-records file")
    out, position = [], len(_MAGIC)
    while position < len(data):
        (length,) = _LENGTH.unpack_from(data, position)
        position += _LENGTH.size
        out.append(data[position : position + length])
        position += length
    return out
