"""The bridge over real HTTP: an app's OTLP exporter → bridge → a local Trubrics endpoint,
and every kind of bad request answered by the OTLP/HTTP rules without stopping the bridge."""

from __future__ import annotations

import gzip
import json
import logging
import socket

import pytest
import requests
from conftest import API_KEY
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as to_otlp,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from trubrics_endpoint import TrubricsEndpoint

from trubrics_otel import Trubrics
from trubrics_otel.receive.bridge import Bridge

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def bridge(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", max_body=4 << 20,
                timeout=1.0) as running:
        yield running


def llm_span(tracer, n: int = 0, user: str = "u-1") -> None:
    """What the official OpenAI instrumentation writes for one chat call (GenAI conventions)."""
    with tracer.start_as_current_span("chat gpt-4o", attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10 + n,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"question {n}"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"answer {n}"}]}]),
        "user.id": user,
    }):
        pass


def sdk_spans(n: int = 3) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(n):
        llm_span(tracer, i)
        with tracer.start_as_current_span("GET /", attributes={"http.method": "GET"}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def good_body(n: int = 3) -> bytes:
    return to_otlp(sdk_spans(n)).SerializeToString()


def post(bridge, body: bytes, headers=None, **kwargs) -> requests.Response:
    return requests.post(f"{bridge.url}/v1/traces", data=body, headers=headers or PROTOBUF, timeout=30, **kwargs)


def assert_serves(bridge, endpoint) -> None:
    """The bridge still takes a good request after whatever came before."""
    before = endpoint.count()
    response = post(bridge, good_body(1))
    assert response.status_code == 200
    assert endpoint.count() == before + 1


# --- (1) an app's OTLP exporter → bridge → Trubrics -----------------------------------------


def test_app_otlp_exporter_to_bridge_matches_the_in_process_exporter(bridge, endpoint):
    """The app exports plain OTLP (gzip, as a Collector would); the bridge delivers exactly
    the events the in-process exporter delivers for the same spans."""
    with TrubricsEndpoint() as direct:
        provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{bridge.url}/v1/traces", compression=Compression.Gzip),
            schedule_delay_millis=50,
        ))
        client = Trubrics(api_key=API_KEY, host=direct.url, flush_interval=0.05, tracer_provider=provider)
        client.track(user_id="u-1", event="Sign up", properties={"plan": "pro", "seats": 3})
        client.track_llm(user_id="u-1", prompt="What is Trubrics?", generation="Analytics.",
                         assistant_id="gpt-4o", latency=1.5, thread_id="t-1")
        tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
        for i in range(5):
            llm_span(tracer, i)
        with tracer.start_as_current_span("GET /health"):
            pass  # not an event: not forwarded
        client.close(timeout=10)
        provider.shutdown()

        assert endpoint.wait_for_events(7) == 7
        assert direct.wait_for_events(7) == 7
        for path in ("publish_events", "publish_llm_events"):
            key = lambda e: e["properties"]["$span_id"]  # noqa: E731
            assert sorted(endpoint.events(path), key=key) == sorted(direct.events(path), key=key)
        assert [e["event"] for e in endpoint.events("publish_events")] == ["Sign up"]
        prompts = sorted(e["prompt"] for e in endpoint.events("publish_llm_events"))
        assert prompts == ["What is Trubrics?"] + [f"question {i}" for i in range(5)]
        assert all(r.headers["x-api-key"] == API_KEY for r in endpoint.requests)


