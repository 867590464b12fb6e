"""Delivery against an unlucky network: hung and trickling answers at close, overlapping
flushes, an absurd ``Retry-After``, a huge answer. Nothing accepted is lost, and one fault
never stops delivery for the rest of the process."""

from __future__ import annotations

import threading

import pytest
from conftest import API_KEY

from trubrics_otel import Trubrics


def _mixed_batch(client: Trubrics, n: int) -> None:
    for i in range(n):
        client.track(user_id="u", event="e", properties={"i": i})
        client.track_llm(user_id="u", prompt=f"p{i}", generation="g", properties={"i": i})


def _delivered(endpoint) -> tuple[set[int], set[int]]:
    return (
        {e["properties"]["i"] for e in endpoint.events() if e["event"] == "e"},
        {e["properties"]["i"] for e in endpoint.events("publish_llm_events")},
    )


def _next_run(endpoint) -> None:
    endpoint._replies.clear()
    later = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05)
    later.track(user_id="u", event="next run")
    later.close(timeout=20)


@pytest.mark.parametrize("hang", ["no answer", "trickled headers"])
def test_close_with_a_request_hung_in_flight_keeps_every_path_of_the_batch(endpoint, hang):
    """500 track + 500 track_llm in one batch; the first request (track's path) never gets an
    answer. close(timeout=2) must spool the LLM half too, not only the path on the wire."""
    if hang == "no answer":
        endpoint.reply(delay=60)
    else:
        endpoint.reply(trickle=0.3)  # a header line before every read timeout: never ends
    client = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=60, flush_batch_size=1000)
    _mixed_batch(client, 500)  # a full batch wakes the worker: one batch of both kinds
    assert endpoint.wait_for_arrivals(1, timeout=20) == 1  # the worker is inside the request
    client.close(timeout=2)
    stats = client.stats()
    assert stats["sent"] == 0 and stats["pending"] == stats["tracked"] == 1000  # both paths kept
    _next_run(endpoint)
    assert _delivered(endpoint) == (set(range(500)), set(range(500)))


def test_overlapping_flushes_leave_delivery_working(make_client, endpoint):
    """flush(0.3) and flush(5) overlap against a slow endpoint; the first one's deadline must
    not outlive both of them (it did: 0 of the later events were ever sent)."""
    endpoint.reply(delay=1.0, times=3)
    client = make_client(flush_interval=60)
    for i in range(10):
        client.track(user_id="u", event="before", properties={"i": i})
    first = threading.Thread(target=client.flush, args=(0.3,))
    second = threading.Thread(target=client.flush, args=(5,))
    first.start()
    threading.Event().wait(0.1)
    second.start()
    first.join()
    second.join()
    for i in range(100):
        client.track(user_id="u", event="later", properties={"i": i})
    assert client.flush(timeout=20) == 0
    assert sorted(e["properties"]["i"] for e in endpoint.events() if e["event"] == "later") == list(range(100))


def test_a_flush_overlapping_close_leaves_no_expired_deadline(make_client, endpoint):
    endpoint.reply(delay=1.0)
    client = make_client(flush_interval=60)
    client.track(user_id="u", event="e")
    flusher = threading.Thread(target=client.flush, args=(0.2,))
    flusher.start()
    threading.Event().wait(0.05)
    client.close(timeout=10)
    flusher.join()
    assert client.stats()["sent"] + client.stats()["pending"] >= 1
    assert client._exporter._delivery.deadlines.at is None  # nothing left in force


def test_a_huge_retry_after_is_capped_and_delivery_resumes(make_client, endpoint):
    endpoint.reply(503, headers={"Retry-After": "100000000"})
    client = make_client(retry_timeout=1)  # the cap: never wait longer than a retry budget
    for i in range(40):
        client.track(user_id="u", event="e", properties={"i": i})
    assert client.flush(timeout=20) == 0
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(40))


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "Wed, 21 Oct 9999 07:28:00 GMT"])
def test_odd_retry_after_values_never_stop_delivery(make_client, endpoint, value):
    endpoint.reply(429, headers={"Retry-After": value})
    client = make_client(retry_timeout=1)
    client.track(user_id="u", event="e")
    assert client.flush(timeout=20) == 0
    assert len(endpoint.events()) == 1


def test_a_huge_answer_is_not_read(make_client, endpoint):
    """A 200 with a 256 MiB body: the client reads a bounded prefix and hangs up, so the
    server gets rid of a few socket buffers' worth, not the body (which would sit in memory)."""
    endpoint.reply(body_bytes=256 << 20)
    client = make_client()
    client.track(user_id="u", event="first")
    assert endpoint.wait_for_arrivals(1) == 1
    client.track(user_id="u", event="second")
    assert client.flush(timeout=20) == 0
    assert endpoint.body_bytes_sent < 48 << 20
    assert [e["event"] for e in endpoint.events()] == ["first", "second"]  # each once
    assert client.stats()["sent"] == 2


def test_trickled_headers_hold_a_request_no_longer_than_the_timeout(make_client, endpoint):
    """Each header line comes before a read timeout, so only a deadline for the whole request
    ends it: then the batch is retried, and delivery goes on in the same process."""
    endpoint.reply(trickle=0.2)
    client = make_client(timeout=1)
    for i in range(10):
        client.track(user_id="u", event="e", properties={"i": i})
    assert client.flush(timeout=20) == 0
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(10))
