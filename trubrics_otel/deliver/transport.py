"""POST event batches to the Trubrics ingestion API, retrying what is worth retrying.

::

    transport = Transport("https://app.trubrics.com/api/ingestion", api_key)
    delivery = transport.send(EVENTS_PATH, events, deadline=time.monotonic() + 30)
    if not delivery.ok: ...   # delivery.pending holds what was not accepted

One pooled keep-alive ``urllib3`` pool; at most :data:`MAX_BATCH` events a request; never
an empty array. urllib3 rather than ``requests`` on top of it: a 100-event POST costs the
client ~140 µs of CPU against ~250 µs through a ``requests.Session`` (its response and
cookie handling), a microsecond per event on the export thread. The environment is read
once, the way ``requests`` reads it: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``
(``requests.utils``), and the CA bundle from ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``,
else ``certifi``'s. Connection errors, timeouts, 408, 429 and 5xx are retried with
exponential backoff and jitter, honouring ``Retry-After`` (at most :data:`MAX_RETRY_AFTER_S`;
the spool's replay waits at most ``retry_timeout``), until the deadline; any other 4xx is
final and logged (once a minute per status) with the server's ``detail``. Of an answer's
body at most :data:`MAX_RESPONSE_BYTES` is read; a longer one closes the connection. The
``timeout`` bounds the whole request, answer included (:mod:`~trubrics_otel.deliver.watchdog`):
headers trickled a line at a time cannot hold the export thread. :meth:`Transport.interrupt` cuts
every wait short, so a flush or close with a timeout is never held up by a backoff.

A refused connection to a loopback host ends the send at once (``unreachable``): nothing
listens there, and retrying only holds up a flush or close. Every POST runs with
OpenTelemetry's suppress-instrumentation flag set, so an app's ``requests``/``urllib3``
instrumentation never turns our own requests into spans (which ``all_spans=True`` would
send back to Trubrics, without end).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from opentelemetry import context as otel_context
from urllib3.exceptions import HTTPError as _HTTPError
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from trubrics_otel import settings
from trubrics_otel.deliver.split_request import Started
from trubrics_otel.deliver.watchdog import WATCHDOG, watched
from trubrics_otel.logs import RateLimitedLog
from trubrics_otel.translate.fastjson import dumps

EVENTS_PATH = "publish_events"
LLM_EVENTS_PATH = "publish_llm_events"
MAX_BATCH = 100

_RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 8.0
_MAX_REDIRECTS = 5
MAX_RETRY_AFTER_S = 300.0
"""The longest ``Retry-After`` honoured: a bigger (or absurd) value waits this long."""
MAX_RESPONSE_BYTES = 64 * 1024
"""What is read of an answer: enough for an error's ``detail``. A longer body is not read
(the connection is closed instead), so a hostile or broken endpoint cannot fill memory."""
_RETRIES = urllib3.Retry(
    total=None, connect=0, read=0, status=0, other=0, redirect=_MAX_REDIRECTS,
    raise_on_redirect=False, raise_on_status=False, respect_retry_after_header=False,
    remove_headers_on_redirect=["Authorization", "Cookie", "Proxy-Authorization", "x-api-key"],
)
"""urllib3 follows redirects (never the key to another host); retries are ours, below."""

Deadline = Callable[[], float]
"""Returns the ``time.monotonic()`` instant after which no further attempt starts."""


@dataclass
class SendResult:
    """The outcome of :meth:`Transport.send`."""

    ok: bool
    status: int | None = None
    detail: str | None = None
    retryable: bool = False
    """True when the failure was transient: the pending events are worth sending later."""
    attempts: int = 0
    sent: int = 0
    rejected: int = 0
    """Events in chunks the server refused for good (4xx other than 408/429)."""
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Events not accepted after a transient failure, in order: worth sending later."""
    retry_after: float | None = None
    """When we gave up: seconds to wait before the next attempt (``Retry-After``, else backoff)."""
    unreachable: bool = False
    """Connection refused on loopback: nothing listens, so waiting for it is pointless."""


