"""End to end through a real collector: app → rotel → bridge → Trubrics endpoint.

rotel is started from the shipped ``collector-config/rotel.env`` (ports, files and a 1 s
retry backoff overridden), on loopback, by each test, and always stopped.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from rotel_collector import Rotel, free_port
from test_bridge import llm_span
from trubrics_endpoint import TrubricsEndpoint
from trubrics_otel import Trubrics
from trubrics_otel.receive.bridge import Bridge

from conftest import API_KEY

FAST_RETRY = {
    "ROTEL_OTLP_EXPORTER_RETRY_INITIAL_BACKOFF": "1s",
    "ROTEL_OTLP_EXPORTER_RETRY_MAX_BACKOFF": "2s",
    "ROTEL_OTLP_EXPORTER_RETRY_MAX_ELAPSED_TIME": "120s",
}


def run_app(collector_url: str, direct_url: str, n_llm: int = 20, n_events: int = 10) -> int:
    """An app exporting plain OTLP to its collector: Trubrics.track / track_llm spans on the
    app's provider, spans written the way the OpenAI instrumentation writes them, and noise.
    Returns how many events should reach Trubrics."""
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{collector_url}/v1/traces"), schedule_delay_millis=50,
    ))
    # The Trubrics client also exports in-process to ``direct_url``: the same events by the
    # other road, to compare with what the bridge delivers.
    client = Trubrics(api_key=API_KEY, host=direct_url, flush_interval=0.05, tracer_provider=provider)
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    for i in range(n_events):
        client.track(user_id=f"u-{i % 3}", event="Clicked", properties={"n": i})
    client.track_llm(user_id="u-1", prompt="Hi", generation="Hello", assistant_id="gpt-4o", latency=0.5)
    for i in range(n_llm):
        with tracer.start_as_current_span("POST /chat"):  # not an event itself
            llm_span(tracer, i, user=f"u-{i % 3}")
    client.close(timeout=10)
    provider.shutdown()
    return n_events + 1 + n_llm


def span_ids(endpoint: TrubricsEndpoint) -> Counter:
    return Counter(
        e["properties"]["$span_id"]
        for path in ("publish_events", "publish_llm_events")
        for e in endpoint.events(path)
    )


@pytest.fixture
def bridge(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="127.0.0.1:0",
                timeout=1.0) as running:
        yield running


def rotel_to(bridge, protocol: str) -> tuple[str, dict[str, str]]:
    """The exporter URL and settings for rotel exporting to the bridge over ``protocol``."""
    if protocol == "grpc":  # rotel's default exporter protocol
        return f"http://{bridge.grpc_address}", {"ROTEL_OTLP_EXPORTER_PROTOCOL": "grpc"}
    return bridge.url, {"ROTEL_OTLP_EXPORTER_PROTOCOL": "http"}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_app_through_rotel_and_bridge_exactly_once(endpoint, bridge, tmp_path, protocol):
    url, settings = rotel_to(bridge, protocol)
    with TrubricsEndpoint() as direct, Rotel(url, tmp_path, **settings) as collector:
        expected = run_app(collector.otlp_http_url, direct.url)
        assert endpoint.wait_for_events(expected) == expected
        assert direct.wait_for_events(expected) == expected
        time.sleep(0.5)  # anything extra would arrive now
    via_bridge = span_ids(endpoint)
    assert set(via_bridge.values()) == {1}
    assert via_bridge == span_ids(direct)
    for path in ("publish_events", "publish_llm_events"):
        key = lambda e: e["properties"]["$span_id"]  # noqa: E731
        assert sorted(endpoint.events(path), key=key) == sorted(direct.events(path), key=key)
    assert {e["prompt"] for e in endpoint.events("publish_llm_events")} >= {"Hi", "question 0", "question 19"}
    assert all(r.headers["x-api-key"] == API_KEY for r in endpoint.requests)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_ten_second_trubrics_outage_loses_nothing(endpoint, bridge, tmp_path, protocol):
    """Trubrics fails for 10 s: the bridge answers 503 (gRPC: UNAVAILABLE with RetryInfo),
    rotel retries, and every event arrives exactly once after the outage."""
    endpoint.fail_for(10.0, status=503)
    url, settings = rotel_to(bridge, protocol)
    with Rotel(url, tmp_path, **FAST_RETRY, **settings) as collector, TrubricsEndpoint() as direct:
        expected = run_app(collector.otlp_http_url, direct.url)
        assert endpoint.wait_for_events(expected, timeout=60) == expected
        time.sleep(0.5)
    stats = bridge.stats()
    assert (stats.get("grpc_requests", 0) == stats["requests"]) == (protocol == "grpc")
    assert stats["answered_503"] >= 1
    assert stats["requests"] > stats["answered_503"]  # the collector came back with the data
    assert any(r.status == 503 for r in endpoint.requests)
    ids = span_ids(endpoint)
    assert sum(ids.values()) == expected and set(ids.values()) == {1}


def test_bridge_down_at_first_collector_holds_the_data(endpoint, tmp_path):
    """The bridge is not listening yet (connection refused): rotel keeps retrying, and
    everything arrives once the bridge is up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Rotel(url, tmp_path, **FAST_RETRY) as collector, TrubricsEndpoint() as direct:
        expected = run_app(collector.otlp_http_url, direct.url, n_llm=5, n_events=5)
        bridge = Bridge(host=endpoint.url, api_key=API_KEY, listen=f"127.0.0.1:{port}")
        starter = threading.Timer(3.0, bridge.start)
        starter.start()
        try:
            assert endpoint.wait_for_events(expected, timeout=60) == expected
        finally:
            starter.join()
            bridge.stop()
    assert set(span_ids(endpoint).values()) == {1}


@pytest.mark.parametrize("lib, content", [
    ("openai-v2", "span_only"), ("openllmetry", None), ("openinference", None),
])
def test_instrumented_app_through_rotel_matches_in_process(endpoint, bridge, tmp_path, lib, content):
    """Real third-party instrumentation around the real openai client: the app exports plain
    OTLP to rotel, and the bridge delivers the same events the in-process exporter does."""
    import os
    import subprocess
    import sys

    from fake_openai import FakeOpenAI
    from test_instrumentation import APP, stable

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_"))}
    env["TRUBRICS_SPOOL"] = str(tmp_path / "app-spool")  # never ~/.cache
    if content:
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = content

    def app(*target: str) -> None:
        done = subprocess.run([sys.executable, str(APP), "--lib", lib, "--openai-url", llm.url, *target],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    with FakeOpenAI() as llm, TrubricsEndpoint() as direct, Rotel(bridge.url, tmp_path) as collector:
        app("--trubrics-host", direct.url)
        expected = direct.count()
        assert expected >= 4  # chat, stream, error, tool call
        app("--otlp-endpoint", f"{collector.otlp_http_url}/v1/traces")
        assert endpoint.wait_for_events(expected) == expected
        time.sleep(0.5)
    assert set(span_ids(endpoint).values()) == {1}
    for path in ("publish_events", "publish_llm_events"):
        key = json.dumps
        via_bridge = sorted((stable(e) for e in endpoint.events(path)), key=key)
        in_process = sorted((stable(e) for e in direct.events(path)), key=key)
        assert via_bridge == in_process
    assert {e["user_id"] for e in endpoint.events("publish_llm_events")} == {"u1"}
