"""What reaches the Trubrics endpoint, field by field, and that it matches the official SDK."""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import re
import uuid

import pytest
import trubrics as official
from conftest import API_KEY

from trubrics_otel import Trubrics

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _ids(properties: dict) -> dict:
    """Pop and check the ids the exporter adds; return the user's own properties."""
    assert HEX32.match(properties.pop("$trace_id"))
    assert HEX16.match(properties.pop("$span_id"))
    return properties


def test_exact_event_payload(make_client, endpoint):
    client = make_client()
    when = dt.datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=dt.timezone.utc)
    client.track(user_id="u1", event="Sign up", properties={"plan": "pro", "seats": 3}, timestamp=when)
    assert client.flush(timeout=10) == 0

    [request] = endpoint.requests
    assert request.path == "publish_events"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    [event] = request.body
    assert _ids(event["properties"]) == {"plan": "pro", "seats": 3}
    assert event == {
        "user_id": "u1",
        "event": "Sign up",
        "properties": {"plan": "pro", "seats": 3},
        "timestamp": "2026-11-23T09:30:15.123456+00:00",
    }


def test_exact_llm_event_payload(make_client, endpoint):
    client = make_client()
    when = dt.datetime(2026, 11, 23, 9, 30, 15, tzinfo=dt.timezone.utc)
    client.track_llm(
        user_id="u1", prompt="What is Trubrics?", generation="An analytics platform.",
        assistant_id="gpt-4o", latency=1.25, thread_id="t-42", timestamp=when,
        properties={"$thread_id": "t-42", "cost": 0.002},
    )
    client.flush(timeout=10)

    [request] = endpoint.requests
    assert request.path == "publish_llm_events"
    [event] = request.body
    assert _ids(event["properties"]) == {"$thread_id": "t-42", "cost": 0.002}
    assert event == {
        "user_id": "u1",
        "prompt": "What is Trubrics?",
        "generation": "An analytics platform.",
        "prompt_event_name": "Prompt",
        "generation_event_name": "Generation",
        "assistant_id": "gpt-4o",
        "properties": {"$thread_id": "t-42", "cost": 0.002},
        "timestamp": "2026-11-23T09:30:15+00:00",
        "latency": 1.25,
        "thread_id": "t-42",
    }


def test_llm_defaults_and_special_properties(make_client, endpoint):
    client = make_client()
    client.track_llm(user_id="u1", prompt="p", generation="g")
    client.track_llm(
        user_id="u2", prompt="p2", generation="g2", prompt_event_name="Question",
        generation_event_name="Answer",
        properties={"$thread_id": "th-9", "$assistant_id": "claude", "$text": "p2"},
    )
    client.flush(timeout=10)
    first, second = endpoint.events("publish_llm_events")
    assert (first["assistant_id"], first["thread_id"], first["latency"]) == (None, None, None)
    assert (second["prompt_event_name"], second["generation_event_name"]) == ("Question", "Answer")
    # $thread_id / $assistant_id fill the fields when the arguments are not given
    assert (second["thread_id"], second["assistant_id"]) == ("th-9", "claude")
    assert _ids(second["properties"]) == {"$thread_id": "th-9", "$assistant_id": "claude", "$text": "p2"}


def test_no_empty_arrays_and_separate_endpoints(make_client, endpoint):
    client = make_client()
    for i in range(3):
        client.track(user_id="u", event=f"e{i}")
    client.flush(timeout=10)
    assert {r.path for r in endpoint.requests} == {"publish_events"}
    assert all(r.body for r in endpoint.requests)


@pytest.mark.parametrize("batch_size", [20, 100, 250])
def test_batches_never_exceed_100(make_client, endpoint, batch_size):
    client = make_client(flush_batch_size=batch_size, flush_interval=60)
    for i in range(730):
        client.track(user_id="u", event="e", properties={"i": i})
    client.flush(timeout=30)
    sizes = [len(r.body) for r in endpoint.requests]
    assert sum(sizes) == 730
    assert max(sizes) <= min(batch_size, 100)
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(730))


def test_flush_at_is_an_alias(make_client, endpoint):
    client = make_client(flush_at=7, flush_interval=60)
    for _ in range(21):
        client.track(user_id="u", event="e")
    # a full batch wakes the processor without any flush() or interval
    assert endpoint.wait_for_events(21, timeout=20) == 21
    assert max(len(r.body) for r in endpoint.requests) <= 7


def test_properties_survive_exactly(make_client, endpoint):
    properties = {
        "nested": {"a": [1, 2.5, {"b": None}], "t": True, "f": False},
        "unicode": "héllo wörld — 你好 🎉",
        "empty": {}, "list": [], "none": None, "int": 2**53, "neg": -1.5e-7,
        "$text": "tell me a story",
    }
    client = make_client()
    client.track(user_id="u", event="e", properties=properties)
    client.flush(timeout=10)
    assert _ids(endpoint.events()[0]["properties"]) == properties