class Transport:
    def __init__(
        self,
        host: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.base = host.rstrip("/")
        self._timeout = timeout
        self._logger = logger or logging.getLogger("trubrics")
        self._log = RateLimitedLog(self._logger)
        self._headers = {"Content-Type": "application/json", "x-api-key": api_key}
        self._pool, self._pool_error = _pool(self.base)
        self._wake = threading.Event()
        self.attempts = 0
        self.retries = 0

    def __repr__(self) -> str:  # the headers hold the key: never show them
        return f"Transport(host={self.base!r})"

    def send(
        self,
        path: str,
        events: Sequence[dict[str, Any]],
        *,
        deadline: float | Deadline,
        cutoff: Deadline | None = None,
        started: Started | None = None,
    ) -> SendResult:
        """Send ``events`` in order, chunked; ``started``: their request, already written by
        :meth:`start` (its answer is read first).

        No attempt starts after ``deadline`` (a retry budget); a request in flight is cut at
        ``cutoff`` (a flush/close deadline), by default the same instant. Keeping them apart
        matters: a slow answer cut short by a mere retry budget would be sent again although
        the server stored it.

        A chunk the server refuses for good is counted in ``rejected`` and the next chunk
        still goes; a transient failure stops the run and leaves the rest ``pending``.
        """
        until = deadline if callable(deadline) else (lambda: deadline)
        delivery = SendResult(ok=True)
        for start in range(0, len(events), MAX_BATCH):
            chunk = events[start : start + MAX_BATCH]
            result = self._send_chunk(path, chunk, until, cutoff or until, started)
            started = None
            delivery.attempts += result.attempts
            delivery.status = result.status
            if result.ok:
                delivery.sent += len(chunk)
                continue
            delivery.ok = False
            delivery.detail = result.detail
            delivery.retryable = result.retryable
            delivery.retry_after = result.retry_after
            delivery.unreachable = result.unreachable
            if result.retryable:
                delivery.pending = list(events[start:])
                break
            delivery.rejected += len(chunk)
        return delivery

    def start(self, path: str, events: Sequence[dict[str, Any]]) -> Started | None:
        """Write the request for ``events`` (one chunk) and return before its answer, which
        :meth:`send` (``started=``) reads later, retrying as usual: the caller encodes its next
        batch meanwhile. None where that cannot be done (a proxy, urllib3 1, more than a chunk,
        a write that failed): then :meth:`send` them as usual (at least once, as any retry)."""
        if not 0 < len(events) <= MAX_BATCH:
            return None
        with our_own_calls():
            return Started.write(self._pool, f"{self.base}/{path}", dumps(events), self._headers, self._timeout)

    def interrupt(self) -> None:
        """Wake any backoff wait now; callers re-check their deadline."""
        self._wake.set()

    def close(self) -> None:
        self.interrupt()
        if self._pool is not None:
            self._pool.clear()

    def after_fork(self) -> None:
        """In a forked child: fresh connections (the inherited ones are the parent's)."""
        self._pool, self._pool_error = _pool(self.base)
        self._wake = threading.Event()
        self.attempts = 0
        self.retries = 0

    def _send_chunk(
        self, path: str, chunk: Sequence[dict[str, Any]], until: Deadline, cutoff: Deadline,
        started: Started | None = None,
    ) -> SendResult:
        url = f"{self.base}/{path}"
        body = dumps(chunk) if started is None else started.body  # orjson when installed (core on CPython)
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            remaining = cutoff() - time.monotonic()
            wait: float | None = None
            with our_own_calls():
                try:
                    if self._pool is None:
                        raise _NoPool(self._pool_error)
                    # the whole request, answer included, within the timeout (and the cutoff)
                    timeout = max(0.05, min(self._timeout, remaining))
                    with WATCHDOG.watch(time.monotonic() + timeout) as watch:
                        response = started.answer(timeout, watch) if started is not None else None
                        started = None
                        if response is not None and 300 <= response.status < 400:  # urllib3 follows it
                            _read_prefix(response)  # and gives the connection back
                            response = None
                        if response is None:
                            response = self._pool.urlopen(
                                "POST", url, body=body, headers=self._headers, retries=_RETRIES,
                                timeout=timeout, preload_content=False,
                            )
                        prefix = _read_prefix(response)
                    if watch.cut:
                        raise ReadTimeoutError(self._pool, url, f"no whole answer within {timeout:.1f} s")
                except (_HTTPError, _NoPool) as exc:
                    result = SendResult(ok=False, detail=_describe(exc), retryable=True)
                    if _refused(exc) and settings.loopback(urlsplit(self.base).hostname or ""):
                        result.detail = "Connection refused: nothing listens there"
                        result.unreachable = True
                        result.attempts = attempt
                        result.retry_after = _BACKOFF_BASE_S
                        return result
                else:
                    result = _outcome(response, prefix)
                    wait = _retry_after(response)
            result.attempts = attempt
            if result.ok or not result.retryable:
                if not result.ok:  # once a minute per answer: a wrong key refuses every batch
                    self._log.error(
                        f"rejected-{result.status}", "Trubrics rejected %d events at /%s (HTTP %s): %s",
                        len(chunk), path, result.status, result.detail,
                    )
                return result
            if wait is None:
                step = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (attempt - 1))
                wait = step / 2 + random.uniform(0, step / 2)
            asked = wait
            if not self._sleep(wait, until):
                result.retry_after = asked
                self._logger.warning(
                    "Giving up on %d events at /%s for now after %d attempts: %s",
                    len(chunk), path, attempt, result.detail,
                )
                return result
            self.retries += 1

    def wait(self, seconds: float, until: Deadline) -> bool:
        """Wait ``seconds`` unless the deadline comes first (False) or :meth:`interrupt`."""
        return self._sleep(seconds, until)

    def _sleep(self, seconds: float, until: Deadline) -> bool:
        """Wait ``seconds``; False as soon as the (possibly moved) deadline comes first."""
        resume = time.monotonic() + seconds
        while (left := resume - time.monotonic()) > 0:
            if resume >= until():
                return False
            self._wake.wait(left)
            self._wake.clear()
        return resume < until()


