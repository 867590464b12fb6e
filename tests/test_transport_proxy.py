"""Deliveries go through the proxy the environment names, as ``requests`` would send them.

Companies reach Trubrics through an outbound proxy (``HTTPS_PROXY`` / ``HTTP_PROXY``,
``NO_PROXY``). The transport reads the environment once and reuses a prepared request per
URL; this holds that both still reach the proxy, key and body intact.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from loopback_server import LoopbackServer

from trubrics_otel.deliver.transport import EVENTS_PATH, Transport


class ForwardProxy(LoopbackServer):
    """An HTTP proxy that answers every request itself (200) and records what it was asked."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, list]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.seen.append((self.path, self.headers.get("x-api-key"), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.mark.parametrize("no_proxy, through_proxy", [("", True), ("trubrics.invalid", False)])
def test_events_go_through_the_environments_proxy(monkeypatch, no_proxy, through_proxy):
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        transport = Transport("http://trubrics.invalid/api", "k-proxy", timeout=1)
        try:
            for n in range(3 if through_proxy else 1):  # the prepared request is reused: each goes through
                result = transport.send(EVENTS_PATH, [{"event": f"e{n}"}], deadline=time.monotonic() + 0.3)
                assert result.ok is through_proxy
        finally:
            transport.close()
    if through_proxy:
        assert proxy.seen == [("http://trubrics.invalid/api/publish_events", "k-proxy", [{"event": f"e{n}"}])
                              for n in range(3)]
    else:  # trubrics.invalid does not resolve: the direct attempt fails, the proxy saw nothing
        assert proxy.seen == []
