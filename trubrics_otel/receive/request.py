"""What an OTLP receiver's application sees and answers, whatever the protocol (HTTP or gRPC),
and the API keys a request presents::

    def handle(request: Request) -> Reply:
        if not key_matches(b"secret", request.headers):   # x-api-key, Bearer or Basic
            return Reply(401, b"no key", "text/plain", message="no key")
        return Reply(200, b"{}", "application/json")

:mod:`~trubrics_otel.receive.http` serves such a handler on waitress; a gRPC receiver answers
with the same :class:`Reply` (:mod:`~trubrics_otel.receive.grpc`).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from trubrics_otel.receive import otlp


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

    def keys(self) -> list[str]:
        """The API keys this request presents: see :func:`presented_keys`."""
        return presented_keys(self.headers)


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """Every key a sender may present (lower-case header or gRPC metadata names): ``x-api-key``,
    ``Authorization: Bearer <key>``, and the password of ``Authorization: Basic``."""
    keys = [headers["x-api-key"]] if headers.get("x-api-key") else []
    scheme, _, credentials = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        keys.append(credentials.strip())
    elif scheme.lower() == "basic":
        try:
            password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            password = ""
        if password:
            keys.append(password)
    return keys


def key_matches(expected: bytes, headers: Mapping[str, str]) -> bool:
    """Whether one presented key equals ``expected`` (compared in constant time)."""
    return any(hmac.compare_digest(key.encode("utf-8"), expected) for key in presented_keys(headers))


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
Admit = Callable[[Request], "Reply | None"]
"""Called with the headers (``body`` empty) before the body is read: a Reply refuses the request."""