@contextmanager
def our_own_calls() -> Iterator[None]:
    """Instrumentation suppressed for the block: our own HTTP calls never become the app's
    spans (the requests, urllib3 and httpx instrumentations honour the key)."""
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


def config_error(url: str, api_key: str, host_argument: str | None = None,
                 allow_insecure: bool | None = None) -> str | None:
    """Why nothing can be sent at all with this host (``host_argument`` when given in code,
    else ``TRUBRICS_HOST``) and key, or None: no key, or :func:`settings.host_refusal`."""
    if not api_key:
        return "no Trubrics API key: pass api_key= or set TRUBRICS_API_KEY"
    return settings.host_refusal(url, host_argument, "host", allow_insecure)


def _refused(exc: BaseException) -> bool:
    """Whether a connection error was a refusal, however deeply urllib3 wraps it (an
    ``ssl.SSLError``'s ``reason`` is a string, not an exception)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError):
            return True
        todo += [error.__cause__, error.__context__, getattr(error, "reason", None)]
        todo += [arg for arg in error.args if isinstance(arg, BaseException)]
    return False


class _NoPool(Exception):
    """No connection pool could be made for the host's proxy (a SOCKS proxy without PySocks)."""


def _pool(base: str) -> tuple[urllib3.PoolManager | None, str | None]:
    """The keep-alive pools for ``base``, through the proxy the environment names for it
    (read once, here, with ``requests``' own rules); or None and why, when that proxy cannot
    be used (every send then fails, retryable: spooled)."""
    from requests.utils import get_auth_from_url, get_environ_proxies

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle is None:
        import certifi

        bundle = certifi.where()
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    tls["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
    proxies = get_environ_proxies(base)
    proxy = proxies.get(urlsplit(base).scheme) or proxies.get("all")
    if not proxy:
        return watched(urllib3.PoolManager(maxsize=8, **tls)), None
    if "://" not in proxy:
        proxy = "http://" + proxy
    if proxy.startswith("socks"):
        try:
            with warnings.catch_warnings():  # urllib3 warns too; the detail below says it better
                warnings.simplefilter("ignore")
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            return None, f"the SOCKS proxy {urlsplit(proxy).hostname} needs PySocks: pip install pysocks"
        return SOCKSProxyManager(proxy, maxsize=8, **tls), None
    username, password = get_auth_from_url(proxy)
    auth = urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
    return watched(urllib3.ProxyManager(proxy, maxsize=8, proxy_headers=auth, **tls)), None


def _read_prefix(response: urllib3.BaseHTTPResponse) -> bytes:
    """At most :data:`MAX_RESPONSE_BYTES` of the body; the connection goes back to the pool
    only when the body ended there, else it is closed (the rest is never read)."""
    try:
        prefix = response.read(MAX_RESPONSE_BYTES + 1)
        if len(prefix) > MAX_RESPONSE_BYTES or not response.isclosed():
            response.close()
            prefix = prefix[:MAX_RESPONSE_BYTES]
    except (_HTTPError, OSError):  # the answer (status, headers) came: a broken body is no failure
        response.close()
        prefix = b""
    response.release_conn()
    return prefix


def _outcome(response: urllib3.BaseHTTPResponse, body: bytes) -> SendResult:
    if 200 <= response.status < 300:
        return SendResult(ok=True, status=response.status)
    return SendResult(
        ok=False,
        status=response.status,
        detail=_detail(body),
        retryable=response.status in _RETRYABLE_STATUS,
    )


def _detail(body: bytes) -> str:
    text = body[:2000].decode("utf-8", "replace")
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    return detail if isinstance(detail, str) else json.dumps(detail)


def _retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), at most :data:`MAX_RETRY_AFTER_S`."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def _describe(exc: Exception) -> str:
    """The error's class and reason, without request headers (they hold the key)."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # the connection error itself, not urllib3's wrapper around it
    return f"{type(exc).__name__}: {exc}"
