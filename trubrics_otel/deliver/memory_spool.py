"""``MemorySpool``: the spool's interface in memory, for ``spool=False`` (lost at exit).

::

    spool = MemorySpool(max_events=100_000)
    spool.append("publish_events", events)      # False past the bound
    for record in spool.read(1000):
        send(record.path, record.events)
        spool.ack(record)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from trubrics_otel.deliver.spool import SpoolRecord

Event = dict[str, Any]
DEFAULT_MAX_MEMORY_EVENTS = 100_000


class MemorySpool:
    """The spool's interface in memory, for ``spool=False``: bounded by event count."""

    def __init__(self, max_events: int = DEFAULT_MAX_MEMORY_EVENTS) -> None:
        self.max_events = max_events
        self.directory = None
        self._records: deque[SpoolRecord] = deque()
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def append(self, path: str, events: list[Event]) -> bool:
        with self._lock:
            if self._pending + len(events) > self.max_events:
                return False
            self._records.append(SpoolRecord(path, list(events), None, 0))
            self._pending += len(events)
        return True

    def read(self, max_events: int) -> list[SpoolRecord]:
        out: list[SpoolRecord] = []
        taken = 0  # a running count: summing ``out`` again per record was quadratic in records
        with self._lock:
            for record in self._records:
                if taken >= max_events:
                    break
                out.append(record)
                taken += len(record.events)
        return out

    def ack(self, record: SpoolRecord) -> None:
        with self._lock:
            while self._records:
                head = self._records.popleft()
                self._pending -= len(head.events)
                if head is record:
                    break

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._records.clear()
        self._pending = 0
