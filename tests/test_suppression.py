"""Our own POSTs to Trubrics are never an app's spans, with HTTP instrumentation really on.

With ``opentelemetry-instrumentation-requests`` / ``-urllib3`` active, every request our
export, replay and sync paths make would otherwise become a span in the app's provider, and
with ``all_spans=True`` an event, whose delivery is another span, and so on without end.
Each path sets OpenTelemetry's suppress-instrumentation flag around its request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import API_KEY
from fake_openai import FakeOpenAI
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from trubrics_endpoint import TrubricsEndpoint

from trubrics_otel import Trubrics, configure

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


@pytest.fixture
def instrumented() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An app's provider, with requests and urllib3 instrumented into it."""
    provider = TracerProvider()
    recorded = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    RequestsInstrumentor().instrument(tracer_provider=provider)
    URLLib3Instrumentor().instrument(tracer_provider=provider)
    try:
        yield provider, recorded
    finally:
        RequestsInstrumentor().uninstrument()
        URLLib3Instrumentor().uninstrument()
        provider.shutdown()


def _our_requests(recorded: InMemorySpanExporter) -> list[str]:
    """Spans the instrumentation made of requests to the ingestion API."""
    return [
        span.name for span in recorded.get_finished_spans()
        if "publish_" in str(span.attributes.get("url.full") or span.attributes.get("http.url"))
    ]


def test_export_replay_and_sync_requests_are_not_spans(instrumented, endpoint):
    provider, recorded = instrumented
    exporter = configure(
        tracer_provider=provider, api_key=API_KEY, host=endpoint.url, all_spans=True,
        schedule_delay_millis=50,
    )
    client = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05)
    endpoint.fail_for(1.5)  # the first batches are spooled, then sent by the replay thread
    with provider.get_tracer("app").start_as_current_span("work"):
        requests.post(f"{endpoint.url}/elsewhere", json=[], timeout=5)  # the app's own: traced
    client.track(user_id="u", event="batched")
    time.sleep(2.0)
    assert client.track_sync(user_id="u", event="synchronous").delivered  # on this thread
    assert client.flush(timeout=30) == 0
    provider.force_flush()
    assert exporter.force_flush(30_000)
    assert endpoint.wait_for_events(4) >= 4
    time.sleep(0.5)  # a feedback loop would keep sending; give it the chance
    client.close()
    assert exporter.stats()["replayed"] > 0  # the replay thread did send
    app_requests = [s.name for s in recorded.get_finished_spans() if s.name.startswith("POST")]
    assert app_requests == ["POST"]  # the instrumentation is live: the app's call is a span
    assert _our_requests(recorded) == []
    names = sorted(e["event"] for e in endpoint.events())
    assert names == ["POST", "batched", "synchronous", "work"]  # no event about our own POSTs


ZERO_CODE_APP = """
import openai, sys, time
from opentelemetry import trace
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-fake", max_retries=0)
client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
)
for _ in range(10):  # a long-running app: the exporter runs while the app still records spans
    trace.get_tracer_provider().force_flush()
    time.sleep(0.4)
"""


def test_under_opentelemetry_instrument_with_all_spans_nothing_feeds_back(tmp_path):
    """requests and urllib3 are installed, so the launcher instruments both. The SDK's batch
    processor already suppresses instrumentation around ``export()``; our replay thread is on
    its own, so the endpoint fails at first and the events go out from the spool."""
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_"))}
    env["TRUBRICS_SPOOL"] = str(tmp_path / "spool")
    with FakeOpenAI() as fake, TrubricsEndpoint(api_key="sk-zero") as endpoint:
        env.update(OTEL_TRACES_EXPORTER="trubrics", TRUBRICS_API_KEY="sk-zero",
                   TRUBRICS_HOST=endpoint.url, TRUBRICS_ALL_SPANS="true")
        endpoint.reply(503, times=6)  # more than the first try makes in its 1 s: spooled
        done = subprocess.run([str(INSTRUMENT), sys.executable, str(app), fake.url], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(0.5)  # any late request would be a feedback loop still running
        events, llm_events = endpoint.events(), endpoint.events("publish_llm_events")
    assert "Failed to auto initialize" not in done.stderr
    assert len(llm_events) == 1  # three OpenAI instrumentations saw the one call: merged
    assert [e["event"] for e in events] == []  # no event about our own requests
