"""File ownership shared by the spool and the journal: private directories and ``flock``.

::

    directory = private_directory(path)     # created 0o700
    fd = os.open(file, os.O_RDWR | os.O_CREAT | CLOEXEC, 0o600)
    lock_file(fd)                           # exclusive; raises if another process holds it

A file nobody holds a lock on belongs to a process that is gone, and may be claimed.
Without ``fcntl`` (Windows) files are per-pid, just not locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def private_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` created if needed, readable by its owner only."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    return directory


def lock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def same_file(fd: int, file: Path) -> bool:
    try:
        return os.stat(file).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False
