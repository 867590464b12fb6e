"""``TokenLock``: a mutex whose uncontended take and give-back are one C call each.

::

    lock = TokenLock()
    try:                          # the hot path: one deque.pop()
        lock.take()
    except IndexError:            # another thread holds it: wait for it
        lock.acquire()
    try:
        ...
    finally:
        lock.give()               # one deque.append()

    with lock:                    # everything off the hot path
        ...

Why: the crash journal's ``append`` runs on the app's thread for every ``track_llm`` call, and
``threading.Lock``'s ``acquire()`` and ``release()`` (argument parsing, a semaphore each
way) were a tenth of that call, about 0.15 µs of 1.9. This lock is a deque holding one
token: ``pop()`` takes it, or raises ``IndexError`` when another thread holds it, and
``append()`` gives it back. Each is a single C call, atomic under the GIL (and locked per
object in free-threaded builds). A waiter polls: it yields, then sleeps :data:`POLL_S`
between tries. That suits what the journal guards: critical sections of a few
microseconds, contended only when a thread switch lands inside one.
"""

from __future__ import annotations

import collections
import time
from typing import Any

POLL_S = 20e-6
"""Sleep between tries once yielding did not free the lock (the holder is in a syscall)."""
_YIELDS = 10


class TokenLock:
    """A mutex of one token; see the module docstring. Not reentrant."""

    def __init__(self) -> None:
        tokens: collections.deque[None] = collections.deque((None,), maxlen=1)
        self.take = tokens.pop
        """Take the token now, or raise ``IndexError`` when another thread holds it."""
        self.give = tokens.append
        """Give the token back (only by the thread that took it)."""

    def acquire(self) -> None:
        """Take the token, waiting as long as another thread holds it."""
        take, tries = self.take, 0
        while True:
            try:
                return take()
            except IndexError:
                tries += 1
                time.sleep(0 if tries <= _YIELDS else POLL_S)  # either lets the holder run

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.give(None)
