"""A stdlib HTTP server on 127.0.0.1 (a free port) in a background thread: the tests' fakes.

::

    class FakeThing(LoopbackServer):
        def handler(self) -> type[BaseHTTPRequestHandler]:
            return make_handler(self)      # a QuietHandler subclass

    with FakeThing() as fake:
        requests.post(fake.base_url + "/path", ...)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

Server = TypeVar("Server", bound="LoopbackServer")


class QuietHandler(BaseHTTPRequestHandler):
    """What every fake's request handler shares: HTTP/1.1 (keep-alive), no access log on stderr,
    and :meth:`read_body`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """The request body, framed by ``Content-Length`` or chunked (RFC 9112 §7.1)."""
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields, then the blank line that ends the message
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk


class LoopbackServer:
    _server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self: Server) -> Server:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self: Server) -> Server:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
