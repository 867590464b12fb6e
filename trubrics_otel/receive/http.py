"""The one HTTP/1.1 server of the OTLP receivers (the bridge's and the local server's), on waitress.

The application is a plain function from :class:`~trubrics_otel.receive.request.Request` to
:class:`~trubrics_otel.receive.request.Reply`; this layer does the framing, so every OTLP sender
gets in::

    def handle(request: Request) -> Reply:
        return Reply(200, b"{}", "application/json")

    refuse = lambda status, message, request: Reply(status, message.encode(), "text/plain")
    with HttpReceiver(handle, ("127.0.0.1", 0), max_body=32 << 20, refuse=refuse) as receiver:
        receiver.url            # http://127.0.0.1:<port>

What waitress does before ``handle`` is called (measured against uvicorn, hypercorn and aiohttp
in ``benchmarks/bench_http_servers.py``; the README says why waitress):

* reads each request whole on its one I/O thread, ``Content-Length`` or
  ``Transfer-Encoding: chunked``, answering ``100 Continue`` to ``Expect: 100-continue``;
* refuses a body past ``max_body`` with 413 as soon as the cap is passed (a sized one from
  its header, a chunked one while it arrives), and malformed chunking with 400;
* closes connections idle for ``client_timeout`` s;
* runs ``handle`` on a fixed pool of ``threads`` (the one idle last first): no thread per connection.

What this layer adds to waitress against hostile or broken clients (``tests/test_hostile_clients.py``):

* deadlines: the request line and headers must arrive within ``min(10, client_timeout)`` s and
  the whole request within ``2 * client_timeout`` s of its first byte, however slowly they
  trickle (waitress alone only closes connections that send nothing);
* at ``MAX_CONNECTIONS``, the connection whose unfinished request is oldest is shed to accept
  a new one, instead of new connections waiting in the kernel's queue behind tricklers;
* ``admit(request)`` (headers only, ``body`` empty) runs as soon as the headers are in, before
  any body is read: a refused request (say 401) never buffers its upload;
* bodies being received or waiting for a worker hold at most ``(threads + 1) * max_body``
  bytes together; past that, a new upload gets 503 with ``Retry-After``.

Then this layer undoes ``Content-Encoding`` (gzip, deflate) with the caps of
:func:`trubrics_otel.receive.otlp.decompress` (413 / 415 / 400 through ``refuse``), so ``handle``
sees the plain body, and turns an exception in ``handle`` into a 500.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import FixedStreamReceiver
from waitress.server import create_server
from waitress.task import Task, ThreadedTaskDispatcher
from waitress.utilities import RequestEntityTooLarge

from trubrics_otel.receive import otlp
from trubrics_otel.receive.request import Admit, Handler, Refuse, Reply, Request

DEFAULT_THREADS = 8
DEFAULT_CLIENT_TIMEOUT_S = 30
MAX_CONNECTIONS = 500  # beyond this, the oldest unfinished request's connection is shed
HEADER_DEADLINE_S = 10.0  # request line + headers, from the request's first byte
RETRY_AFTER_S = 1
RECV_BYTES = 256 << 10
"""Bytes asked of the socket per read: waitress's 8 KiB took ~110 turns of its I/O loop for a
batch of 512 spans (~900 KB), 2.1 ms of CPU a request; 0.9 ms with this and the next."""
BODY_IN_MEMORY = 4 << 20
"""A body up to this size is held in memory; waitress's 512 KiB sent such a batch to a
temporary file, written then read back."""


class HttpReceiver:
    """One listening socket, served on a background thread until :meth:`stop`."""

    def __init__(
        self,
        handle: Handler,
        listen: tuple[str, int] | socket.socket,
        *,
        max_body: int,
        refuse: Refuse,
        threads: int = DEFAULT_THREADS,
        client_timeout: float = DEFAULT_CLIENT_TIMEOUT_S,
        name: str = "trubrics-http",
        logger: logging.Logger | None = None,
        admit: Admit | None = None,
    ) -> None:
        self._handle = handle
        self._refuse = refuse
        self._admit = admit or (lambda request: None)
        self.max_body = max_body
        self.max_buffered = (threads + 1) * max_body
        self.header_deadline_s = min(HEADER_DEADLINE_S, client_timeout)
        self.request_deadline_s = 2 * client_timeout
        self._name = name
        self._logger = logger or logging.getLogger("trubrics.receive")
        timeout = max(1, round(client_timeout))
        # Binds now: a port in use fails here, in the caller's thread. A socket already listening
        # (several worker processes accepting from one port) is used as it is.
        where: dict[str, Any] = {"sockets": [listen]} if isinstance(listen, socket.socket) else {}
        if not where:
            if not 0 <= int(listen[1]) <= 65535:  # the socket layer would wrap 99999 to 34463
                raise OSError(f"cannot listen on {listen[0]}:{listen[1]}: a port is 0 to 65535")
            where = {"host": listen[0], "port": listen[1]}
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.queue_cv = _NewestFirst(dispatcher.lock)  # the threads start after the bind, below
        try:
            self._server = create_server(
                _no_wsgi, **where, threads=threads, ident="trubrics-otel",
                max_request_body_size=max_body + 1,  # waitress refuses at ``>=``
                channel_timeout=timeout, cleanup_interval=1,
                connection_limit=MAX_CONNECTIONS, asyncore_use_poll=True, expose_tracebacks=False,
                recv_bytes=RECV_BYTES, inbuf_overflow=BODY_IN_MEMORY, _dispatcher=dispatcher,
            )
        except OSError as exc:
            host, port = listen.getsockname()[:2] if isinstance(listen, socket.socket) else listen
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        dispatcher.set_thread_count(threads)  # what create_server does with its own dispatcher
        self._server.channel_class = _channel_for(refuse, self)
        idle_maintenance, accepting = self._server.maintenance, self._server.readable
        # instance attributes: create_server chooses the server's class, these two hooks extend it
        self._server.maintenance = lambda now: (self._close_stalled(now), idle_maintenance(now))
        self._server.readable = lambda: (self._shed_if_full(), accepting())[1]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self._server.effective_host}:{self.port}"

    def start(self) -> HttpReceiver:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.run, name=self._name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Let running requests finish (up to 5 s), then close every connection and the socket."""
        server, thread = self._server, self._thread
        self._thread = None
        # Workers first: one finishing a request wakes the I/O thread through the trigger
        # pipe, which must still be open then (else it writes to a closed, maybe reused, fd).
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        if thread is None:
            server.close()
            return
        server_map, trigger = server._map, server.trigger

        def close_all() -> None:  # runs on the I/O thread: waitress's map is not thread-safe
            for dispatcher in list(server_map.values()):
                if dispatcher is trigger:
                    trigger.del_channel()  # its pipe is closed below, once nobody can write to it
                elif dispatcher is server:
                    wasyncore.dispatcher.close(server)  # server.close() would close the trigger
                else:
                    dispatcher.close()

        # The loop may run close_all before pull_trigger's own write (woken by an earlier
        # byte): the pipe stays open until the loop has ended, so that write is harmless.
        trigger.pull_trigger(close_all)
        thread.join(timeout=10)
        trigger.close()

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- hostile clients (on the I/O thread, which owns waitress's channel map) --------------

    def _close_stalled(self, now: float) -> None:
        """Close connections whose request line + headers, or whole request, is past its deadline."""
        for channel in list(self._server.active_channels.values()):
            started = _unfinished_since(channel)
            if started is None:
                continue
            deadline = self.request_deadline_s if channel.request.headers_finished else self.header_deadline_s
            if now - started > deadline:
                self._logger.info("Closed a connection from %s: its request took over %.0f s to arrive",
                                  channel.addr[0] if channel.addr else "?", deadline)
                channel.will_close = True

    def _shed_if_full(self) -> None:
        """At the connection limit, shed the oldest unfinished request so a new client gets in."""
        server = self._server
        if len(server._map) < server.adj.connection_limit:
            return
        closing = 0
        oldest, oldest_started = None, float("inf")
        for channel in server.active_channels.values():
            if channel.will_close:
                closing += 1
                continue
            started = _unfinished_since(channel)
            if started is None and not channel.requests:  # idle keep-alive: shed as well
                started = channel.last_activity
            if started is not None and started < oldest_started:
                oldest, oldest_started = channel, started
        if oldest is not None and len(server._map) - closing >= server.adj.connection_limit:
            oldest.will_close = True
        server.in_connection_overflow = True  # so waitress does not warn at every shed (a flood)

    def _admit_headers(self, parser: _Parser, request: Request) -> Reply | None:
        """The application's check, then the buffering budget; before any body byte is read."""
        reply = self._admit(request)
        if reply is not None or parser.error is not None:
            return reply
        size = parser.content_length or (self.max_body if parser.chunked else 0)
        if not size:
            return None
        held = size
        for channel in self._server.active_channels.values():
            for other in (channel.request, *channel.requests):
                if other is not None and other is not parser and other.headers_finished and not other.error:
                    held += other.content_length or (self.max_body if other.chunked else 0)
        if held <= self.max_buffered:
            return None
        self._logger.warning("Refused an upload of %d bytes: %d bytes of requests already held",
                             size, held - size)
        reply = self._refuse(503, "too many uploads at once; retry shortly", request)
        reply.headers.setdefault("Retry-After", str(RETRY_AFTER_S))
        return reply

    # --- one request (on a worker thread) ------------------------------------------------

    def _answer(self, parser: _Parser) -> Reply:
        """The reply to a request ``admit`` let in from its headers: its body read and
        decompressed, then ``handle``; an exception in either (a bug of ours) is a 500."""
        request = parser.admitted
        try:
            reply = self._decoded(_with_body(parser, request))
        except Exception:  # a bug of ours: say so, and keep serving
            self._logger.exception("Failed on %s %s", request.method, request.path)
            reply = self._refuse(500, "internal error", request)
        return reply

    def _decoded(self, request: Request) -> Reply:
        encoding = request.header("content-encoding")
        if not request.body or encoding.strip().lower() in ("", "identity"):
            return self._handle(request)
        try:
            body = otlp.decompress(request.body, encoding, self.max_body)
        except otlp.OtlpDecodeError as exc:  # 400, 413 (too large), 415 (unknown type)
            return self._refuse(exc.status, str(exc), request)
        headers = {k: v for k, v in request.headers.items() if k != "content-encoding"}
        return self._handle(Request(request.method, request.path, request.query, headers, body))


class _Parser(HTTPRequestParser):
    """waitress's parser with these changes: the receiver's ``admit`` runs once the headers are
    in; a request already refused from its headers (by ``admit``, or a ``Content-Length`` over
    the cap) gets its answer instead of ``100 Continue``, so the client never starts the
    upload; a chunk announced bigger than the cap is refused at its size line, not after
    waiting for it; and framing errors (413, bad chunking) are worded by the application's
    ``refuse``, as its other errors are."""

    refuse: Refuse
    receiver: HttpReceiver
    admitted: Request
    """The request as its headers told it, once they are in (``_Task`` adds the body)."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        self.started = time.time()  # the request's first byte: its deadlines count from here

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if not self.chunked and 0 < self.content_length <= BODY_IN_MEMORY:
            self.body_rcv = FixedStreamReceiver(self.content_length, _Pieces())

    def received(self, data: bytes) -> int:
        was_in_headers = not self.headers_finished
        consumed = super().received(data)
        if was_in_headers and self.headers_finished and getattr(self.error, "code", 413) == 413:
            self.admitted = self._request()
            reply = self.receiver._admit_headers(self, self.admitted)  # who asks, before how much
            if reply is not None:
                self.error = _Worded(_Refused(reply.status), reply)
                self.completed = True
        chunks = self.body_rcv if self.chunked else None
        if (self.error is None and chunks is not None
                and self.body_bytes_received + chunks.chunk_remainder >= self.adj.max_request_body_size):
            self.error = RequestEntityTooLarge("a chunk over the limit")
            self.completed = True
        if self.error is not None and not isinstance(self.error, _Worded):
            max_body = self.adj.max_request_body_size - 1
            message = f"body over the {max_body}-byte limit" if self.error.code == 413 else self.error.body
            self.error = _Worded(self.error, type(self).refuse(self.error.code, message, self._request()))
        if self.error is not None:
            self.expect_continue = False
        return consumed

    def _request(self) -> Request:
        """The request as known from its headers (no body yet)."""
        headers = {k.replace("_", "-").lower(): v for k, v in self.headers.items()}
        query = {k: v[-1] for k, v in parse_qs(self.query).items()} if self.query else {}
        path = urlsplit(getattr(self, "request_uri", "") or "/").path  # as sent: not percent-decoded
        return Request(self.command or "POST", path or "/", query, headers, b"")


class _Pieces:
    """A sized body as the pieces it arrived in, joined when it is read: one piece (a body read
    with its headers or in one read) is not copied at all, where waitress's buffer copied every
    body into a ``BytesIO`` (~8 µs per 210 KB) and copied it again each time that grew."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0

    def append(self, data: bytes) -> None:
        self._pieces.append(data)
        self._size += len(data)

    def __len__(self) -> int:
        return self._size

    def getfile(self) -> BytesIO:
        joined = b"".join(self._pieces)
        self._pieces = [joined]
        return BytesIO(joined)  # which shares ``joined`` until written to: getvalue() returns it

    def close(self) -> None:
        self._pieces, self._size = [], 0


class _Refused:
    """An application's refusal of a request from its headers, in waitress's error shape."""

    def __init__(self, status: int) -> None:
        self.code, self.reason = status, _phrase(status)


class _Worded:
    """A waitress error answered with the application's reply."""

    def __init__(self, error: Any, reply: Reply) -> None:
        self.code, self.reason, self._reply = error.code, error.reason, reply

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", self._reply.content_type), *self._reply.headers.items()]
        return f"{self.code} {self.reason}", headers, self._reply.body


class _NewestFirst(threading.Condition):
    """waitress's workers wait on this: it wakes the thread idle last, not the one idle longest
    (the stdlib's), so one client's requests no longer go round all the threads, each with its
    own SQLite connection whose page cache the others' commits emptied, and its own heap."""

    def notify(self, n: int = 1) -> None:
        rotate = getattr(getattr(self, "_waiters", None), "rotate", None)  # CPython's deque, oldest first
        if rotate is not None:
            rotate(n)
        super().notify(n)


class _Channel(HTTPChannel):
    """waitress's channel, not polled for writing while a worker writes the answer.

    A worker sends its answer itself as it writes it (waitress's ``send_bytes=1``), holding the
    buffer's lock; waitress's ``writable`` is true meanwhile, so the I/O thread spun on ``poll``
    and a failed try of that lock until the task ended: ~30 turns a request, up to ~1 ms of CPU
    when the workers wait for the GIL. Now the I/O thread sends only what is left when the task
    ends (which pulls the trigger), or when the buffer passes the high-water mark (the worker
    then waits for it)."""

    def writable(self) -> bool:
        if self.requests and not self.will_close and self.total_outbufs_len < self.adj.outbuf_high_watermark:
            return False
        return bool(super().writable())


class _Task(Task):
    """Answers a request with the receiver's :class:`Reply`, in one write (status line, headers
    and body): no WSGI environ, ``start_response`` or proxy-header middleware (we read no
    ``Forwarded`` header), and the headers are not read twice: the request was built from them
    when they arrived, for ``admit``. With the body kept as received (``_Pieces``), a request
    to ``serve`` costs 142 µs of server CPU instead of 177 with a small body, 164 instead of 219
    with 210 KB (``benchmarks/bench_http_request.py``). waitress's ``Task`` still decides
    keep-alive and writes Date and Server."""

    request: _Parser

    def execute(self) -> None:
        reply = self.request.receiver._answer(self.request)
        body = reply.body
        self.status = f"{reply.status} {_phrase(reply.status)}"
        self.response_headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(body))),
                                 *reply.headers.items()]
        self.content_length = len(body)
        self.complete = True
        head = self.build_response_header()
        self.wrote_header = True
        if not self.has_body:  # 1xx, 204, 304
            body = b""
        self.content_bytes_written = len(body)
        self.channel.write_soon(head + body)


def _channel_for(refuse: Refuse, receiver: HttpReceiver) -> type[HTTPChannel]:
    parser = type("Parser", (_Parser,), {"refuse": staticmethod(refuse), "receiver": receiver})
    return type("Channel", (_Channel,), {"parser_class": parser, "task_class": _Task})


def _unfinished_since(channel: Any) -> float | None:
    """When the request a connection is still sending began; None when it is not sending one."""
    request = channel.request
    if request is None or request.completed or channel.requests or channel.will_close:
        return None
    return float(getattr(request, "started", channel.last_activity))


def _with_body(parser: _Parser, request: Request) -> Request:
    """``request`` (from the headers) with the body the parser received."""
    stream = parser.get_body_stream()
    body = stream.getvalue() if isinstance(stream, BytesIO) else stream.read()  # getvalue: no copy
    headers = request.headers
    if parser.chunked:  # waitress counted the de-chunked body
        headers = {**headers, "content-length": str(len(body))}
    return Request(request.method, request.path, request.query, headers, body)


def _no_wsgi(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """waitress wants an application; ``_Task`` answers every request without it."""
    raise AssertionError("requests are answered by _Task")


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _phrase(status: int) -> str:
    return _PHRASES.get(status, "Unknown")
