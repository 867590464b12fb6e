"""A whole-request deadline for ``urllib3``: a request still running at its deadline has its
socket shut down, whatever it is waiting for.

::

    manager = urllib3.PoolManager()
    watched(manager)                           # its connections report to the watchdog
    with WATCHDOG.watch(time.monotonic() + 10) as watch:
        response = manager.urlopen("POST", url, body=body)   # cut at 10 s: an error,
    if watch.cut: ...                                        # or a truncated answer

Why: urllib3's timeouts bound each socket operation, not the request. An endpoint that
trickles its response headers a line at a time (before each read timeout) holds a request,
and the export thread that sent it, for as long as it likes. One daemon thread, started by
the first watched request, sleeps until the nearest deadline; a request costs a context
variable and a set insertion, and wakes that thread only when its deadline is the nearest.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection


class Watch:
    """One request's deadline; ``cut`` once the watchdog shut its socket (whatever answer
    was read by then is not one: a cut can look like the end of a body)."""

    __slots__ = ("until", "connection", "cut")

    def __init__(self, until: float) -> None:
        self.until = until
        self.connection: HTTPConnection | None = None
        self.cut = False


_CURRENT: contextvars.ContextVar[Watch | None] = contextvars.ContextVar("trubrics_watch", default=None)


class Watchdog:
    def __init__(self) -> None:
        self.after_fork()

    @contextlib.contextmanager
    def watch(self, until: float) -> Iterator[Watch]:
        """Requests made within the block are cut at ``until`` (``time.monotonic()``)."""
        watch = self.start(until)
        token = _CURRENT.set(watch)
        try:
            yield watch
        finally:
            _CURRENT.reset(token)
            self.stop(watch)

    def start(self, until: float) -> Watch:
        """A watch for a request that outlives a block: set its ``connection``, then :meth:`stop`."""
        watch = Watch(until)
        with self._changed:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="TrubricsRequestWatchdog", daemon=True)
                self._thread.start()
            if until < self._wake_at:
                self._changed.notify()
        return watch

    def stop(self, watch: Watch) -> None:
        with self._changed:
            self._watches.discard(watch)

    def after_fork(self) -> None:
        """Fresh state; in a forked child: no thread, no lock held by a thread not there."""
        self._watches: set[Watch] = set()
        self._changed = threading.Condition(threading.Lock())
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._watches if w.until <= now]:
                    self._watches.discard(watch)
                    watch.cut = True
                    _cut(watch.connection)
                self._wake_at = min((w.until for w in self._watches), default=float("inf"))
                self._changed.wait(None if self._wake_at == float("inf") else self._wake_at - now)


def _cut(connection: HTTPConnection | None) -> None:
    sock = None if connection is None else connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once: an error


WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG.after_fork)


class _Watched:
    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch = _CURRENT.get()
        if watch is not None:
            watch.connection = self  # type: ignore[assignment]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def watched(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """``manager`` (or a ``ProxyManager``), its HTTP(S) connections under the watchdog."""
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager
