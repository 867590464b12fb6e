"""``track_llm``'s one-call fast path stores exactly the record the full path would.

``capture/fast_path.fast_track_llm`` checks the plain call and builds the record body itself
instead of calling ``llm_body``. Here both are given the same arguments, plain or not: where
the fast path takes a call, the record it stored must hold ``llm_body``'s body (the time
apart), and it must hand every call it cannot store, as it came, to the full path.
``track()``'s closure stores JSON where orjson takes the record, and marshal data otherwise.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from trubrics_otel import user_context
from trubrics_otel.capture import fast_path
from trubrics_otel.capture.arguments import event_body, llm_body
from trubrics_otel.capture.fast_path import fast_enqueue, fast_track_llm
from trubrics_otel.translate.record_codec import FORMAT
from trubrics_otel.translate.tracked import (
    BODY_AT,
    EVENT,
    KIND_AT,
    LLM,
    LLM_FIELDS,
    VERSION,
    from_bytes,
    json_properties,
)

END_AT = LLM_FIELDS.index("end_ns")
PROPERTIES_AT = LLM_FIELDS.index("properties")
LOGGER = logging.getLogger("test_fast_path")
texts = st.text(max_size=12)
odd = st.sampled_from([None, 0, 7, 2.5, b"b", "", ["x"], dt.datetime(2026, 1, 1)])
properties = st.none() | st.dictionaries(
    st.sampled_from(["plan", "seq", "$thread_id", "$assistant_id", "input_tokens", "completion_tokens"])
    | texts,
    st.none() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | texts | st.lists(texts, max_size=2)
    | st.sampled_from([float("nan"), 2**70, dt.date(2026, 1, 2), {1, 2}]),
    max_size=4,
)
calls = st.tuples(
    texts | odd,  # user_id
    texts | odd, texts | odd,  # prompt, generation
    st.sampled_from(["Prompt", "Asked"]) | odd, st.sampled_from(["Generation", "Said"]) | odd,
    st.none() | texts | odd,  # assistant_id
    properties,
    st.none() | st.sampled_from([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "2026-01-01T00:00:00Z"]),
    st.none() | st.floats(-1, 100_000) | st.integers(-1, 100_000) | st.just(True),  # latency
    st.none() | texts | odd,  # thread_id
)

plain_calls = st.tuples(  # the documented types throughout, so that most are the fast path's
    texts, texts, texts, st.sampled_from(["Prompt", "Asked", ""]), st.sampled_from(["Generation", ""]),
    st.none() | texts,
    st.none() | st.dictionaries(texts, st.none() | st.integers() | st.floats() | texts, max_size=3),
    st.none(),
    st.none() | st.floats(-1, 100_000) | st.integers(-1, 100_000),
    st.none() | texts,
)


needs_orjson = pytest.mark.skipif(importlib.util.find_spec("orjson") is None,
                                  reason="the JSON record format (and the one-call path) needs orjson")


class Stored(list):
    def __init__(self) -> None:
        super().__init__()
        self.left: list[tuple] = []
        """The calls the fast path handed to the full path, with the arguments it gave."""

    def append_payload(self, payload: bytes) -> int:
        self.append(payload)
        return len(self)

    def full(self, *call) -> None:
        self.left.append(call)


@needs_orjson
@settings(max_examples=1500, deadline=None)
@given(plain_calls | calls)
def test_a_call_it_takes_is_stored_as_llm_body_would_make_it(call):
    stored = Stored()
    fast = fast_track_llm(stored.append_payload, stored.full)
    before = time.time_ns()
    assert fast(*call) is None
    expected = llm_body(*call, LOGGER)
    if stored.left:  # the full path's: given the call as it came, nothing stored
        assert stored.left == [call] and not stored
        return
    assert expected is not None and len(stored) == 1
    record = from_bytes(stored[0])
    assert record is not None and record[0] == VERSION and record[KIND_AT] == LLM
    body = record[BODY_AT]
    assert before <= body[END_AT] <= time.time_ns()
    assert _as_sent(body) == _as_sent(expected)


def _as_sent(body: tuple) -> tuple:
    """The body without its time, its properties as the span carries them (NaN, ±inf: null)."""
    as_sent = list(body)
    del as_sent[END_AT]
    if as_sent[PROPERTIES_AT] is not None:
        as_sent[PROPERTIES_AT] = json.loads(json_properties(as_sent[PROPERTIES_AT]))
    return tuple(as_sent)


@needs_orjson
def test_it_takes_the_plain_call_and_leaves_the_rest_to_the_full_path():
    stored = Stored()
    fast = fast_track_llm(stored.append_payload, stored.full)
    plain = ("u1", "Hi?", "Hello.", "Prompt", "Generation", "gpt-4o", {"plan": "pro"}, None, 1.25, "t-42")
    fast(*plain)
    fast(user_id="u1", prompt="Hi?", generation="Hello.")  # track_llm's keywords and defaults
    assert len(stored) == 2 and not stored.left
    others = [
        (*plain[:6], {"input_tokens": 3}, *plain[7:]),  # llm_body reads these
        (*plain[:7], dt.datetime(2026, 1, 1), *plain[8:]),  # a timestamp to convert
        (*plain[:6], {"when": dt.date(2026, 1, 1)}, *plain[7:]),  # not plain JSON
    ]
    for call in others:
        fast(*call)
    with user_context(user_id="u2"):
        fast(*plain)  # the full path stamps the context
    provider = TracerProvider()
    with provider.get_tracer("app").start_as_current_span("request"):
        fast(*plain)  # the full path joins the app's trace
    assert stored.left == [*others, plain, plain] and len(stored) == 2


@needs_orjson
def test_every_call_is_its_own_span_whichever_client_and_each_read_gives_the_same():
    stored = Stored()
    for _ in range(2):  # two clients (or a client in two processes): keys of their own
        fast = fast_track_llm(stored.append_payload, stored.full)
        for _ in range(3):
            fast("u1", "Hi?", "Hello.")
        assert fast_enqueue(stored.append_payload)(EVENT, ("u1", "Sign up", None, 1))
    ids = [from_bytes(payload)[2:4] for payload in stored]
    assert len(set(ids)) == len(ids) == 8 and not stored.left
    assert [from_bytes(payload)[2:4] for payload in stored] == ids  # a record read again: the same span


@needs_orjson
def test_a_call_the_journal_refuses_goes_to_the_full_path():
    stored = Stored()
    fast = fast_track_llm(lambda payload: 0, stored.full)  # a full ring, a closed or forked client
    fast("u1", "Hi?", "Hello.")
    assert stored.left == [("u1", "Hi?", "Hello.", "Prompt", "Generation", None, None, None, None, None)]


@needs_orjson
def test_track_stores_json_records_and_marshal_ones_for_what_json_does_not_take():
    stored = Stored()
    enqueue = fast_enqueue(stored.append_payload)
    plain = event_body("u1", "Sign up", {"plan": "pro", "seats": 3}, None, LOGGER)
    dated = event_body("u1", "Sign up", {"when": dt.datetime(2026, 1, 1)}, None, LOGGER)
    assert enqueue(EVENT, plain) and enqueue(EVENT, dated)
    assert [payload[:1] for payload in stored] == [b"[", bytes([FORMAT])]
    assert list(from_bytes(stored[0])[BODY_AT]) == list(plain)
    assert json.loads(from_bytes(stored[1])[BODY_AT][2]) == {"when": "2026-01-01T00:00:00"}


def test_without_orjson_every_record_is_marshal_data(monkeypatch):
    monkeypatch.setattr(fast_path, "json_encoder", lambda: None)
    stored = Stored()
    assert fast_track_llm(stored.append_payload, stored.full) is None  # track_llm takes llm_body, then:
    enqueue = fast_enqueue(stored.append_payload)
    body = llm_body("u1", "Hi?", "Hello.", "Prompt", "Generation", "gpt-4o", {"plan": "pro"}, None, 1.5,
                    "t-42", LOGGER)
    assert enqueue(LLM, body) == 1
    assert stored[0][0] == FORMAT
    record = from_bytes(stored[0])
    assert record[KIND_AT] == LLM and record[BODY_AT] == body


@needs_orjson
def test_a_started_client_takes_plain_and_other_calls_and_keeps_a_subclass_override(tmp_path):
    """The client installs the closure as its ``track_llm``: keyword calls, positional calls and
    calls the full path must take all arrive; a subclass's own ``track_llm`` is never shadowed;
    after ``close()`` a call is refused as before, never raised."""
    from trubrics_endpoint import TrubricsEndpoint

    from trubrics_otel import Trubrics

    class Counting(Trubrics):
        calls = 0

        def track_llm(self, *args, **kwargs):  # type: ignore[override]
            Counting.calls += 1
            super().track_llm(*args, **kwargs)

    with TrubricsEndpoint() as endpoint:
        client = Trubrics(api_key="k", host=endpoint.url, spool=tmp_path / "a")
        client.track_llm(user_id="u1", prompt="Hi?", generation="Hello.", latency=0.5, thread_id="t-1")
        client.track_llm("u1", "Again?", "Again.", "Asked", "Said", "gpt-4o", {"seq": 2})
        client.track_llm("u1", "Dated?", "Yes.", timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        assert "track_llm" in vars(client)  # the one-call path is in place
        subclassed = Counting(api_key="k", host=endpoint.url, spool=tmp_path / "b")
        for prompt in ("One?", "Two?"):
            subclassed.track_llm(user_id="u2", prompt=prompt, generation="Yes.")
        assert Counting.calls == 2 and "track_llm" not in vars(subclassed)
        for sdk in (client, subclassed):
            assert sdk.flush(timeout=10) == 0
            sdk.close()
        client.track_llm("u1", "Closed?", "Yes.")  # refused by the full path, not raised
        sent = sorted((e["user_id"], e["prompt"], e["thread_id"]) for e in endpoint.events("publish_llm_events"))
    assert sent == [("u1", "Again?", None), ("u1", "Dated?", None), ("u1", "Hi?", "t-1"),
                    ("u2", "One?", None), ("u2", "Two?", None)]