def test_otlp_json_requests_get_json_answers(bridge, endpoint):
    spans = sdk_spans(2)
    import base64

    from google.protobuf import json_format

    document = json_format.MessageToDict(to_otlp(spans))
    for rs in document["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    response = post(bridge, json.dumps(document).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    assert endpoint.wait_for_events(2) == 2


def test_partial_success_counts_invalid_spans(bridge, endpoint):
    request = to_otlp(sdk_spans(3))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].span_id = b""
    response = post(bridge, request.SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "span id" in answer.partial_success.error_message


def test_plain_spans_are_not_rejected_nor_forwarded(bridge, endpoint):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("db").start_as_current_span("SELECT"):
        pass
    response = post(bridge, to_otlp(memory.get_finished_spans()).SerializeToString())
    assert response.status_code == 200
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert endpoint.requests == []


# --- upstream failures: the sender must retry, and nothing goes twice -----------------------


def test_upstream_outage_answers_503_with_retry_after_then_delivers_once(bridge, endpoint):
    endpoint.fail_for(60, status=503)
    body = good_body(3)
    response = post(bridge, body)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert endpoint.count() == 0

    endpoint.fail_for(0)
    assert post(bridge, body).status_code == 200
    assert post(bridge, body).status_code == 200  # a sender's duplicate retry
    assert len(endpoint.events("publish_llm_events")) == 3


def test_upstream_429_is_passed_on(bridge, endpoint):
    endpoint.fail_for(60, status=429)
    response = post(bridge, good_body(1))
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_chunk_accepted_before_a_failure_is_not_sent_again(endpoint):
    """250 events go in chunks of 100: when the third chunk fails, the retried request
    only sends what Trubrics has not accepted yet."""
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", timeout=0.5) as bridge:
        body = good_body(250)
        endpoint.reply(200, times=2)
        endpoint.fail_for(60)
        assert post(bridge, body).status_code == 503
        assert len(endpoint.events("publish_llm_events")) == 200
        endpoint.fail_for(0)
        assert post(bridge, body).status_code == 200
        ids = [e["properties"]["$span_id"] for e in endpoint.events("publish_llm_events")]
        assert len(ids) == len(set(ids)) == 250


def test_api_key_pass_through_and_missing_key(endpoint, caplog):
    with Bridge(host=endpoint.url, listen="127.0.0.1:0") as bridge:
        caplog.set_level(logging.INFO, logger="trubrics")
        response = post(bridge, good_body(1))
        assert response.status_code == 401
        assert endpoint.requests == []
        assert post(bridge, good_body(1), {**PROTOBUF, "x-api-key": "sk-passed-through"}).status_code == 200
        assert endpoint.requests[-1].headers["x-api-key"] == "sk-passed-through"
        assert "sk-passed-through" not in caplog.text and "sk-passed-through" not in repr(bridge)


def test_a_key_trubrics_refuses_is_not_retried_forever(caplog):
    with TrubricsEndpoint(api_key="the-right-key") as endpoint, \
            Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0") as bridge:
        response = post(bridge, good_body(1))
        assert response.status_code == 401  # non-retryable for an OTLP sender
        assert API_KEY not in caplog.text


# --- (4) bad requests: the right status, and the bridge keeps serving -----------------------


def test_garbage(bridge, endpoint):
    assert post(bridge, b"\x00\xffnot a protobuf\xff" * 10).status_code == 400
    assert_serves(bridge, endpoint)


def test_truncated_protobuf(bridge, endpoint):
    response = post(bridge, good_body(3)[:-9])
    assert response.status_code == 400
    assert b"protobuf" in response.content  # a google.rpc.Status with a message
    assert_serves(bridge, endpoint)


def test_truncated_gzip(bridge, endpoint):
    body = gzip.compress(good_body(3))[:-30]
    assert post(bridge, body, {**PROTOBUF, "Content-Encoding": "gzip"}).status_code == 400
    assert_serves(bridge, endpoint)


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/grpc"}, 415),
    ({**PROTOBUF, "Content-Encoding": "br"}, 415),
])
def test_wrong_content_type_or_encoding(bridge, endpoint, headers, status):
    assert post(bridge, good_body(1), headers).status_code == status
    assert_serves(bridge, endpoint)


def test_50mb_body(bridge, endpoint):
    response = post(bridge, b"\0" * (50 << 20))
    assert response.status_code == 413
    assert_serves(bridge, endpoint)


