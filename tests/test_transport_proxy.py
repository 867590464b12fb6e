"""Deliveries go where ``requests`` would send them: through the environment's proxy, and
along redirects, with the API key kept from any other host.

Companies reach Trubrics through an outbound proxy (``HTTPS_PROXY`` / ``HTTP_PROXY``,
``NO_PROXY``, ``user:password@`` in the proxy URL). The transport reads the environment once
and keeps its connections; this holds that every request still reaches the proxy, key and
body intact.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler

import pytest
from loopback_server import LoopbackServer

from trubrics_otel.deliver.transport import EVENTS_PATH, Transport


class ForwardProxy(LoopbackServer):
    """An HTTP proxy that answers every request itself (200) and records what it was asked
    (with ``redirect_to``: answers 307 to that base URL instead, once per path)."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.seen: list[tuple[str, str | None, list]] = []
        self.proxy_auth: list[str | None] = []
        self.redirect_to = redirect_to

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.seen.append((self.path, self.headers.get("x-api-key"), json.loads(body)))
                proxy.proxy_auth.append(self.headers.get("Proxy-Authorization"))
                redirected = proxy.redirect_to and not self.path.startswith("/moved")
                self.send_response(307 if redirected else 200)
                if redirected:
                    self.send_header("Location", f"{proxy.redirect_to}/moved{self.path}")
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


def test_a_proxy_password_in_the_url_goes_to_the_proxy_only(monkeypatch):
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.replace("http://", "http://ops:s%40cret@"))
        monkeypatch.setenv("NO_PROXY", "")
        transport = Transport("http://trubrics.invalid/api", "k-proxy", timeout=1)
        try:
            assert transport.send(EVENTS_PATH, [{"event": "e"}], deadline=time.monotonic() + 0.3).ok
        finally:
            transport.close()
    assert proxy.proxy_auth == ["Basic " + base64.b64encode(b"ops:s@cret").decode()]
    assert "s@cret" not in repr(transport) and "k-proxy" not in repr(transport)


@pytest.mark.parametrize("same_origin", [True, False])
@pytest.mark.parametrize("written_first", [False, True])
def test_redirects_are_followed_and_the_key_never_goes_to_another_origin(monkeypatch, same_origin, written_first):
    """Also for a request written first and answered later (the export thread's): urllib3
    follows the redirect from the request sent again."""
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    with ForwardProxy() as other, ForwardProxy() as first:
        first.redirect_to = first.base_url if same_origin else other.base_url.replace("127.0.0.1", "localhost")
        transport = Transport(first.base_url + "/api", "k-secret", timeout=1)
        try:
            started = transport.start(EVENTS_PATH, [{"event": "e"}]) if written_first else None
            assert (started is not None) == written_first
            result = transport.send(EVENTS_PATH, [{"event": "e"}], deadline=time.monotonic() + 1, started=started)
        finally:
            transport.close()
    assert result.ok
    moved = ("/moved/api/publish_events", "k-secret" if same_origin else None, [{"event": "e"}])
    asked = [("/api/publish_events", "k-secret", [{"event": "e"}])] * (2 if written_first else 1)
    assert (first.seen + other.seen) == [*asked, moved]


def test_a_socks_proxy_without_pysocks_keeps_the_events_and_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "socks", None)  # as on a machine without PySocks
    monkeypatch.delitem(sys.modules, "urllib3.contrib.socks", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://ops:s3cret@proxy.invalid:1080")
    monkeypatch.setenv("NO_PROXY", "")
    transport = Transport("https://trubrics.invalid/api", "k-socks", timeout=1)
    try:
        result = transport.send(EVENTS_PATH, [{"event": "e"}], deadline=time.monotonic() + 0.3)
    finally:
        transport.close()
    assert not result.ok and result.retryable  # spooled for later, not dropped
    assert result.pending == [{"event": "e"}]
    assert "pip install pysocks" in result.detail and "s3cret" not in result.detail
