"""Retries, outages, flush/close/exit, concurrency, providers, logging and the secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import API_KEY
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trubrics_otel import Trubrics, TrubricsSpanExporter

ROOT = Path(__file__).resolve().parent.parent


def _ids(endpoint, path="publish_events"):
    return [(e["properties"]["$trace_id"], e["properties"]["$span_id"]) for e in endpoint.events(path)]


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_transient_failures_are_retried(make_client, endpoint, status):
    endpoint.reply(status, body={"detail": "try later"}, times=2)
    client = make_client()
    client.track(user_id="u", event="e")
    assert client.flush(timeout=20) == 0
    assert [r.status for r in endpoint.requests] == [status, status, 200]
    assert len(endpoint.events()) == 1


def test_429_retry_after_is_honoured(make_client, endpoint):
    endpoint.reply(429, headers={"Retry-After": "1.5"})
    client = make_client()
    client.track(user_id="u", event="e")
    started = time.monotonic()
    assert client.flush(timeout=20) == 0
    # the single retry waited for what the server asked (backoff alone starts at ~0.25 s)
    assert time.monotonic() - started >= 1.5
    assert [r.status for r in endpoint.requests] == [429, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_permanent_failures_are_not_retried_and_logged(make_client, endpoint, caplog, status):
    endpoint.reply(status, body={"detail": f"server says no ({status})"})
    client = make_client()
    client.track(user_id="u", event="e")
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        assert client.flush(timeout=10) == 1  # refused for good: not delivered, never "success"
        assert client.flush(timeout=10) == 0  # ...and said once
    assert [r.status for r in endpoint.requests] == [status]
    assert f"server says no ({status})" in caplog.text
    assert caplog.text.count("refused by the server") == 1
    stats = client.stats()
    assert stats["rejected"] == 1 and stats["pending"] == 0 and stats["tracked"] == 1


def test_a_wrong_key_is_reported_once_however_many_batches_it_refuses(make_client, endpoint, caplog):
    endpoint.api_key = "the-right-key"
    client = make_client(flush_batch_size=10)
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        for i in range(100):
            client.track(user_id="u", event="e", properties={"i": i})
        assert client.flush(timeout=10) == 100
    assert client.stats()["rejected"] == 100
    assert caplog.text.count("Invalid API key") == 2  # the rejection, and flush's report of it


def test_dropped_connection_is_retried_and_delivered_once(make_client, endpoint):
    endpoint.reply(drop=True)
    client = make_client()
    client.track(user_id="u", event="e")
    assert client.flush(timeout=20) == 0
    assert len(endpoint.events()) == 1


HUNG_S = 5.0


def test_slow_endpoint_does_not_block_track(make_client, endpoint):
    """The worker holds its export lock for the whole hung request (5 s); track() must not
    wait on it. The bound (1 s) is a fifth of the hang: a call that waited on the worker
    would take seconds, while a slow machine's worst real call takes milliseconds."""
    endpoint.reply(delay=HUNG_S)
    client = make_client(flush_batch_size=1)
    client.track(user_id="u", event="first")  # the worker now waits on the slow reply
    time.sleep(0.2)
    worst = 0.0
    for i in range(2000):
        started = time.perf_counter()
        client.track(user_id="u", event="more", properties={"i": i})
        worst = max(worst, time.perf_counter() - started)
    print(f"worst track() while the endpoint hangs: {worst * 1e3:.2f} ms")
    assert worst < HUNG_S / 5
    assert client.flush(timeout=30) == 0
    assert len(endpoint.events()) == 2001


def test_no_loss_across_a_5s_outage(make_client, endpoint):
    client = make_client(flush_batch_size=50)
    for i in range(100):
        client.track(user_id="u", event="before", properties={"i": i})
    assert client.flush(timeout=10) == 0
    comeback = endpoint.go_down_for(5.0)  # connection refused for 5 s
    for i in range(1000):
        client.track(user_id="u", event="during", properties={"i": i})
        if i % 100 == 0:
            time.sleep(0.4)
    comeback.join(10)
    for i in range(100):
        client.track(user_id="u", event="after", properties={"i": i})
    assert client.flush(timeout=60) == 0
    names = [e["event"] for e in endpoint.events()]
    assert (names.count("before"), names.count("during"), names.count("after")) == (100, 1000, 100)
    assert len(set(_ids(endpoint))) == 1200  # exactly once
    assert client.stats()["spooled"] > 0  # the outage was met, and waited out on disk


