"""How a process opens the SQLite file: as it is, or as a snapshot when it could not read it
otherwise; and whether a writer may write it (:func:`probe_write`).

::

    target, uri = open_target(Path("events.sqlite3"), reader=True)
    connection = sqlite3.connect(target, uri=uri)
    probe_write(connection)            # a writer: raises unless this process can write it

A WAL store is read through its ``-shm`` index, which SQLite creates next to the file on the
first read: a reader that cannot write the directory (a store copied to a read-only share, a
backup, another user's directory) could read nothing. When no ``-wal`` file is there either, no
process has the store open (a writer's connection keeps it; the last to close removes both), so
the reader opens the file ``immutable``: no locks, no ``-shm``, the file as it is now. A server
that starts writing it meanwhile is not seen by that reader (a command reads once; the next
one opens the store again), which the one-line note says. A ``-wal`` left there is data not yet
in the file: read as immutable it would be missed, so that open fails as before, naming the file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger("trubrics.server")


def open_target(path: Path, reader: bool) -> tuple[str, bool]:
    """What ``sqlite3.connect`` opens for ``path``, and whether it is a URI: the plain path,
    unless ``reader`` (a process that never writes) cannot write the directory and no ``-wal``
    file says a process has the store open: then the file read as a snapshot, with the note."""
    if (not reader or not path.is_file() or os.access(path.parent, os.W_OK)
            or Path(f"{path}-wal").exists() or Path(f"{path}-shm").exists()):
        return str(path), False
    logger.warning("%s: its directory is not writable and no process has the store open: reading the file as "
                   "it is now (a server that starts writing it meanwhile is not seen until the next command)", path)
    return f"file:{quote(str(path.absolute()))}?mode=ro&immutable=1", True


def probe_write(connection: sqlite3.Connection) -> None:
    """Raise SQLite's own error unless this process can write the store: a writer (a server)
    whose open had nothing to migrate or fold wrote nothing, and learnt only at its first
    ingested batch, a 500, that the file is read-only to it. ``BEGIN IMMEDIATE`` alone succeeds
    on a read-only file in WAL mode (the lock is in the ``-shm``): a page is written, in the
    cache only, and rolled back, so nothing reaches the file or its WAL. A writable file in a
    read-only directory passes while its ``-wal`` and ``-shm`` are there to write (a server has
    it open, or one crashed): SQLite makes them only on opening, where it fails without them."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(f"PRAGMA user_version = {version}")
    finally:
        connection.execute("ROLLBACK")
