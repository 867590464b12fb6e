"""The one HTTP/1.1 server of the OTLP receivers (the bridge's and the local server's), on waitress.

The application is a plain function from :class:`Request` to :class:`Reply`; this layer does
the framing, so every OTLP sender gets in::

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
* closes connections idle or stalled (mid-headers or mid-body) for ``client_timeout`` s;
* runs ``handle`` on a fixed pool of ``threads``: never a thread per connection.

Then this layer undoes ``Content-Encoding`` (gzip, deflate) with the caps of
:func:`trubrics_otel.receive.otlp.decompress` (413 / 415 / 400 through ``refuse``), so ``handle``
sees the plain body, and turns an exception in ``handle`` into a 500.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server
from waitress.utilities import RequestEntityTooLarge

from trubrics_otel.receive import otlp

DEFAULT_THREADS = 8
DEFAULT_CLIENT_TIMEOUT_S = 30
MAX_CONNECTIONS = 500  # beyond this, new connections wait in the kernel's accept queue


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Still percent-encoded, as sent."""
    query: Mapping[str, str]
    """The last value of each query parameter."""
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes
    """De-chunked and decompressed."""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = otlp.PROTOBUF
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""
    """Why, for an error: protocols that carry it apart from the body (gRPC) use it."""


Handler = Callable[[Request], Reply]
Refuse = Callable[[int, str, Request], Reply]
"""How the application words an error: ``refuse(status, message, request)``."""


class HttpReceiver:
    """One listening socket, served on a background thread until :meth:`stop`."""

    def __init__(
        self,
        handle: Handler,
        listen: tuple[str, int],
        *,
        max_body: int,
        refuse: Refuse,
        threads: int = DEFAULT_THREADS,
        client_timeout: float = DEFAULT_CLIENT_TIMEOUT_S,
        name: str = "trubrics-http",
        logger: logging.Logger | None = None,
    ) -> None:
        self._handle = handle
        self._refuse = refuse
        self.max_body = max_body
        self._name = name
        self._logger = logger or logging.getLogger("trubrics.receive")
        timeout = max(1, round(client_timeout))
        # Binds now: a port in use fails here, in the caller's thread.
        if not 0 <= int(listen[1]) <= 65535:  # the socket layer would wrap 99999 to 34463
            raise OSError(f"cannot listen on {listen[0]}:{listen[1]}: a port is 0 to 65535")
        try:
            self._server = create_server(
                self._wsgi, host=listen[0], port=listen[1], threads=threads, ident="trubrics-otel",
                max_request_body_size=max_body + 1,  # waitress refuses at ``>=``
                channel_timeout=timeout, cleanup_interval=max(1, min(30, timeout // 2)),
                connection_limit=MAX_CONNECTIONS, asyncore_use_poll=True, expose_tracebacks=False,
            )
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}") from None
        self._server.channel_class = _channel_for(refuse)
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

    # --- one request (on a worker thread) ------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _request(environ)
        try:
            reply = self._decoded(request)
        except Exception:  # a bug of ours: say so, and keep serving
            self._logger.exception("Failed on %s %s", request.method, request.path)
            reply = self._refuse(500, "internal error", request)
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        headers.extend(reply.headers.items())
        start_response(f"{reply.status} {_phrase(reply.status)}", headers)
        return [reply.body]

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
    """waitress's parser with two changes: a request already refused from its headers (a
    ``Content-Length`` over the cap) gets its 413 instead of ``100 Continue``, so the client
    never starts the upload; a chunk announced bigger than the cap is refused at its size
    line, not after waiting for it; and framing errors (413, bad chunking) are worded by the
    application's ``refuse``, as its other errors are."""

    refuse: Refuse

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        chunks = self.body_rcv if self.chunked else None
        if (self.error is None and chunks is not None
                and self.body_bytes_received + chunks.chunk_remainder >= self.adj.max_request_body_size):
            self.error = RequestEntityTooLarge("a chunk over the limit")
            self.completed = True
        if self.error is not None and not isinstance(self.error, _Worded):
            self.expect_continue = False
            max_body = self.adj.max_request_body_size - 1
            message = f"body over the {max_body}-byte limit" if self.error.code == 413 else self.error.body
            headers = {k.replace("_", "-").lower(): v for k, v in self.headers.items()}
            request = Request(self.command or "POST", self.path or "/", {}, headers, b"")
            self.error = _Worded(self.error, type(self).refuse(self.error.code, message, request))
        return consumed


class _Worded:
    """A waitress error answered with the application's reply."""

    def __init__(self, error: Any, reply: Reply) -> None:
        self.code, self.reason, self._reply = error.code, error.reason, reply

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", self._reply.content_type), *self._reply.headers.items()]
        return f"{self.code} {self.reason}", headers, self._reply.body


def _channel_for(refuse: Refuse) -> type[HTTPChannel]:
    parser = type("Parser", (_Parser,), {"refuse": staticmethod(refuse)})
    return type("Channel", (HTTPChannel,), {"parser_class": parser})


def _request(environ: Mapping[str, Any]) -> Request:
    headers = {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    path = urlsplit(environ.get("REQUEST_URI") or "/").path  # as sent: PATH_INFO is decoded
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    return Request(environ["REQUEST_METHOD"], path or "/", query, headers, body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
