"""track_sync / track_llm_sync, and sampling that keeps whole traces."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time

import pytest
from conftest import API_KEY
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from trubrics_otel import Trubrics, TrubricsSpanExporter, configure


def test_track_sync_returns_after_the_server_stored_it(make_client, endpoint):
    client = make_client(flush_interval=3600)
    client.track(user_id="u", event="batched")  # waits in the queue: sync must not flush it
    endpoint.reply(200, delay=0.5)  # a slow server: the call must wait for its answer
    result = client.track_sync(user_id="u", event="Checkout", properties={"total": 42})
    assert result.delivered and result.status == 200 and result.attempts == 1 and bool(result)
    stored = endpoint.events()
    assert [e["event"] for e in stored] == ["Checkout"]  # there already, and alone
    assert stored[0]["properties"]["total"] == 42

    llm = client.track_llm_sync(user_id="u", prompt="p", generation="g", assistant_id="m",
                                latency=0.3, thread_id="t")
    assert llm.delivered
    [event] = endpoint.events("publish_llm_events")
    assert (event["prompt"], event["assistant_id"], event["thread_id"], event["latency"]) == (
        "p", "m", "t", 0.3)
    client.flush(timeout=10)
    assert [e["event"] for e in endpoint.events()] == ["Checkout", "batched"]


def test_sync_and_batched_spans_are_the_same(make_client, endpoint):
    client = make_client()
    client.track_sync(user_id="u", event="e", properties={"a": [1, {"b": None}]})
    client.track(user_id="u", event="e", properties={"a": [1, {"b": None}]})
    client.flush(timeout=10)
    sync, batched = endpoint.events()
    for event in (sync, batched):
        del event["properties"]["$trace_id"], event["properties"]["$span_id"], event["timestamp"]
    assert sync == batched


def test_track_sync_401_names_status_and_detail_and_logs_once(make_client, endpoint, caplog):
    endpoint.reply(401, body={"detail": "Invalid API key"})
    client = make_client()
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        result = client.track_sync(user_id="u", event="e")
    assert (result.delivered, result.status, result.detail, result.queued) == (
        False, 401, "Invalid API key", False)
    assert [r.getMessage() for r in caplog.records].count(
        "Trubrics rejected 1 events at /publish_events (HTTP 401): Invalid API key") == 1
    assert len(caplog.records) == 1
    assert API_KEY not in caplog.text


def test_track_sync_honours_retry_after(make_client, endpoint):
    endpoint.reply(429, headers={"Retry-After": "1"})
    client = make_client()
    started = time.monotonic()
    result = client.track_sync(user_id="u", event="e", timeout=10)
    assert result.delivered and result.attempts == 2
    assert time.monotonic() - started >= 1.0


def test_track_sync_on_a_dead_endpoint_returns_in_time_and_keeps_the_event(make_client, endpoint):
    client = make_client(flush_interval=3600)
    comeback = endpoint.go_down_for(3.0)
    started = time.monotonic()
    result = client.track_sync(user_id="u", event="kept", timeout=1.0)
    elapsed = time.monotonic() - started
    assert not result.delivered and result.queued and result.status is None
    assert "Connection" in (result.detail or "")
    assert elapsed < 8  # bounded by its timeout (plus one request's connect), not the retry budget
    comeback.join(10)
    assert client.flush(timeout=20) == 0
    assert [e["event"] for e in endpoint.events()] == ["kept"]


def test_concurrent_track_sync_and_track_lose_nothing_and_send_nothing_twice(make_client, endpoint):
    client = make_client(flush_batch_size=50)
    results: list[bool] = []

    def sync_worker(n: int) -> None:
        for i in range(40):
            results.append(client.track_sync(user_id=f"s{n}", event="sync", properties={"i": i}).delivered)

    def batch_worker() -> None:
        for i in range(2000):
            client.track(user_id="b", event="batched", properties={"i": i})

    threads = [threading.Thread(target=sync_worker, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=batch_worker))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=30) == 0
    assert results == [True] * 320
    events = endpoint.events()
    ids = [(e["properties"]["$trace_id"], e["properties"]["$span_id"]) for e in events]
    assert len(ids) == len(set(ids)) == 320 + 2000
    assert collections.Counter(e["event"] for e in events) == {"sync": 320, "batched": 2000}


def test_invalid_input_to_track_sync_is_a_result_not_an_exception(make_client, endpoint):
    client = make_client()
    result = client.track_sync(user_id=None, event="e")  # type: ignore[arg-type]
    assert not result.delivered and "invalid" in (result.detail or "")
    assert endpoint.requests == []


# --- Sampling ------------------------------------------------------------------------------


def _instrumentation_traces(provider: TracerProvider, traces: int) -> None:
    """``traces`` traces of 3 LLM spans each (a parent call and two nested), like an agent.
    Each asks its own question: nested spans of one call would be merged into one event."""
    tracer = provider.get_tracer("some.instrumentation")

    def chat(question: str) -> dict[str, str]:
        return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                    {"type": "text", "content": question}]}])}

    for _ in range(traces):
        with tracer.start_as_current_span("chat m", attributes=chat("plan")):
            with tracer.start_as_current_span("chat m", attributes=chat("step 1")):
                pass
            with tracer.start_as_current_span("chat m", attributes=chat("step 2")):
                pass


def _per_trace(endpoint) -> collections.Counter[str]:
    return collections.Counter(e["properties"]["$trace_id"] for e in endpoint.events("publish_llm_events"))


@pytest.mark.parametrize("rate", [0.25, None])
def test_configure_sample_rate_keeps_whole_traces(endpoint, rate):
    provider = TracerProvider()
    exporter = configure(tracer_provider=provider, api_key=API_KEY, host=endpoint.url,
                         sample_rate=rate, schedule_delay_millis=50)
    _instrumentation_traces(provider, 4000)
    provider.force_flush()
    provider.shutdown()
    per_trace = _per_trace(endpoint)
    assert set(per_trace.values()) == {3}  # every kept trace arrived whole
    share = len(per_trace) / 4000
    if rate is None:
        assert share == 1.0
        assert exporter.stats()["sampled_out"] == 0
    else:
        assert 0.20 <= share <= 0.30
        assert exporter.stats()["sampled_out"] == (4000 - len(per_trace)) * 3


def test_standard_otel_sampler_variables_are_honoured(endpoint, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = TracerProvider()  # the app's provider samples by the same variables
    exporter = configure(tracer_provider=provider, api_key=API_KEY, host=endpoint.url,
                         schedule_delay_millis=50)
    _instrumentation_traces(provider, 2000)
    provider.shutdown()
    per_trace = _per_trace(endpoint)
    assert set(per_trace.values()) == {3}
    assert 0.18 <= len(per_trace) / 2000 <= 0.32
    # the app's sampler and ours agree by construction: nothing reached us that we dropped
    assert exporter.stats()["sampled_out"] == 0


def test_our_own_events_are_never_sampled_away_by_the_instrumentation_rate(endpoint):
    """An exporter sampling at 0 still sends what our client and tracing API recorded."""
    app = TracerProvider()
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url, sample_rate=0.0)
    app.add_span_processor(SimpleSpanProcessor(exporter))
    client = Trubrics(api_key=API_KEY, host="http://127.0.0.1:9", tracer_provider=app)
    for i in range(50):
        client.track(user_id="u", event=f"own {i}")  # recorded into the app's provider
    with client.trace("request", user_id="u"):
        client.event("step")
    _instrumentation_traces(app, 50)  # an instrumentation's spans: all sampled away
    names = [e["event"] for e in endpoint.events()]
    assert names == [f"own {i}" for i in range(50)] + ["step", "request"]
    assert endpoint.events("publish_llm_events") == []
    assert exporter.stats()["sampled_out"] == 150
    client._closed = True  # its own exporter points nowhere; nothing to flush there
    app.shutdown()


def test_event_level_sample_rate_is_off_by_default_and_decided_by_trace(make_client, endpoint):
    client = make_client(sample_rate=0.25, flush_batch_size=100)
    for i in range(4000):
        client.track(user_id="u", event="e", properties={"i": i})
    app = TracerProvider().get_tracer("app")
    for _ in range(200):  # events inside one request trace share its fate
        with app.start_as_current_span("request"):
            for _ in range(3):
                client.track(user_id="u", event="in-trace")
    client.flush(timeout=30)
    loose = [e for e in endpoint.events() if e["event"] == "e"]
    assert 0.20 <= len(loose) / 4000 <= 0.30
    in_trace = collections.Counter(e["properties"]["$trace_id"] for e in endpoint.events()
                                   if e["event"] == "in-trace")
    assert set(in_trace.values()) == {3}
    assert client.stats()["sampled_out"] == 4000 + 600 - len(endpoint.events())

    everything = Trubrics(api_key=API_KEY, host=endpoint.url)  # the default keeps every event
    for _ in range(300):
        everything.track(user_id="v", event="all")
    everything.close()
    assert sum(e["event"] == "all" for e in endpoint.events()) == 300


def test_configure_twice_on_one_provider_sends_each_event_once(endpoint):
    provider = TracerProvider()
    first = configure(tracer_provider=provider, api_key=API_KEY, host=endpoint.url)
    assert configure(tracer_provider=provider, api_key=API_KEY, host=endpoint.url) is first
    _instrumentation_traces(provider, 5)
    provider.shutdown()
    assert len(endpoint.events("publish_llm_events")) == 15
