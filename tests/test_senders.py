"""Real OTLP senders into both receivers (the bridge and ``serve``), and the redaction policy
applied the same way by the bridge as by the in-process exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_otlp
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_openai import FakeOpenAI
from test_bridge import llm_span
from test_instrumentation import ZERO_CODE_APP
from trubrics_endpoint import TrubricsEndpoint
from trubrics_otel import TrubricsSpanExporter
from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.settings import CAPTURE_CONTENT
from trubrics_otel.translate.jsonable import MAX_TEXT_CHARS
from trubrics_otel.translate.redaction import Policy

CAPTURE_CONTENT_ENV = CAPTURE_CONTENT.name
from trubrics_otel.server import LocalServer

from conftest import API_KEY

N_SPANS = 30


def exporter_for(protocol: str, http_url: str, grpc_address: str):
    import grpc

    if protocol == "grpc":
        return GrpcExporter(endpoint=f"http://{grpc_address}", insecure=True, compression=grpc.Compression.Gzip)
    return HttpExporter(endpoint=f"{http_url}/v1/traces", compression=HttpCompression.Gzip)


def send_spans(exporter, n: int = N_SPANS) -> None:
    """An app exporting ``n`` LLM spans (and as many plain spans) in batches, then shutting down."""
    provider = TracerProvider(resource=Resource.create({"service.name": "sender"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50, max_export_batch_size=7))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    for i in range(n):
        with tracer.start_as_current_span("POST /chat"):
            llm_span(tracer, i)
    provider.shutdown()  # flushes: every batch answered before this returns


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_python_otlp_exporter_to_the_bridge(endpoint, protocol):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="127.0.0.1:0") as bridge:
        send_spans(exporter_for(protocol, bridge.url, bridge.grpc_address))
        assert endpoint.wait_for_events(N_SPANS) == N_SPANS
    ids = Counter(e["properties"]["$span_id"] for e in endpoint.events("publish_llm_events"))
    assert len(ids) == N_SPANS and set(ids.values()) == {1}
    assert sorted(e["prompt"] for e in endpoint.events("publish_llm_events")) == sorted(
        f"question {i}" for i in range(N_SPANS))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_python_otlp_exporter_to_serve(tmp_path, protocol):
    with LocalServer(tmp_path / "e.sqlite3", grpc_port=0) as server:
        send_spans(exporter_for(protocol, server.url, f"127.0.0.1:{server.grpc_port}"))
        stored = requests.get(f"{server.url}/api/events", params={"limit": 1000}, timeout=10).json()
    assert len(stored) == N_SPANS
    assert sorted(e["prompt"] for e in stored) == sorted(f"question {i}" for i in range(N_SPANS))


def test_zero_code_app_with_default_otlp_settings_lands_in_serve(tmp_path):
    """``opentelemetry-instrument python app.py``: the default exporter is OTLP/gRPC (metrics
    and logs too); only the endpoint points at this test's port instead of 4317."""
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_"))}
    with FakeOpenAI() as fake, LocalServer(tmp_path / "e.sqlite3", grpc_port=0) as server:
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.grpc_port}",
                   OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
                   OTEL_METRIC_EXPORT_INTERVAL="200")  # metrics go out (and are dropped) before exit
        done = subprocess.run([str(instrument), sys.executable, str(app), fake.url],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        stored = server.store.events()
    assert "StatusCode" not in done.stderr and "Failed to export" not in done.stderr, done.stderr
    # one event per installed instrumentation library (three in the test environment)
    assert [(e["prompt"], e["generation"]) for e in stored] == [("Say hello", "Echo: Say hello")] * 3


# --- the same Policy on both roads -----------------------------------------------------------


HUGE = "x" * 1_000_000


def huge_spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with tracer.start_as_current_span("chat gpt-4o", attributes={
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": HUGE}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "mail me at a@b.example"}]}]),
        "user.id": "u-1", "customer.note": "call a@b.example " + HUGE,
    }):
        pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def mask(value):
    return json.loads(json.dumps(value).replace("a@b.example", "<email>"))


@pytest.mark.parametrize("content_env, use_mask", [(None, False), ("false", False), (None, True)])
def test_bridge_applies_the_exporters_policy(endpoint, monkeypatch, content_env, use_mask):
    """A 1,000,000-character prompt: cut to the same length, or sent as "" with content off,
    or masked: the bridge's events equal the in-process exporter's, from the same settings."""
    if content_env:
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, content_env)
    else:
        monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    spans = huge_spans()
    with TrubricsEndpoint() as direct:
        exporter = TrubricsSpanExporter(api_key=API_KEY, host=direct.url, mask=mask if use_mask else None)
        exporter.export(spans)
        exporter.shutdown()
        policy = Policy(mask=mask) if use_mask else None
        with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", policy=policy) as bridge:
            answer = requests.post(f"{bridge.url}/v1/traces", data=to_otlp(spans).SerializeToString(),
                                   headers={"Content-Type": "application/x-protobuf"}, timeout=60)
            assert answer.status_code == 200
        (via_bridge,) = endpoint.events("publish_llm_events")
        (in_process,) = direct.events("publish_llm_events")
    assert via_bridge == in_process
    if content_env == "false":
        assert via_bridge["prompt"] == via_bridge["generation"] == ""
    else:
        assert len(via_bridge["prompt"]) <= MAX_TEXT_CHARS and "[truncated" in via_bridge["prompt"]
    if use_mask:
        assert "a@b.example" not in json.dumps(via_bridge) and "<email>" in via_bridge["generation"]


def test_serve_applies_the_policy_to_otlp(tmp_path, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "false")
    with LocalServer(tmp_path / "e.sqlite3") as server:
        answer = requests.post(f"{server.url}/v1/traces", data=to_otlp(huge_spans()).SerializeToString(),
                               headers={"Content-Type": "application/x-protobuf"}, timeout=60)
        assert answer.status_code == 200
        (stored,) = server.store.events()
    assert stored["prompt"] == stored["generation"] == ""
    assert len(json.dumps(stored)) < 300_000
