"""``POST /v1/traces`` on the local server: OTLP spans become the same Trubrics events."""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import pytest
import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from trubrics_otel import semconv as sc
from trubrics_otel.server import LocalServer

HAVE_DECODER = importlib.util.find_spec("trubrics_otel.otlp") is not None


@pytest.fixture
def server(tmp_path):
    with LocalServer(tmp_path / "events.sqlite3") as server:
        yield server


def chat_span(provider: TracerProvider, prompt: str, answer: str) -> None:
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.USER_ID: "otlp-user",
        sc.GEN_AI_CONVERSATION_ID: "otlp-thread",
        sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
        sc.GEN_AI_USAGE_INPUT_TOKENS: 11,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 22,
    }):
        pass


@pytest.mark.skipif(HAVE_DECODER, reason="the OTLP decoder is present")
def test_without_the_decoder_v1_traces_is_404(server):
    response = requests.post(f"{server.url}/v1/traces", data=b"",
                             headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert response.status_code == 404


def test_v1_traces_bodies_go_through_decoder_and_encoder(server, monkeypatch):
    """The route's wiring, with a decoder stand-in that returns spans the SDK recorded."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    chat_span(provider, "What is OTLP?", "A protocol.")
    seen = []

    def decode_request(body: bytes, content_type: str):
        seen.append((body, content_type))
        if body == b"broken":
            raise ValueError("truncated message")
        return list(recorded.get_finished_spans())

    monkeypatch.setitem(sys.modules, "trubrics_otel.otlp", types.SimpleNamespace(decode_request=decode_request))
    response = requests.post(f"{server.url}/v1/traces", data=b"\x0a\x00",
                             headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert seen == [(b"\x0a\x00", "application/x-protobuf")]
    [turn] = server.store.thread("otlp-thread")
    assert (turn["user_id"], turn["prompt"], turn["generation"], turn["model"]) == (
        "otlp-user", "What is OTLP?", "A protocol.", "gpt-4o")
    assert (turn["input_tokens"], turn["output_tokens"]) == (11, 22)
    # a retried export is stored once
    requests.post(f"{server.url}/v1/traces", data=b"\x0a\x00",
                  headers={"Content-Type": "application/json"}, timeout=10)
    assert len(server.store.thread("otlp-thread")) == 1
    bad = requests.post(f"{server.url}/v1/traces", data=b"broken",
                        headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert bad.status_code == 400 and "truncated" in bad.json()["detail"]


@pytest.mark.skipif(not HAVE_DECODER, reason="trubrics_otel.otlp (the OTLP decoder) is not merged yet")
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_an_otlp_exporter_can_point_straight_at_the_server(server, compression):
    otlp_http = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry.exporter.otlp.proto.http import Compression

    exporter = otlp_http.OTLPSpanExporter(endpoint=f"{server.url}/v1/traces",
                                          compression=Compression(compression))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chat_span(provider, "Hello over OTLP", "Hi!")
    provider.shutdown()
    [turn] = server.store.thread("otlp-thread")
    assert (turn["user_id"], turn["prompt"], turn["generation"]) == ("otlp-user", "Hello over OTLP", "Hi!")
