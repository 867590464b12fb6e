"""A Langfuse SDK pointed at us unchanged: OTLP at ``/api/public/otel/v1/traces`` with Basic auth.

The Langfuse SDK sends OTLP/HTTP protobuf to ``<LANGFUSE_HOST>/api/public/otel/v1/traces`` with
``Authorization: Basic base64(public:secret)`` (it uses OpenTelemetry's OTLP exporter): here the
same exporter, the same path and header, to ``serve`` and to the bridge, on 127.0.0.1. The
recorded Langfuse spans (``tests/fixtures/spans/langfuse-sdk``) are what it sends.
"""

from __future__ import annotations

import base64

import pytest
from conftest import API_KEY
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from span_fixtures import load
from trubrics_endpoint import TrubricsEndpoint

from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.server import LocalServer

PATH = "/api/public/otel/v1/traces"


def basic(public: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()}


def send(url: str, headers: dict[str, str]) -> SpanExportResult:
    exporter = OTLPSpanExporter(endpoint=url + PATH, headers=headers, timeout=5)
    try:
        return exporter.export(load("langfuse-sdk", "chat"))
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("secret, stored", [("local-key", 1), ("wrong-key", 0)])
def test_serve_takes_langfuse_otlp_with_the_secret_key_as_api_key(tmp_path, secret, stored) -> None:
    with LocalServer(tmp_path / "events.sqlite3", api_key="local-key") as server:
        result = send(server.url, basic("pk-lf-anything", secret))
        assert (result is SpanExportResult.SUCCESS) == bool(stored)
        assert len(server.store.thread("t-42")) == stored


def test_the_bridge_forwards_langfuse_otlp_with_the_secret_key_to_trubrics() -> None:
    with TrubricsEndpoint(api_key=API_KEY) as endpoint, Bridge(
        host=endpoint.url, listen="127.0.0.1:0", timeout=5.0
    ) as bridge:
        assert send(bridge.url, basic("pk-lf-anything", API_KEY)) is SpanExportResult.SUCCESS
        [event] = endpoint.events("publish_llm_events")
        assert (event["prompt"], event["properties"]["$source"]) == ("Say hello", "langfuse")
        assert send(bridge.url, basic("pk-lf-anything", "")) is SpanExportResult.FAILURE
