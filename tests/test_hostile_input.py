"""Odd input to the local server: never a 500, never Infinity, never a silent drop (issue 25,
cases 8 and 9). Each row is one request a careless or hostile client could send; the answer
is a 400 naming the problem, or what could be stored is stored and said so."""

from __future__ import annotations

import gzip
import json
import math

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as to_otlp,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_bridge import good_body

from trubrics_otel.server import LocalServer

KEY = {"x-api-key": "local-dev-key"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
READS = ["/api/events", "/api/users", "/api/sessions", "/api/threads", "/api/analytics", "/api/filters",
         "/api/stats", "/api/users/big-spender", "/api/threads/t-1"]


def strict(response: requests.Response):
    """The body as JSON, refusing NaN / Infinity as every JSON parser but Python's does."""
    def refuse(name):
        raise AssertionError(f"{response.url} answered {name}, which is not JSON")
    return json.loads(response.text, parse_constant=refuse)


def no_non_finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(no_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(no_non_finite(v) for v in value)
    return True


@pytest.fixture
def server(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3") as running:
        yield running


# --- case 8: sums that overflow --------------------------------------------------------------


def test_sums_that_overflow_are_null_and_flagged_never_infinity(server):
    huge = [{"user_id": "big-spender", "prompt": "p", "generation": "g", "thread_id": "t-1",
             "properties": {"cost_usd": 1.7e308}, "timestamp": f"2024-05-01T10:0{i}:00Z"} for i in range(2)]
    assert requests.post(f"{server.url}/publish_llm_events", json=huge, headers=KEY, timeout=10).status_code == 200
    for path in READS:
        for query in ("", "?since=2024-01-01T00:00:00Z&by=hour&by_model=1"):
            response = requests.get(f"{server.url}{path}{query}", timeout=10)
            assert response.status_code == 200, (path, response.text)
            assert no_non_finite(strict(response))
    totals = strict(requests.get(f"{server.url}/api/users/big-spender", timeout=10))
    assert totals["cost_usd"] is None and totals["cost_usd_overflow"] is True


@pytest.mark.parametrize(("bad", "says"), [
    ('{"user_id": "u", "event": "big", "properties": {"n": 1e999}}', "out of range"),  # infinity
    ('{"user_id": "u", "event": "big", "properties": {"n": ' + "9" * 5000 + '}}', "invalid JSON"),
    ('{"user_id": "u", "event": "bad", "properties": {"n": 1,}}', "invalid JSON"),
    ('{"user_id": "u", "event": "bad", "properties": {"n": NaN}}', "invalid JSON"),
], ids=["1e999", "5000 digits", "trailing comma", "NaN"])
def test_a_number_or_element_json_cannot_carry_costs_only_its_event(server, bad, says):
    """That event gets a 422 naming the problem; its neighbours are stored and every read
    still answers."""
    ok = '{"user_id": "u", "event": "ok"}'
    response = requests.post(f"{server.url}/publish_events", data=f"[{ok}, {bad}, {ok}]", headers=KEY, timeout=10)
    assert response.status_code == 422, response.text
    answer = strict(response)
    assert answer["stored"] == 2 and [e["index"] for e in answer["detail"]] == [1]
    assert says in answer["detail"][0]["msg"]
    for path in READS:
        assert requests.get(f"{server.url}{path}", timeout=10).status_code in (200, 404), path


@pytest.mark.parametrize("properties", [
    {"input_tokens": 2**62},  # two of them overflow SQLite's SUM
    {"cost_usd": 10**400},  # no float holds it
], ids=["int64 tokens", "400-digit cost"])
def test_huge_integers_are_stored_as_sent_and_every_read_answers(server, properties):
    big = {"user_id": "u", "prompt": "p", "generation": "g", "properties": properties}
    response = requests.post(f"{server.url}/publish_llm_events", json=[big, big], headers=KEY, timeout=10)
    assert response.status_code == 200, response.text
    [stored, _] = server.store.events()
    assert stored["properties"] == properties
    for path in READS:
        answer = requests.get(f"{server.url}{path}", timeout=10)
        assert answer.status_code in (200, 404), path
        assert no_non_finite(strict(answer))


# --- case 9: odd queries -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "query", "says"), [
    ("/api/events", "q=%00", "NUL"),
    ("/api/events", "user=%00", "NUL"),
    ("/api/events", "before=" + "9" * 30 + ":1", "cursor"),
    ("/api/users", "before=" + "9" * 30 + ":1", "cursor"),
    ("/api/threads", "before=" + "9" * 30 + ":t", "cursor"),
    ("/api/sessions", "before=" + "9" * 30 + ":s", "cursor"),
    ("/api/events", "before=²:1", "cursor"),
    ("/api/users", "before=²:u", "cursor"),
    ("/api/events", "before=1:²", "cursor"),
    ("/api/events", "since=1e400d", "out of range"),
    ("/api/analytics", "since=1e400d", "out of range"),
    ("/api/events", "since=99999999d", "out of range"),
    ("/api/analytics", "until=99999999999999w", "out of range"),
    ("/api/events", "since=inf h", "out of range"),
    ("/api/analytics", "since=nan d", "out of range"),
    ("/api/events", "since=last tuesday", "since: not an ISO 8601 time"),  # names the parameter
    ("/api/analytics", "until=soon", "until: not an ISO 8601 time"),
    ("/api/analytics", "since=1d&until=2d", "since (1d) is after until (2d)"),  # the dashboard's call
    ("/api/analytics", "since=2026-02-01&until=2026-01-01", "since (2026-02-01) is after until"),
    ("/api/events", "since=1d&until=2d", "since (1d) is after until (2d)"),
    ("/api/events", "kind=nope", "kind must be one of event, llm"),  # not an empty list
    ("/api/analytics", "by_model=maybe", "by_model must be one of"),
    ("/api/funnel", "steps=a,b&within=1e400d", "within must be a duration"),  # not a 500
    ("/api/funnel", "steps=a,b&within=inf h", "within must be a duration"),
    ("/api/conversation_list", "topic=" + "9" * 30, "topic must be an integer"),  # not a 500
    ("/api/conversation_list", "topic=²", "topic must be an integer"),
    *[(f"/api/{name}", f"limit={limit}", "limit must be a positive integer")
      for name in ("events", "users", "sessions", "threads", "conversation_list") for limit in ("0", "-1", "x", "1.5")],
    *[(f"/api/{name}", "since=1d&until=2d&steps=a,b", "since (1d) is after until (2d)")
      for name in ("active", "retention", "funnel", "feedback", "conversations", "conversation_list", "topics")],
])
def test_odd_queries_get_400_with_the_reason(server, path, query, says):
    response = requests.get(f"{server.url}{path}?{query}", timeout=10)
    assert response.status_code == 400, response.text
    assert says in strict(response)["detail"]


@pytest.fixture(scope="module")
def either_engine(module_db_url):
    with LocalServer(module_db_url) as running:
        yield running


NUL_READS = ["events", "users", "sessions", "threads", "analytics", "active", "retention", "funnel?steps=a,b",
             "feedback", "conversations", "conversation_list", "topics"]


@pytest.mark.parametrize("path", [*NUL_READS, "users/a%00b", "threads/a%00b", "traces/a%00b"])
def test_a_nul_anywhere_in_a_read_is_a_400_on_either_engine(either_engine, path):
    """PostgreSQL cannot hold a NUL: it must not turn a read into a database error (a 500)."""
    sep = "&" if "?" in path else "?"
    queries = [f"{sep}{name}=a%00" for name in ("user", "model", "event", "q")] if "%00" not in path else [""]
    for query in queries:
        response = requests.get(f"{either_engine.url}/api/{path}{query}", timeout=30)
        assert response.status_code == 400, (path, query, response.text)
        assert "must not contain a NUL character" in strict(response)["detail"]


# --- case 9: odd bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [150, 995, 100_000])
def test_deep_nesting_costs_only_its_own_event(server, depth):
    deep = '{"x":' * depth + "1" + "}" * depth
    body = f'[{{"user_id":"u","event":"a"}},{{"user_id":"u","event":"deep","properties":{deep}}},' \
           f'{{"user_id":"u","event":"b","properties":{{"s":"]}},[{{\\""}}}}]'
    response = requests.post(f"{server.url}/publish_events", data=body, headers=KEY, timeout=30)
    assert response.status_code == 422, response.text
    answer = strict(response)
    assert answer["stored"] == 2
    assert [e["index"] for e in answer["detail"]] == [1] and "nested deeper" in answer["detail"][0]["msg"]
    names = {e["event"] for e in strict(requests.get(f"{server.url}/api/events", timeout=10))}
    assert names == {"a", "b"}


def test_every_member_of_a_multi_member_gzip_body_is_read(server):
    body = gzip.compress(good_body(1)) + gzip.compress(good_body(2))
    response = requests.post(f"{server.url}/v1/traces", data=body,
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
    assert server.store.count()["events"] + server.store.count()["llm_events"] == 3


def test_bytes_after_a_gzip_body_are_a_400_not_ignored(server):
    response = requests.post(f"{server.url}/v1/traces", data=gzip.compress(good_body(1)) + b"junk",
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 400 and "after the end" in strict(response)["detail"]
    assert server.store.count()["events"] + server.store.count()["llm_events"] == 0


def spans_ending_before_they_start() -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("odd")
    start, end = 1_700_000_010_000_000_000, 1_700_000_000_000_000_000
    tracer.start_span("chat gpt-4o", start_time=start, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1}).end(end_time=end)
    tracer.start_span("Signed up", start_time=start, attributes={
        "trubrics.event": "Signed up", "trubrics.user_id": "u"}).end(end_time=end)
    return to_otlp(memory.get_finished_spans()).SerializeToString()


def test_a_span_that_ends_before_it_starts_is_stored_not_dropped(server):
    response = requests.post(f"{server.url}/v1/traces", data=spans_ending_before_they_start(),
                             headers=PROTOBUF, timeout=10)
    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    counts = server.store.count()
    assert (counts["events"], counts["llm_events"]) == (1, 1)
    llm = [e for e in strict(requests.get(f"{server.url}/api/events", timeout=10)) if e["kind"] == "llm"]
    assert llm[0]["latency"] is None


# --- case 9: odd traces ----------------------------------------------------------------------------


def chain(trace: str, n: int, *, cycle: bool = False) -> list[dict]:
    """``n`` events, each the child of the one before (and the first of the last, for a cycle)."""
    span = [f"{i + 1:016x}" for i in range(n)]
    return [{"user_id": "u", "event": f"step {i}", "timestamp": f"2024-05-01T10:00:{i % 60:02d}Z",
             "properties": {"$trace_id": trace, "$span_id": span[i],
                            **({"$parent_span_id": span[i - 1]} if i or cycle else {})}}
            for i in range(n)]


def post_all(server, events: list[dict]) -> None:
    for i in range(0, len(events), 100):
        response = requests.post(f"{server.url}/publish_events", json=events[i:i + 100], headers=KEY, timeout=30)
        assert response.status_code == 200, response.text


def tree_nodes(roots: list[dict]) -> list[dict]:
    found, todo = [], list(roots)
    while todo:
        node = todo.pop()
        found.append(node)
        todo.extend(node["children"])
    return found


@pytest.mark.parametrize(("n", "cycle"), [(1200, False), (3, True), (250, True)], ids=["deep", "cycle", "deep-cycle"])
def test_every_event_of_a_trace_is_in_its_tree(server, n, cycle):
    trace = "ab" * 16
    post_all(server, chain(trace, n, cycle=cycle))
    response = requests.get(f"{server.url}/api/traces/{trace}", timeout=30)
    assert response.status_code == 200, response.text[:200]
    tree = strict(response)
    assert tree["events"] == n and tree["roots"]
    assert sorted(node["event"] for node in tree_nodes(tree["roots"])) == sorted(f"step {i}" for i in range(n))
    if cycle:
        assert tree["roots"][0]["broken_link"] == "parent cycle"


def test_the_reading_commands_print_strict_json_too(server, capsys):
    from trubrics_otel.cli import main

    huge = [{"user_id": "big-spender", "prompt": "p", "generation": "g", "properties": {"cost_usd": 1.7e308}}] * 2
    huge[1] = {**huge[1], "timestamp": "2024-05-01T10:00:00Z"}
    assert requests.post(f"{server.url}/publish_llm_events", json=huge, headers=KEY, timeout=10).status_code == 200
    assert main(["users", "--db", str(server.store.path), "--json"]) == 0
    [user] = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"printed {name}"))
    assert user["cost_usd"] is None and user["cost_usd_overflow"] is True
