"""Pages of a shared file mapping made ready before they are written, so a write never faults.

::

    pages = Pages(fd, mm)                # mm: an mmap of the whole file fd
    if pages.prepare(0, 1 << 20):        # False: the disk is full (nothing was written)
        mm[0:100] = payload              # no page fault, and never a SIGBUS

Why: the crash journal is a *sparse* file (only pages that hold records cost memory and
disk), and the first write to a page of a sparse file mapping costs a page fault plus a
block allocation, about 5 µs a page — a third of ``track_llm``'s budget on the app's
thread. And when the disk is full, that first write kills the process with ``SIGBUS``.

So pages are prepared ahead of the writer, in chunks, by ``madvise(MADV_POPULATE_WRITE)``
(Linux 5.14+): it faults the pages in writable and reserves their blocks, and on a full disk
it *returns an error* instead of raising ``SIGBUS`` later. It is called through ``ctypes``
so the GIL is released meanwhile: the export thread prepares the next chunk on the other core
while the app keeps tracking. Where that call is missing (older kernels, other systems),
``posix_fallocate`` of the chunk reserves the blocks (no ``SIGBUS``; the faults stay); where
that is missing too, the chunk is taken as it is (what any sparse mapping risks).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import sys
import threading

_MADV_POPULATE_WRITE = 23  # <linux/mman.h>; Python's mmap module does not export it (3.11)


class Pages:
    """Prepares ranges of one mapping; see the module docstring. Thread-safe."""

    def __init__(self, fd: int, mm: mmap.mmap) -> None:
        self._fd = fd
        self._mm = mm
        self._lock = threading.Lock()
        """Held while the kernel works on the mapping: :meth:`forget` waits for it."""
        self._address = 0
        self._madvise = None
        if sys.platform.startswith("linux"):
            self._address, self._madvise = _native(mm)
        self._fallocate = hasattr(os, "posix_fallocate")

    def prepare(self, start: int, end: int) -> bool:
        """Make bytes ``[start, end)`` of the file writable without a fault; False when the
        disk cannot hold them (or the mapping is gone)."""
        with self._lock:
            if self._fd < 0:
                return False
            if self._madvise is not None:
                page = mmap.PAGESIZE
                begin = start - start % page
                result = self._madvise(self._address + begin, end - begin, _MADV_POPULATE_WRITE)
                if result == 0:
                    return True
                if _errno() not in (errno.EINVAL, errno.ENOSYS):  # EFAULT/ENOMEM: a full disk
                    return False
                self._madvise = None  # an older kernel: the next best thing, from now on
            if self._fallocate:
                try:
                    os.posix_fallocate(self._fd, start, end - start)
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                        return False  # ENOSPC, EDQUOT
                    self._fallocate = False
            return True

    def give_back(self, start: int, end: int) -> bool:
        """Free the disk (and memory) behind the whole pages of ``[start, end)``, which must
        not be written again before :meth:`prepare` (``MADV_REMOVE``: tmpfs, ext4, xfs…)."""
        page = mmap.PAGESIZE
        begin, end = -(-start // page) * page, end - end % page
        with self._lock:
            if self._fd < 0 or end <= begin or not hasattr(mmap, "MADV_REMOVE"):
                return False
            try:
                self._mm.madvise(mmap.MADV_REMOVE, begin, end - begin)
            except (OSError, ValueError):
                return False
            return True

    def forget(self) -> None:
        """The mapping is about to be closed: wait for a call in progress, refuse later ones."""
        with self._lock:
            self._fd = -1
            self._madvise = None

    def after_fork(self) -> None:
        """In a forked child: the lock may be held by a thread that does not exist here."""
        self._lock = threading.Lock()
        self._fd = -1
        self._madvise = None


def _native(mm: mmap.mmap) -> tuple[int, object]:
    """The mapping's address and libc's ``madvise`` (called without the GIL), or (0, None)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc's madvise
        madvise = libc.madvise
        madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        madvise.restype = ctypes.c_int
        view = (ctypes.c_char * len(mm)).from_buffer(mm)
        address = ctypes.addressof(view)
        del view  # the mapping may be closed again; the address stays valid while it is open
        return address, madvise
    except (ImportError, OSError, AttributeError, TypeError, ValueError):
        return 0, None


def _errno() -> int:
    with contextlib.suppress(ImportError):
        import ctypes

        return ctypes.get_errno()
    return 0
