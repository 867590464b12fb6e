"""Logging helpers: errors that repeat are reported once a minute, with a count; a
command's logger on stderr while it runs.

::

    log = RateLimitedLog(logging.getLogger("trubrics"))
    log.warning("text", "A prompt longer than %d characters was truncated", limit)
    with on_stderr(logging.getLogger("trubrics.server"), formatter, logging.INFO):
        ...
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOG_INTERVAL_S = 60.0


class RateLimitedLog:
    """Log each kind of message at most once per :data:`LOG_INTERVAL_S`, with a count."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL_S) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: Any) -> None:
        self._log(logging.WARNING, key, message, args)

    def error(self, key: str, message: str, *args: Any) -> None:
        self._log(logging.ERROR, key, message, args)

    def _log(self, level: int, key: str, message: str, args: tuple[Any, ...]) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._quiet[key] = self._quiet.get(key, 0) + 1
                return
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        if quiet:
            message += f" (and {quiet} more like it since the last report)"
        self._logger.log(level, message, *args)


@contextmanager
def on_stderr(logger: logging.Logger, formatter: logging.Formatter, level: int | str,
              propagate: bool | None = None) -> Iterator[None]:
    """While inside: ``logger``'s records from ``level`` on stderr, written by ``formatter``
    (``propagate``: whether they also reach the root logger's handlers; None leaves it). After:
    its handlers, level and propagation as they were (a caller of ``main()`` in its own
    process, such as a test, keeps its logging)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    level_was, propagate_was = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    if propagate is not None:
        logger.propagate = propagate
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level_was)
        logger.propagate = propagate_was
