"""The HTTP plumbing shared by the fake LLM provider servers (Anthropic, Gemini, Bedrock).

Each fake subclasses :class:`FakeProviderServer` and implements ``answer(request)``; the base
runs a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port) and records every request::

    class FakeThing(FakeProviderServer):
        def answer(self, request: Request) -> Reply:
            return Reply.json(200, {"ok": True})

    with FakeThing() as server:
        requests.post(server.url + "/x", json={})
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_server import LoopbackServer, QuietHandler


@dataclass
class Request:
    """One request the fake received: method, path (query included), headers, decoded JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """What to send back: a whole body, or ``chunks`` written one by one (a stream)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterable[bytes] | None = None

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(
            status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()
        )

    @classmethod
    def stream(cls, content_type: str, chunks: Iterable[bytes], **headers: str) -> Reply:
        return cls(200, {"Content-Type": content_type, **headers}, chunks=chunks)


class FakeProviderServer(LoopbackServer):
    """A provider's API on 127.0.0.1; subclasses say what it answers."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def answer(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return self.base_url

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


def _handler_for(fake: FakeProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            raw = self.read_body()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = raw
            request = Request(
                "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            fake.requests.append(request)
            self._send(fake.answer(request))

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.chunks is None:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for chunk in reply.chunks:
                self.wfile.write(chunk)
                self.wfile.flush()

    return Handler