def test_flush_timeout_reports_undelivered_and_keeps_them(make_client, endpoint):
    endpoint.fail_for(3600, status=503)  # down until healed, however slow the machine
    client = make_client(retry_timeout=60)
    for _ in range(5):
        client.track(user_id="u", event="e")
    started = time.monotonic()
    assert client.flush(timeout=1.0) == 5  # says how many were not delivered
    assert time.monotonic() - started < 10  # bounded by the timeout, not the retry budget
    endpoint.heal()
    assert client.flush(timeout=20) == 0  # the held events went out later
    assert len(endpoint.events()) == 5


def test_close_delivers_everything_and_is_idempotent(make_client, endpoint):
    client = make_client(flush_interval=60)
    for i in range(57):
        client.track(user_id="u", event="e", properties={"i": i})
    client.close()
    client.close()
    assert len(endpoint.events()) == 57
    client.track(user_id="u", event="after close")  # logged, never raised
    assert len(endpoint.events()) == 57


def test_close_is_bounded_on_a_dead_endpoint(caplog):
    client = Trubrics(api_key=API_KEY, host="http://127.0.0.1:9", retry_timeout=60)
    client.track(user_id="u", event="e")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client.close(timeout=2)
    assert time.monotonic() - started < 15
    assert "1 Trubrics events undelivered" in caplog.text


def _run_script(code: str, endpoint_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TRUBRICS_HOST=endpoint_url, TRUBRICS_API_KEY=API_KEY)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


def test_events_not_closed_are_flushed_at_exit(endpoint):
    """The official SDK loses these; we flush them from an exit hook."""
    result = _run_script(
        """
        from trubrics_otel import Trubrics
        t = Trubrics()              # key and host from the environment
        for i in range(30):
            t.track(user_id="u", event="exit", properties={"i": i})
        t.track_llm(user_id="u", prompt="p", generation="g")
        """,
        endpoint.url,
    )
    assert result.returncode == 0, result.stderr
    assert len(endpoint.events()) == 30
    assert len(endpoint.events("publish_llm_events")) == 1


def test_no_thread_before_first_use(endpoint):
    result = _run_script(
        """
        import threading
        from trubrics_otel import Trubrics
        before = threading.active_count()
        t = Trubrics()
        assert threading.active_count() == before, "a thread started in the constructor"
        t.track(user_id="u", event="e")
        assert threading.active_count() == before + 1
        t.close()
        """,
        endpoint.url,
    )
    assert result.returncode == 0, result.stderr


def test_concurrent_track_from_8_threads_loses_nothing(make_client, endpoint):
    client = make_client(flush_batch_size=100)
    per_thread = 2500

    def work(n: int) -> None:
        for i in range(per_thread):
            if i % 5 == 0:
                client.track_llm(user_id=f"u{n}", prompt="p", generation="g", properties={"i": i})
            else:
                client.track(user_id=f"u{n}", event="e", properties={"i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=60) == 0
    ids = _ids(endpoint) + _ids(endpoint, "publish_llm_events")
    assert len(ids) == len(set(ids)) == 8 * per_thread
    for n in range(8):
        got = sorted(e["properties"]["i"] for e in endpoint.events() + endpoint.events("publish_llm_events")
                     if e["user_id"] == f"u{n}")
        assert got == list(range(per_thread))


def test_tracer_provider_mode_records_into_the_apps_provider(make_client, endpoint):
    app_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_spans))
    client = make_client(tracer_provider=provider)
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /chat") as request_span:
        client.track(user_id="u", event="Chat opened", properties={"k": "v"})
        client.track_llm(user_id="u", prompt="p", generation="g", assistant_id="m", latency=0.2)
    client.flush(timeout=10)

    names = [s.name for s in app_spans.get_finished_spans()]
    assert names == ["Chat opened", "chat m", "GET /chat"]  # the app's exporters see our spans
    [event] = endpoint.events()
    [llm] = endpoint.events("publish_llm_events")
    assert event["event"] == "Chat opened" and llm["latency"] == pytest.approx(0.2)
    # they joined the app's trace; the app's own HTTP span was not sent to Trubrics
    trace_id = f"{request_span.get_span_context().trace_id:032x}"
    assert event["properties"]["$trace_id"] == llm["properties"]["$trace_id"] == trace_id
    assert event["properties"]["$parent_span_id"] == f"{request_span.get_span_context().span_id:016x}"
    assert endpoint.count() == 2


