"""A stdlib HTTP server on 127.0.0.1 (a free port) in a background thread: the tests' fakes.

::

    class FakeThing(LoopbackServer):
        def handler(self) -> type[BaseHTTPRequestHandler]:
            return make_handler(self)

    with FakeThing() as fake:
        requests.post(fake.base_url + "/path", ...)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

Server = TypeVar("Server", bound="LoopbackServer")


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
