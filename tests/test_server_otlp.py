"""``POST /v1/traces`` on the local server: OTLP spans become the same Trubrics events."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from trubrics_otel import semconv as sc
from trubrics_otel.server import LocalServer


@pytest.fixture
def server(db_url):
    with LocalServer(db_url) as server:  # each engine (conftest)
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


def test_metrics_and_logs_sent_beside_traces_are_answered_ok_and_dropped(server):
    """An app exporting every signal to the server (``OTEL_EXPORTER_OTLP_ENDPOINT`` at it) logs
    no "Failed to export metrics batch code: 404" for the two it does not store."""
    otlp_metrics = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.metric_exporter")
    import requests
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader]).get_meter("app").create_counter("calls").add(1)
    exporter = otlp_metrics.OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics")
    assert exporter.export(reader.get_metrics_data()) == MetricExportResult.SUCCESS
    for content_type, body in (("application/x-protobuf", ExportLogsServiceRequest().SerializeToString()),
                               ("application/json", b"{}")):
        answer = requests.post(f"{server.url}/v1/logs", data=body, headers={"Content-Type": content_type}, timeout=10)
        assert (answer.status_code, answer.headers["Content-Type"]) == (200, content_type), answer.text
    assert server.store.count()["events"] == 0


def test_a_nan_attribute_is_stored_as_null_and_said_so(server, caplog):
    """The redaction policy's encoding of the properties is what validation reads: a NaN (which
    that encoding writes as null) must still be found, stored as null and named in the log."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_otlp
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("app").start_as_current_span("chat gpt-4o", attributes={
        sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.USER_ID: "nan-user",
        sc.GEN_AI_CONVERSATION_ID: "nan-thread", "gen_ai.request.temperature": float("nan"),
        sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
    }):
        pass
    with caplog.at_level("WARNING", logger="trubrics.server"):
        answer = server.ingest_otlp(to_otlp(memory.get_finished_spans()).SerializeToString(),
                                    "application/x-protobuf")
    assert answer.status == 200
    assert "number out of range (infinite or NaN): stored as null" in caplog.text
    [turn] = server.store.thread("nan-thread")
    assert turn["prompt"] == "Hi"
    assert "temperature" in turn["properties"] and turn["properties"]["temperature"] is None


def test_each_span_of_a_request_is_stored_with_its_own_properties(server):
    """The properties' JSON the redaction policy wrote is the JSON stored: each span's own."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_otlp
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(4):
        with provider.get_tracer("app").start_as_current_span("chat gpt-4o", attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.USER_ID: "u",
            sc.GEN_AI_CONVERSATION_ID: "own-thread",
            sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"q{i}"}]}]),
        }):
            pass
    spans = memory.get_finished_spans()
    answer = server.ingest_otlp(to_otlp(spans).SerializeToString(), "application/x-protobuf")
    assert answer.status == 200
    stored = {t["prompt"]: t["properties"]["$span_id"] for t in server.store.thread("own-thread")}
    assert stored == {f"q{i}": f"{span.context.span_id:016x}" for i, span in enumerate(spans)}