def test_private_provider_never_ships_the_apps_spans(make_client, endpoint):
    provider = TracerProvider()
    client = make_client()
    client.track(user_id="u", event="before")  # starts the export thread: the fast path is on
    with provider.get_tracer("app").start_as_current_span("GET /chat") as request:
        client.track(user_id="u", event="inside")
    client.flush(timeout=10)
    assert sorted(e["event"] for e in endpoint.events()) == ["before", "inside"]
    # ...but the event joins the app's trace, under its span (the fast path steps aside)
    [event] = [e for e in endpoint.events() if e["event"] == "inside"]
    assert event["properties"]["$trace_id"] == f"{request.get_span_context().trace_id:032x}"
    assert event["properties"]["$parent_span_id"] == f"{request.get_span_context().span_id:016x}"


def test_bad_input_is_logged_and_skipped_never_raised(make_client, endpoint, caplog):
    client = make_client()
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client.track(user_id=None, event="e")  # type: ignore[arg-type]
        client.track(user_id="u", event={"not": "a name"})  # type: ignore[arg-type]
        client.track(user_id="", event="e")
        client.track_llm(user_id=["x"], prompt="p", generation="g")  # type: ignore[arg-type]
        client.track(user_id=42, event="int ids are accepted")  # type: ignore[arg-type]
        client.track(user_id="u", event="good")
    client.flush(timeout=10)
    assert [(e["user_id"], e["event"]) for e in endpoint.events()] == [
        ("42", "int ids are accepted"), ("u", "good")]
    assert caplog.text.count("skipped") == 4


def test_custom_logger_and_the_key_never_leaks(endpoint):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("my-app.analytics")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    endpoint.reply(401, body={"detail": "Invalid API key"})
    endpoint.reply(503, times=2)
    client = Trubrics(api_key=API_KEY, host=endpoint.url, logger=logger, flush_interval=0.05)
    client.track(user_id="u", event="e")
    client.flush(timeout=10)
    client.track(user_id="u", event="e2")
    client.flush(timeout=10)
    dead = Trubrics(api_key=API_KEY, host="http://127.0.0.1:9", logger=logger, retry_timeout=0.5)
    dead.track(user_id="u", event="e")
    dead.close(timeout=2)
    client.close()

    text = "\n".join(r.getMessage() + str(r.exc_info or "") for r in records)
    assert "Invalid API key" in text  # the server's detail is logged…
    assert API_KEY not in text  # …the key never is
    for shown in (repr(client), str(client), repr(dead), repr(TrubricsSpanExporter(api_key=API_KEY))):
        assert API_KEY not in shown
    assert API_KEY not in repr(vars(client))  # not even in the instance's plain attributes


def test_default_logger_is_trubrics_at_error_and_root_untouched(endpoint):
    result = _run_script(
        """
        import logging
        import trubrics_otel
        assert logging.getLogger("trubrics").getEffectiveLevel() == logging.ERROR
        assert logging.getLogger().handlers == [] and logging.getLogger().level == logging.WARNING
        """,
        endpoint.url,
    )
    assert result.returncode == 0, result.stderr


def test_the_fast_path_reads_the_current_context_as_the_api_does(monkeypatch):
    """It reads the standard runtime context's variable directly; with any other runtime
    context (``OTEL_PYTHON_CONTEXT``) it asks the API, so a span is never missed."""
    from opentelemetry import context as context_api

    from trubrics_otel.capture.fast_path import _current_context_getter

    with TracerProvider().get_tracer("app").start_as_current_span("request"):
        assert _current_context_getter()() is context_api.get_current()

    class OtherRuntime:
        def get_current(self):  # a runtime context of another kind
            return context_api.Context({"other": True})

    monkeypatch.setattr(context_api, "_RUNTIME_CONTEXT", OtherRuntime())
    assert _current_context_getter() is context_api.get_current
    assert _current_context_getter()() == {"other": True}
