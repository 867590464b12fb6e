"""The local server's ingestion API, against the real server over loopback."""

from __future__ import annotations

import gzip
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from trubrics_otel import Trubrics
from trubrics_otel.server import LocalServer

KEY = {"x-api-key": "local-dev-key"}


@pytest.fixture
def server(db_url):
    """The server on each engine (see conftest: SQLite, and a real PostgreSQL)."""
    with LocalServer(db_url) as server:
        yield server


def post(server, path, body, headers=KEY, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{server.url}/{path}", data=data, headers=headers, timeout=30, **kwargs)


def event(i=0, user="u1", **extra):
    return {"user_id": user, "event": f"e{i}", "properties": {"i": i},
            "timestamp": f"2026-01-01T10:{i % 60:02d}:00+00:00", **extra}


def llm(i=0, user="u1", thread="t1", **extra):
    return {"user_id": user, "prompt": f"p{i}", "generation": f"g{i}", "assistant_id": "gpt-4o",
            "properties": {}, "timestamp": f"2026-01-01T10:{i % 60:02d}:00Z", "latency": 0.5,
            "thread_id": thread, **extra}


# --- auth and HTTP-level errors -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-key": ""}])
def test_missing_key_is_401_and_nothing_is_stored(server, headers):
    response = post(server, "publish_events", [event()], headers=headers)
    assert response.status_code == 401
    assert "x-api-key" in response.json()["detail"]
    assert server.store.count()["events"] == 0


def test_configured_key_must_match_exactly(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3", api_key="s3cret") as server:
        assert post(server, "publish_events", [event()], headers={"x-api-key": "wrong"}).status_code == 401
        assert post(server, "publish_events", [event()], headers={"x-api-key": "s3cret"}).status_code == 200
        assert "s3cret" not in repr(server)


def test_oversized_body_is_413_and_the_connection_still_answers(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3", max_body_bytes=10_000) as server:
        big = [event(i, properties={"blob": "x" * 500}) for i in range(40)]
        with requests.Session() as session:
            response = session.post(f"{server.url}/publish_events", data=json.dumps(big), headers=KEY)
            assert response.status_code == 413
            assert "10000" in response.json()["detail"]
            # same keep-alive connection, a normal batch is fine
            assert session.post(f"{server.url}/publish_events", json=[event()], headers=KEY).status_code == 200
        assert server.store.count()["events"] == 1


def test_gzip_body_is_accepted(server):
    body = gzip.compress(json.dumps([event(1), event(2)]).encode())
    response = post(server, "publish_events", body, headers={**KEY, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0}


def test_host_with_the_real_apis_prefix_works(server):
    """``host=http://127.0.0.1:port/api/ingestion`` mirrors the real default host."""
    assert post(server, "api/ingestion/publish_llm_events", [llm()]).status_code == 200
    assert server.store.count()["llm_events"] == 1


def test_unknown_path_is_404(server):
    assert post(server, "publish_things", [event()]).status_code == 404


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    (b"{not json", "invalid JSON"),
    (b"[NaN]", "invalid JSON"),
    (b'{"user_id": "u1", "event": "x"}', "must be a JSON array"),
    (json.dumps([event(i) for i in range(101)]), "at most 100 events"),
])
def test_malformed_body_is_422_with_detail(server, body, message):
    response = post(server, "publish_events", body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert message in error["msg"] and error["loc"] == ["body"]
    assert server.store.count()["events"] == 0


@pytest.mark.parametrize("bad, loc, message", [
    ({"event": "x"}, ["body", "user_id"], "field required"),
    ({"user_id": "", "event": "x"}, ["body", "user_id"], "non-empty"),
    ({"user_id": 42, "event": "x"}, ["body", "user_id"], "must be a string"),
    ({"user_id": "u1"}, ["body", "event"], "field required"),
    ({"user_id": "u1", "event": "x", "properties": [1]}, ["body", "properties"], "JSON object"),
    ({"user_id": "u1", "event": "x", "timestamp": "yesterday"}, ["body", "timestamp"], "ISO 8601"),
    ({"user_id": "u1", "event": "x", "timestamp": 1700000000}, ["body", "timestamp"], "ISO 8601"),
    ({"user_id": "u1", "event": "x", "timestamp": "0001-01-01T00:00:00+01:00"}, ["body", "timestamp"], "ISO 8601"),
    ("not an object", ["body"], "JSON object"),
    ({"user_id": "\ud800", "event": "x"}, ["body"], "not valid Unicode"),
])
def test_bad_event_is_rejected_and_good_ones_in_the_batch_are_stored(server, bad, loc, message):
    response = post(server, "publish_events", [event(1), bad, event(2)])
    assert response.status_code == 422
    body = response.json()
    [error] = body["detail"]
    assert error["index"] == 1 and error["loc"] == loc and message in error["msg"]
    assert body["stored"] == 2
    assert [e["event"] for e in server.store.events(newest_first=False)] == ["e1", "e2"]


@pytest.mark.parametrize("bad, field", [
    ({"prompt": None}, "prompt"),
    ({"generation": 3}, "generation"),
    ({"latency": "1.5"}, "latency"),
    ({"latency": -1}, "latency"),
    ({"latency": True}, "latency"),
    ({"thread_id": 7}, "thread_id"),
    ({"assistant_id": ["gpt"]}, "assistant_id"),
])
def test_bad_llm_event_fields(server, bad, field):
    response = post(server, "publish_llm_events", [llm(1), llm(2, **bad)])
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["index"] == 1 and error["loc"] == ["body", field]
    assert server.store.count()["llm_events"] == 1


def test_an_integer_latency_beyond_64_bits_is_stored_or_refused_alone(server):
    """An integer latency is seconds like any number: one a double holds is stored as it, one
    too big for a double is refused alone; neither fails the request (it was a 500: the rows'
    integer overflowed the database's, or the check's conversion raised) nor its neighbours."""
    body = ('[' + json.dumps(llm(1)) + ', {"user_id": "u1", "prompt": "p2", "generation": "g2", '
            '"latency": 18446744073709551615}, {"user_id": "u1", "prompt": "p3", "generation": "g3", '
            '"latency": 1' + "0" * 400 + '}]')
    response = post(server, "publish_llm_events", body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["index"] == 2 and error["loc"] == ["body", "latency"]
    stored = {e["prompt"]: e["latency"] for e in server.store.events(kind="llm")}
    assert stored == {"p1": 0.5, "p2": float(2**64 - 1)}


def test_all_valid_batch_is_200_with_counts(server):
    response = post(server, "publish_llm_events", [llm(1), llm(2)])
    assert response.status_code == 200
    assert response.json() == {"stored": 2, "duplicates": 0}


def test_optional_fields_and_naive_timestamps(server):
    before = requests.get(f"{server.url}/api/stats").json()
    assert before["events"] == 0
    assert post(server, "publish_events", [
        {"user_id": "u1", "event": "naive", "timestamp": "2026-01-01T10:00:00"},
        {"user_id": "u1", "event": "no-time", "properties": None},
        {"user_id": "u1", "event": "extra", "unknown": "ignored", "timestamp": "2026-01-01T12:00:00+02:00"},
    ]).status_code == 200
    assert post(server, "publish_llm_events", [{"user_id": "u1", "prompt": "p", "generation": ""}]).status_code == 200
    stored = {e["event"]: e for e in server.store.events(kind="event")}
    assert stored["naive"]["timestamp"] == "2026-01-01T10:00:00+00:00"
    assert stored["extra"]["timestamp"] == "2026-01-01T10:00:00+00:00"
    assert stored["no-time"]["properties"] == {}
    assert stored["no-time"]["timestamp"] >= "2026-"  # the time it arrived
    [turn] = server.store.events(kind="llm")
    assert (turn["prompt_event_name"], turn["generation_event_name"], turn["latency"]) == ("Prompt", "Generation", None)


def test_odd_but_valid_values_are_stored(server):
    huge = {"input_tokens": 10**30, "output_tokens": 1e300, "big": 2**70, "emoji": "🙂", "nul": "a\u0000b"}
    response = post(server, "publish_llm_events", [llm(1, properties=huge, user="ü\u0000")])
    assert response.status_code == 200, response.text
    [stored] = server.store.events()
    # PostgreSQL text cannot hold NUL, nor jsonb its JSON escape: there a NUL becomes U+FFFD,
    # in a column and in the properties alike (so the analyses can read them as jsonb)
    nul = "\ufffd" if server.store.engine.name == "postgresql" else "\u0000"
    assert stored["properties"] == {**huge, "nul": f"a{nul}b"} and stored["user_id"] == "ü" + nul
    assert (stored["input_tokens"], stored["output_tokens"]) == (None, None)


def test_each_event_is_stored_with_its_own_properties(server):
    """A batch's properties are encoded once, while it is read and checked: each row holds its
    own event's, whatever its neighbours hold."""
    events = [event(i, properties={"i": i, "tags": [f"t{i}"] * i}) for i in range(5)]
    turns = [llm(i, properties={"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}", "n": {"i": i}})
             for i in range(1, 6)]
    assert post(server, "publish_events", events).status_code == 200
    assert post(server, "publish_llm_events", turns).status_code == 200
    stored = server.store.events(limit=None)
    assert {e["event"]: e["properties"] for e in stored if e["kind"] == "event"} == {
        e["event"]: e["properties"] for e in events}
    assert {e["prompt"]: e["properties"] for e in stored if e["kind"] == "llm"} == {
        e["prompt"]: e["properties"] for e in turns}


def test_llm_event_fields_derived_from_properties(server):
    assert post(server, "publish_llm_events", [
        llm(1, thread=None, assistant_id=None, properties={
            "$thread_id": "from-props", "$assistant_id": "claude", "gen_ai.usage.input_tokens": 12,
            "completion_tokens": 7}),
        llm(2, properties={"prompt_tokens": 3, "output_tokens": 4, "error.type": "Timeout"}),
    ]).status_code == 200
    first, second = server.store.events(kind="llm", newest_first=False)
    assert (first["thread_id"], first["model"], first["input_tokens"], first["output_tokens"]) == (
        "from-props", "claude", 12, 7)
    assert (second["input_tokens"], second["output_tokens"], second["error"]) == (3, 4, "Timeout")


# --- idempotency -------------------------------------------------------------------------------


def with_ids(item, i):
    item["properties"] = {**item["properties"], "$trace_id": f"{i:032x}", "$span_id": f"{i + 1:016x}"}
    return item


def test_retried_batch_is_stored_once(server):
    batch = [with_ids(event(i), i) for i in range(10)] + [event(99)]  # the last one has no ids
    assert post(server, "publish_events", batch).json() == {"stored": 11, "duplicates": 0}
    assert post(server, "publish_events", batch).json() == {"stored": 1, "duplicates": 10}
    assert server.store.count()["events"] == 12  # events without ids are stored as sent


def test_retry_of_a_partly_stored_batch(server):
    llm_batch = [with_ids(llm(i), i) for i in range(5)]
    post(server, "publish_llm_events", llm_batch[:2])
    assert post(server, "publish_llm_events", llm_batch).json() == {"stored": 3, "duplicates": 2}
    assert [e["prompt"] for e in server.store.thread("t1")] == ["p0", "p1", "p2", "p3", "p4"]


def test_events_from_the_real_client_resent_are_not_duplicated(server):
    client = Trubrics(api_key="local-dev-key", host=server.url, flush_interval=0.05)
    for i in range(5):
        client.track(user_id="u1", event=f"click {i}")
    client.track_llm(user_id="u1", prompt="hi", generation="hello", thread_id="t")
    assert client.flush(timeout=10) == 0
    client.close()
    stored = server.store.events(newest_first=False)
    assert len(stored) == 6
    # what a retry would send: the same events, same $trace_id / $span_id
    resend = [{"user_id": e["user_id"], "event": e["event"], "properties": e["properties"],
               "timestamp": e["timestamp"]} for e in stored if e["kind"] == "event"]
    assert post(server, "publish_events", resend).json() == {"stored": 0, "duplicates": 5}
    assert len(server.store.events()) == 6


# --- concurrency and persistence -----------------------------------------------------------------


def test_eight_concurrent_writers_lose_nothing(server):
    writers, batches, size = 8, 15, 20
    start = threading.Barrier(writers)

    def write(w):
        start.wait(timeout=30)
        with requests.Session() as session:
            for b in range(batches):
                batch = [with_ids(event(i, user=f"user-{w}"), w * 10_000 + b * 100 + i) for i in range(size)]
                response = session.post(f"{server.url}/publish_events", json=batch, headers=KEY, timeout=30)
                assert response.status_code == 200, response.text
                if b % 5 == 0:  # a retry racing with the other writers
                    again = session.post(f"{server.url}/publish_events", json=batch, headers=KEY, timeout=30)
                    assert again.json() == {"stored": 0, "duplicates": size}
        return w

    with ThreadPoolExecutor(writers) as pool:
        assert sorted(pool.map(write, range(writers))) == list(range(writers))
    counts = {u["user_id"]: u["events"] for u in server.store.users()}
    assert counts == {f"user-{w}": batches * size for w in range(writers)}


def test_eight_real_clients_at_once(server):
    def app(w):
        client = Trubrics(api_key="local-dev-key", host=server.url, flush_interval=0.05, flush_batch_size=10)
        for i in range(30):
            client.track_llm(user_id=f"user-{w}", prompt=f"q{i}", generation=f"a{i}", thread_id=f"thread-{w}")
        client.close(timeout=30)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(app, range(8)))
    threads = server.store.threads()
    assert sorted(t["thread_id"] for t in threads) == sorted(f"thread-{w}" for w in range(8))
    assert all(t["turns"] == 30 for t in threads)


def test_events_survive_a_restart(db_url):
    db = db_url
    with LocalServer(db) as first:
        post(first, "publish_events", [with_ids(event(1), 1)])
        post(first, "publish_llm_events", [llm(2)])
    with LocalServer(db) as second:
        counts = second.store.count()
        assert (counts["events"], counts["llm_events"], counts["users"]) == (1, 1, 1)
        # ids remembered across the restart: a late retry is still a duplicate
        assert post(second, "publish_events", [with_ids(event(1), 1)]).json()["duplicates"] == 1
        post(second, "publish_llm_events", [llm(3)])
        assert [t["prompt"] for t in second.store.thread("t1")] == ["p2", "p3"]


def test_database_is_in_wal_mode(tmp_path):
    import sqlite3

    server = LocalServer(tmp_path / "events.sqlite3")
    server.store.count()
    assert (tmp_path / "events.sqlite3").exists()
    with sqlite3.connect(server.store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_real_retry_after_a_lost_response_is_stored_once(server):
    """The server stores a batch, the answer is lost on the way back, the exporter retries."""
    import socket
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lost = []

    class LosesFirstAnswer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # forward to the real server, then drop the first answer
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = requests.post(server.url + self.path, data=body, timeout=10,
                                   headers={"x-api-key": self.headers["x-api-key"],
                                            "Content-Type": "application/json"})
            if not lost:
                lost.append(answer.json())
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            payload = answer.content
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), LosesFirstAnswer)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        client = Trubrics(api_key="local-dev-key", host=f"http://127.0.0.1:{proxy.server_address[1]}",
                          flush_interval=0.05)
        for i in range(3):
            client.track(user_id="u1", event=f"click {i}")
        assert client.flush(timeout=20) == 0
        client.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert lost == [{"stored": 3, "duplicates": 0}]  # stored, but the client never heard
    assert client.stats()["retries"] >= 1
    assert sorted(e["event"] for e in server.store.events()) == ["click 0", "click 1", "click 2"]
