"""A request written now and answered later, on urllib3's own keep-alive pool.

::

    started = Started.write(manager, url, body, headers, timeout)   # None: send it as usual
    ...                                                            # other work meanwhile
    with WATCHDOG.watch(deadline) as watch:
        response = started.answer(timeout, watch)                   # urllib3's response

Why: in a burst the export thread encoded a batch, posted it, waited for the endpoint to read
and answer, then encoded the next one. Writing batch N's request, encoding batch N+1, then
reading N's answer overlaps the endpoint's time with ours, on the one thread (a second thread
was measured slower: each of its socket waits gave the interpreter lock back to a busy thread,
then waited a switch interval to get it again). The connection is taken from and given back to
urllib3's pool the way its own ``urlopen`` does (``_get_conn`` / ``_put_conn``, and the
response's ``_pool`` / ``_connection`` so that ``release_conn`` gives it back); only for a plain
``PoolManager`` (no proxy) of urllib3 2. Reading the answer goes through the caller's usual
handling (:meth:`~trubrics_otel.deliver.transport.Transport.send`): a failure is a failed first
attempt, retried like any other.
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ProtocolError

from trubrics_otel.deliver.watchdog import WATCHDOG, Watch

_SPLIT_REQUESTS = int(urllib3.__version__.split(".")[0]) >= 2
"""urllib3 2's connections read their answer apart from the request (``getresponse``)."""


class Started:
    """A request :meth:`write` sent, its answer not read yet."""

    __slots__ = ("pool", "conn", "body")

    def __init__(self, pool: Any, conn: Any, body: bytes) -> None:
        self.pool, self.conn, self.body = pool, conn, body  # the body again, for a retry

    @classmethod
    def write(cls, manager: Any, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Started | None:
        """POST ``body`` to ``url`` without reading the answer; None when it cannot be done here
        (a proxy, urllib3 1, no connection, a write that failed: the caller sends it as usual,
        at least once, as after any failed attempt)."""
        if type(manager) is not urllib3.PoolManager or not _SPLIT_REQUESTS:
            return None
        watch = WATCHDOG.start(time.monotonic() + timeout)  # the write, bounded too
        try:
            pool = manager.connection_from_url(url)
            conn = watch.connection = pool._get_conn()
        except Exception:  # noqa: BLE001 - a closed pool, a bad URL: the usual path says what
            WATCHDOG.stop(watch)
            return None
        try:
            conn.timeout = timeout
            conn.request("POST", urlsplit(url).path, body=body, headers=headers, preload_content=False)
            if not watch.cut:
                return cls(pool, conn, body)
        except Exception:  # noqa: BLE001 - the usual path sends it again and reports what fails
            pass
        finally:
            WATCHDOG.stop(watch)
        conn.close()
        pool._put_conn(conn)
        return None

    def answer(self, timeout: float, watch: Watch) -> Any:
        """The answer, as ``urlopen(..., preload_content=False)`` gives it; raises urllib3's
        ``ProtocolError`` when there is none (the connection is closed)."""
        conn, pool = self.conn, self.pool
        watch.connection = conn
        try:
            conn.sock.settimeout(timeout)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, AttributeError) as exc:
            conn.close()
            pool._put_conn(conn)
            raise ProtocolError("Connection aborted.", exc) from exc
        response._pool, response._connection = pool, conn  # release_conn() gives it back to the pool
        return response
