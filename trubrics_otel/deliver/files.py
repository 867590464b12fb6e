"""File ownership shared by the spool and the journal: private directories and ``flock``.

::

    directory = private_directory(path)     # created 0o700
    fd = os.open(file, os.O_RDWR | os.O_CREAT | CLOEXEC, 0o600)
    lock_file(fd)                           # exclusive; raises if another process holds it

    file, fd = create_locked(directory, names, size)   # under a ".tmp" name until...
    publish(file)                           # ...it is ready (or abandon(file, fd))

A file nobody holds a lock on belongs to a process that is gone, and may be claimed.
Without ``fcntl`` (Windows) files are per-pid, just not locked.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
TMP_SUFFIX = ".tmp" if fcntl is not None else ""  # Windows cannot rename an open file


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


def create_locked(directory: Path, names: Iterable[str], size: int) -> tuple[Path, int]:
    """A new owner-only file of ``size`` (sparse) bytes named by the first of ``names`` not
    taken (100 tries), locked, and still under a ``.tmp`` name: :func:`publish` gives it its
    name once it is ready, so nobody ever finds it unlocked or half made. Returns the name
    it will have and its descriptor."""
    for name in itertools.islice(names, 100):
        tmp = directory / (name + TMP_SUFFIX)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            lock_file(fd)
            os.ftruncate(fd, size)
        except BaseException:
            abandon(directory / name, fd)
            raise
        return directory / name, fd
    raise OSError(f"could not create a file in {directory}")


def publish(file: Path) -> None:
    """The file :func:`create_locked` made, under its own name."""
    if TMP_SUFFIX:
        os.rename(file.with_name(file.name + TMP_SUFFIX), file)


def abandon(file: Path, fd: int) -> None:
    """Delete a file :func:`create_locked` made that is not published, and close it."""
    with contextlib.suppress(OSError):
        os.unlink(file.with_name(file.name + TMP_SUFFIX))
    os.close(fd)
