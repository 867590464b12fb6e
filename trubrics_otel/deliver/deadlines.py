"""``Deadlines``: the flush and close deadlines in force, shared by every delivery attempt.

::

    deadlines = Deadlines(on_enter=transport.interrupt)
    with deadlines.bound(5):            # flush(timeout=5), on any thread
        ...                             # attempts check deadlines.expired(), deadlines.at
    deadlines.at                        # None once no deadline is in force

The nearest deadline in force bounds every attempt, whichever thread set it: the export
thread's request in flight is cut at close's deadline. Nested ones only tighten
(``close(timeout=2)`` stays 2 s through the exporter's shutdown), and overlapping ones (two
threads' flushes, a flush and the exit hook's close) end in any order: each takes away its
own, so none is left behind expired (which once stopped delivery for the rest of the process).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class Deadlines:
    def __init__(self, on_enter: Callable[[], object]) -> None:
        self._on_enter = on_enter
        """Called when a deadline starts: wakes waits that must re-check it."""
        self._active: list[float] = []
        self._lock = threading.Lock()
        self.at: float | None = None
        """The nearest deadline in force (``time.monotonic()`` s), None when there is none."""

    @contextlib.contextmanager
    def bound(self, seconds: float | None) -> Iterator[None]:
        """Every attempt within the block ends by ``seconds`` from now (None: no bound)."""
        if seconds is None:
            yield
            return
        mine = time.monotonic() + seconds
        with self._lock:
            self._active.append(mine)
            self.at = min(self._active)
        self._on_enter()
        try:
            yield
        finally:
            with self._lock:
                self._active.remove(mine)
                self.at = min(self._active) if self._active else None

    def expired(self) -> bool:
        at = self.at
        return at is not None and time.monotonic() >= at

    def or_never(self) -> float:
        """The nearest deadline, or infinity."""
        at = self.at
        return float("inf") if at is None else at

    def left(self) -> float:
        """Seconds until the nearest deadline; -1 (wait forever) when there is none."""
        at = self.at
        return -1 if at is None else max(0.0, at - time.monotonic())

    def until(self, started: float, budget: float) -> float:
        """When a retry budget of ``budget`` s from ``started`` ends, within the deadline."""
        return min(started + budget, self.or_never())