def test_odd_property_types_are_converted_not_raised(make_client, endpoint):
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    cyclic: dict = {"k": 1}
    cyclic["self"] = cyclic
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    client = make_client()
    client.track(user_id="u", event="e", properties={
        "when": when, "day": dt.date(2026, 1, 2), "id": uuid.UUID(int=1),
        "price": decimal.Decimal("19.99"), "tags": {"b", "a"}, "raw": b"bytes",
        "blob": b"\xff\x00", "obj": Thing(), "nan": float("nan"), 7: "int key",
        "cyclic": cyclic,
    })
    client.flush(timeout=10)
    assert _ids(endpoint.events()[0]["properties"]) == {
        "when": "2026-01-02T03:04:05+00:00", "day": "2026-01-02",
        "id": "00000000-0000-0000-0000-000000000001", "price": 19.99, "tags": ["a", "b"],
        "raw": "bytes", "blob": "base64:/wA=", "obj": "a thing", "nan": None, "7": "int key",
        "cyclic": {"k": 1, "self": "<cycle>"},
    }


def test_properties_are_snapshotted_at_track_time(make_client, endpoint):
    properties = {"step": 1}
    client = make_client()
    client.track(user_id="u", event="e", properties=properties)
    properties["step"] = 2
    client.flush(timeout=10)
    assert endpoint.events()[0]["properties"]["step"] == 1


def test_timestamps(make_client, endpoint):
    client = make_client()
    paris = dt.timezone(dt.timedelta(hours=2))
    client.track(user_id="u", event="aware", timestamp=dt.datetime(2026, 6, 1, 12, 0, tzinfo=paris))
    client.track(user_id="u", event="naive", timestamp=dt.datetime(2026, 6, 1, 12, 0))
    before = dt.datetime.now(dt.timezone.utc)
    client.track(user_id="u", event="now")
    client.track(user_id="u", event="bad", timestamp="not a time")
    client.flush(timeout=10)
    stamps = {e["event"]: dt.datetime.fromisoformat(e["timestamp"]) for e in endpoint.events()}
    assert stamps["aware"] == dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert stamps["naive"] == dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)  # naive = UTC
    assert before <= stamps["now"] <= dt.datetime.now(dt.timezone.utc)
    assert stamps["bad"] >= before  # a bad timestamp keeps the event, at the current time
    assert all(s.tzinfo is not None for s in stamps.values())


def test_latency_sets_the_span_start(make_client, endpoint):
    client = make_client()
    end = dt.datetime(2026, 6, 1, 12, 0, 10, tzinfo=dt.timezone.utc)
    client.track_llm(user_id="u", prompt="p", generation="g", latency=2.5, timestamp=end)
    for bad in (-3, float("inf"), float("nan"), "1.5", True):
        client.track_llm(user_id="u", prompt="p", generation="g", latency=bad, timestamp=end)
    client.flush(timeout=10)
    good, *bad = endpoint.events("publish_llm_events")
    assert good["latency"] == 2.5 and good["timestamp"] == "2026-06-01T12:00:10+00:00"
    # a rejected latency is sent as unknown; the event still goes
    assert [e["latency"] for e in bad] == [None] * 5


def test_signatures_match_the_official_sdk():
    """Every parameter of the official 1.8.5 API is accepted, in the same position."""
    for name in ("__init__", "track", "track_llm", "flush", "close"):
        theirs = list(inspect.signature(getattr(official.Trubrics, name)).parameters.values())
        ours = list(inspect.signature(getattr(Trubrics, name)).parameters.values())
        assert [p.name for p in ours[: len(theirs)]] == [p.name for p in theirs], name
        for mine, their in zip(ours, theirs):
            if their.default is not inspect.Parameter.empty and name != "__init__":
                assert mine.default == their.default, (name, mine.name)


def test_same_calls_same_payload_as_official_sdk(endpoint):
    """Drop-in: the official SDK and ours, same calls → same events (ids and tz aside)."""
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)

    def drive(sdk) -> None:
        sdk.track(user_id="u1", event="Sign up", properties={"plan": "pro"}, timestamp=when)
        sdk.track_llm(user_id="u1", prompt="Q", generation="A", assistant_id="gpt-4o",
                      properties={"$thread_id": "t1"}, timestamp=when, latency=0.5, thread_id="t1")
        sdk.close()

    drive(official.Trubrics(api_key=API_KEY, host=endpoint.url))
    theirs = endpoint.events("publish_events") + endpoint.events("publish_llm_events")
    endpoint.batches = {p: [] for p in endpoint.batches}
    drive(Trubrics(api_key=API_KEY, host=endpoint.url))
    ours = endpoint.events("publish_events") + endpoint.events("publish_llm_events")
    for event in ours:
        _ids(event["properties"])
    assert ours == theirs


def test_own_events_take_thread_and_properties_from_user_context(make_client, endpoint):
    from trubrics_otel import user_context

    client = make_client()
    with user_context(user_id="ctx-user", thread_id="ctx-thread", properties={"plan": "pro", "k": 0}):
        client.track(user_id="u1", event="Clicked", properties={"k": 1})
        client.track_llm(user_id="u1", prompt="p", generation="g")
        client.track_llm(user_id="u1", prompt="p", generation="g", thread_id="explicit")
    client.flush(timeout=10)
    [event] = endpoint.events()
    first, second = endpoint.events("publish_llm_events")
    # explicit arguments win; the context fills what the call left out; the event's own properties win
    assert event["user_id"] == "u1"
    assert _ids(event["properties"]) == {"plan": "pro", "k": 1, "$thread_id": "ctx-thread"}
    assert (first["user_id"], first["thread_id"], second["thread_id"]) == ("u1", "ctx-thread", "explicit")
    assert _ids(first["properties"]) == {"plan": "pro", "k": 0}