def test_50mb_body_with_expect_100_continue(bridge, endpoint):
    """curl's way: the bridge refuses before a byte of the body is sent."""
    port = int(bridge.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 52428800\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 413")
    assert_serves(bridge, endpoint)


def test_gzip_bomb(bridge, endpoint):
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    assert len(bomb) < bridge.max_body
    response = post(bridge, bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert_serves(bridge, endpoint)


def test_no_body_and_wrong_paths(bridge, endpoint, caplog):
    """Neither Content-Length nor chunked means an empty body (RFC 9112): an empty export. A
    wrong path's log line names it (a Collector sending its metrics here is the usual cause)."""
    port = int(bridge.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    assert requests.post(f"{bridge.url}/v1/logs", data=b"x", headers=PROTOBUF, timeout=10).status_code == 404
    assert requests.get(f"{bridge.url}/nope", timeout=10).status_code == 404
    assert_serves(bridge, endpoint)
    said = [r.getMessage() for r in caplog.records if "Answered 404" in r.getMessage()]
    assert len(said) == 2 and "POST '/v1/logs'" in said[0] and "GET '/nope'" in said[1], said


def test_client_that_disconnects_mid_body(bridge, endpoint):
    port = int(bridge.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100000\r\n\r\n" + good_body(1)[:50])
    assert_serves(bridge, endpoint)


def test_healthz(bridge, endpoint):
    post(bridge, b"garbage")
    assert_serves(bridge, endpoint)
    health = requests.get(f"{bridge.url}/healthz", timeout=10)
    assert health.status_code == 200
    stats = health.json()
    assert stats["status"] == "ok"
    assert stats["answered_400"] == 1 and stats["accepted"] == 1


def test_cli_runs_the_bridge(endpoint, tmp_path):
    """``python -m trubrics_otel bridge`` serves, and stops cleanly on SIGTERM."""
    import os
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TRUBRICS_API_KEY": API_KEY, "TRUBRICS_HOST": endpoint.url,
           "TRUBRICS_BRIDGE_LISTEN": f"127.0.0.1:{port}", "TRUBRICS_BRIDGE_GRPC_LISTEN": "127.0.0.1:0"}
    process = subprocess.Popen([sys.executable, "-m", "trubrics_otel", "bridge"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        response = requests.post(f"http://127.0.0.1:{port}/v1/traces", data=good_body(2),
                                 headers=PROTOBUF, timeout=10)
        assert response.status_code == 200
        assert endpoint.count() == 2
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0
    assert "listening" in output and "OTLP/gRPC 127.0.0.1:" in output and API_KEY not in output


@pytest.mark.parametrize("grpc", ["off", "without the grpc extra"])
def test_cli_ports_in_use_is_one_line_and_exit_2(bridge, grpc):
    """As serve: the one line names the address and the way out; no INFO line about gRPC before it."""
    import subprocess
    import sys

    taken = bridge.url.rsplit(":", 1)[1]
    argv = ["bridge", "--listen", f"127.0.0.1:{taken}", "--api-key", API_KEY] + (["--grpc-listen", "off"]
                                                                                  if grpc == "off" else [])
    code = ("import sys; " + ("sys.modules['grpc'] = None; " if grpc != "off" else "")  # as if not installed
            + f"from trubrics_otel.cli import main; sys.exit(main({argv!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"trubrics-otel bridge: cannot listen on 127.0.0.1:{taken}: Address already in use "
                           "(another bridge running? --listen picks another, port 0 any free)\n")


def test_events_trubrics_refuses_for_good_are_reported_not_retried(bridge, endpoint):
    endpoint.reply(422, body={"detail": "bad event"})
    response = post(bridge, good_body(3))
    assert response.status_code == 200  # retrying the same data cannot help
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert "422" in answer.partial_success.error_message
    assert_serves(bridge, endpoint)


def test_concurrent_senders_lose_nothing(bridge, endpoint):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [good_body(20) for _ in range(24)]
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda body: post(bridge, body).status_code, bodies))
    assert statuses == [200] * 24
    ids = [e["properties"]["$span_id"] for e in endpoint.events("publish_llm_events")]
    assert len(ids) == len(set(ids)) == 24 * 20


def test_no_api_key_over_plain_http_off_loopback_unless_allowed(monkeypatch):
    monkeypatch.delenv("TRUBRICS_ALLOW_INSECURE", raising=False)
    with pytest.raises(ValueError, match=r"http://192\.0\.2\.7:8000: plain http:// off loopback") as refused:
        Bridge(host="http://192.0.2.7:8000", api_key=API_KEY, listen="127.0.0.1:0")
    assert API_KEY not in str(refused.value)
    allowed = Bridge(host="http://192.0.2.7:8000", api_key=API_KEY, listen="127.0.0.1:0", allow_insecure=True)
    assert allowed.host == "http://192.0.2.7:8000"
    assert Bridge(host="http://localhost:8000", api_key=API_KEY, listen="127.0.0.1:0").host  # loopback: fine
