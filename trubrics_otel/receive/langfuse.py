"""Langfuse's OTLP endpoint, so a team leaving Langfuse points its SDK here unchanged.

The Langfuse SDK (v3 and later) exports OTLP/HTTP to ``<LANGFUSE_HOST>/api/public/otel/v1/traces``
with ``Authorization: Basic base64(public key:secret key)``. ``trubrics-otel serve`` and the bridge
take that path as ``/v1/traces`` and the secret key as the API key::

    LANGFUSE_HOST=http://127.0.0.1:8787 LANGFUSE_PUBLIC_KEY=any LANGFUSE_SECRET_KEY=<api key>

    traces_path("/api/public/otel/v1/traces")          # "/v1/traces"
    api_key(request.headers)   # x-api-key, else the Basic auth password (the Langfuse secret key)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

TRACES_PATH = "/api/public/otel/v1/traces"


def traces_path(path: str) -> str:
    """``/v1/traces`` for Langfuse's OTLP path; any other path as it is."""
    return "/v1/traces" if path == TRACES_PATH else path


def api_key(headers: Mapping[str, str]) -> str | None:
    """The ``x-api-key`` of these (lower-cased) headers or gRPC metadata, else the secret key of
    a Basic ``Authorization``."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, colon, secret = decoded.partition(":")
    return secret if colon and secret else None
