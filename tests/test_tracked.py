"""The record behind a ``track()`` span: lazy fields, the journal's bytes, the encoder's fast path."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import logging
import struct
import uuid
from collections import OrderedDict
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.capture.context import UserContext, stamp
from trubrics_otel.translate import tracked
from trubrics_otel.translate.encoder import encode_record, encode_span
from trubrics_otel.translate.record_codec import UnknownFormat
from trubrics_otel.translate.redaction import Policy
from trubrics_otel.translate.tracked import (
    BODY_AT,
    EVENT,
    KEYED,
    LLM,
    NEWEST,
    VERSION,
    TrackedSpan,
    from_bytes,
    to_bytes,
    with_json_properties,
)

texts = st.text(max_size=20)
names = st.text(min_size=1, max_size=12)
ids = st.integers(min_value=1, max_value=2**64 - 1)
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = ("b", 2)


class Size(enum.IntEnum):
    LARGE = 3


class Tier(str, enum.Enum):
    PRO = "pro"


class Label(str):
    pass


unusual = st.sampled_from([  # values an app passes that neither JSON nor marshal hold as they are
    Colour.RED, Colour.BLUE, Size.LARGE, Tier.PRO, Label("label"), uuid.UUID(int=7),
    dt.datetime(2026, 11, 26, 1, 2, 3, 456, tzinfo=dt.timezone.utc), dt.date(2026, 1, 2),
    decimal.Decimal("1.5"), b"bytes", (1, "two"), 2**64, -(2**63) - 1, 2**70, "\ud800 lone",
    OrderedDict(a=1), float("inf"),
])

def properties_of(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | st.dictionaries(
        st.sampled_from(["plan", "$thread_id", "$assistant_id", "input_tokens", "a"]) | texts
        | st.integers(0, 3),  # a key JSON turns into text
        values, min_size=1, max_size=5,
    )


stored_values = plain | st.just(float("nan")) | st.sets(st.integers(), max_size=2)  # JSON cannot hold these
contexts = st.none() | st.builds(
    lambda user, thread, props: stamp(UserContext(user, thread, props), {}) or None,
    st.none() | names, st.none() | st.just("") | names,
    st.dictionaries(st.sampled_from(["a", "plan", "$thread_id"]), plain, max_size=2),
)
ends = st.integers(min_value=0, max_value=2**62)


def records_with(own_properties: st.SearchStrategy) -> st.SearchStrategy:
    event_bodies = st.tuples(names, names, own_properties, ends)
    llm_bodies = st.tuples(
        names, texts, texts, st.sampled_from(["Prompt", "Asked"]), st.sampled_from(["Generation", "Said"]),
        st.none() | st.just("") | names, own_properties, ends,
        st.none() | st.floats(min_value=0, max_value=86_400), st.none() | names,
        st.none() | st.fixed_dictionaries(
            {}, optional={sc.GEN_AI_USAGE_INPUT_TOKENS: st.integers(0, 10**6),
                          sc.GEN_AI_USAGE_OUTPUT_TOKENS: st.integers(0, 10**6)},
        ),
    )
    return st.one_of(
        st.tuples(st.just(VERSION), st.just(EVENT), ids, ids, st.just(0) | ids, contexts, event_bodies),
        st.tuples(st.just(VERSION), st.just(LLM), ids, ids, st.just(0) | ids, contexts, llm_bodies),
    )


records = records_with(properties_of(stored_values))
"""Records as the journal gives them back: properties hold what marshal or JSON stores."""
tracked_records = records_with(properties_of(stored_values | unusual))
"""Records as ``track()`` makes them: properties hold whatever the app passed."""


def _as_plain_span(span: ReadableSpan) -> ReadableSpan:
    """The same span as an ordinary ReadableSpan: the encoder reads its attributes."""
    return ReadableSpan(
        span.name, span.context, span.parent, span.resource, span.attributes, span.events,
        span.links, span.kind, None, span.status, span.start_time, span.end_time,
        span.instrumentation_scope,
    )


@settings(max_examples=400, deadline=None)
@given(records)
def test_the_record_fast_path_encodes_exactly_what_the_span_does(record):
    fast = encode_record(record)
    slow = encode_span(_as_plain_span(TrackedSpan(record)))
    assert fast == slow
    assert json.loads(json.dumps(fast)) == json.loads(json.dumps(slow))


@pytest.mark.parametrize("stored_format", ["json", "marshal"])
@settings(max_examples=200, deadline=None)
@given(record=tracked_records)
def test_a_record_survives_the_journal_bytes(record, stored_format):
    """Either stored format gives back the same event as the record kept in memory: the JSON
    one (with orjson) and the marshal one (without it, or for what orjson refuses)."""
    if stored_format == "json" and tracked._JSON is None:
        pytest.skip("orjson is not installed")
    with mock.patch.object(tracked, "_JSON", tracked._JSON if stored_format == "json" else None):
        payload = to_bytes(record)
    stored = from_bytes(payload)
    assert stored is not None
    assert stored[:6] == record[:6]  # version, kind, ids, context: the same span identity
    assert _as_sent(stored) == _as_sent(with_json_properties(record))  # as a record kept in memory


def _as_sent(record) -> object:
    """The event as the exporter POSTs it, read back (NaN is not equal to itself, sets have no order)."""
    event = encode_record(record)
    events, llm_events = Policy().apply_all([event[1]] if event[0] == "event" else [],
                                            [event[1]] if event[0] != "event" else [])
    return json.loads(json.dumps(events + llm_events))


def test_the_json_format_holds_what_orjson_takes_and_marshal_the_rest():
    pytest.importorskip("orjson")
    plain_record = (VERSION, LLM, 2**128 - 1, 2**64 - 1, 0, None, ("u", "p", "g", "Prompt", "Generation",
                    None, {"plan": "pro", "seats": 3, "nested": {"a": [1, 2.5, None]}}, 10**18, 1.5, "t", None))
    payload = to_bytes(plain_record)
    assert payload.startswith(b"[1,")  # the JSON format, its trace id in two halves
    stored = from_bytes(payload)
    assert (*stored[:BODY_AT], tuple(stored[BODY_AT])) == plain_record
    converted = {"c": Colour.RED, "pair": Colour.BLUE, "size": Size.LARGE, "tier": Tier.PRO,
                 "id": uuid.UUID(int=7), "nan": float("nan"), "t": (1, "two")}
    record = (*plain_record[:6], (*plain_record[6][:6], converted, *plain_record[6][7:]))
    assert to_bytes(record)[:1] == b"["  # written as the stdlib would write it, so in JSON
    assert _as_sent(from_bytes(to_bytes(record))) == _as_sent(with_json_properties(record))
    for refused in ({"when": dt.datetime(2026, 1, 1)}, {"big": 2**64}, {1: "int key"}, {"s": {1}}, {"l": Label("x")}):
        record = (*plain_record[:6], (*plain_record[6][:6], refused, *plain_record[6][7:]))
        assert to_bytes(record)[0] == 2, refused  # the marshal format's tag
        assert _as_sent(from_bytes(to_bytes(record))) == _as_sent(with_json_properties(record))


def test_fields_are_computed_only_when_read():
    record = (VERSION, EVENT, 1, 2, 0, None, ("u1", "Sign up", {"plan": "pro"}, 10**18))
    span = TrackedSpan(record)
    assert "_attributes" not in vars(span)  # nothing built yet
    assert span.name == "Sign up"
    assert span.attributes[sc.USER_ID] == "u1"
    assert json.loads(span.attributes[sc.TRUBRICS_PROPERTIES]) == {"plan": "pro"}
    assert span.context.trace_id == 1 and span.context.span_id == 2 and span.parent is None
    assert span.start_time == span.end_time == 10**18
    assert span.instrumentation_scope.name == sc.SCOPE_NAME


def test_properties_marshal_cannot_store_go_as_json():
    class Custom:
        def __str__(self) -> str:
            return "custom"

    record = (VERSION, EVENT, 1, 2, 0, None, ("u1", "e", {"when": Custom(), "n": 1}, 0))
    stored = from_bytes(to_bytes(record))
    assert stored is not None
    assert json.loads(stored[6][2]) == {"when": "custom", "n": 1}


def test_bytes_of_another_version_or_shape_are_refused():
    assert from_bytes(b"\x02not marshal") is None  # damaged: skipped (and logged by callers)
    assert from_bytes(to_bytes((VERSION, EVENT, 1, 2, 0, None, ("u", "e")))) is None
    with pytest.raises(UnknownFormat):  # newer: refused, for the caller to keep, never dropped
        from_bytes(b"not marshal")
    with pytest.raises(UnknownFormat):
        from_bytes(to_bytes((NEWEST + 1, EVENT, 1, 2, 0, None, ("u", "e", None, 0))))


def test_a_keyed_record_is_the_same_span_at_every_read_and_apart_from_every_other():
    body = ["u1", "Sign up", {"plan": "pro"}, 10**18]
    payload = json.dumps([KEYED, EVENT, 2**64 - 1, 1, body]).encode()
    record = from_bytes(payload)
    assert record == from_bytes(payload)  # read again after a crash: the same ids, one event
    assert record[:2] == (VERSION, EVENT) and record[4:6] == (0, None) and record[6] == body
    ids = {from_bytes(json.dumps([KEYED, EVENT, key, n, body]).encode())[2:4]
           for key in (0, 1, 2**64 - 1) for n in (1, 2, 3)}
    assert len(ids) == 9  # each key's each number: its own trace and span
    digest = int.from_bytes(hashlib.blake2b(struct.pack("<QQ", 2**64 - 1, 1), digest_size=24).digest(), "big")
    assert record[2:4] == (digest >> 64, digest & (2**64 - 1))  # what every release reads: a replay is one event
    assert tracked.stored_records([payload], logging.getLogger()) == [(record, True)]  # the export thread's read
    assert all(0 < trace < 2**128 and 0 < span < 2**64 for trace, span in ids)
    for damaged in ([KEYED, EVENT, -1, 1, body], [KEYED, EVENT, 1, 2**64, body], [KEYED, EVENT, 1, body],
                    [KEYED, EVENT, 1.5, 1, body], [KEYED, EVENT, 1, 1, ["u1"]]):
        assert from_bytes(json.dumps(damaged).encode()) is None, damaged


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**18), 4 * 10**18), st.integers(0, 2))
def test_the_record_timestamp_is_the_iso_timestamp(time_ns, repeat):
    """The cached-second texts are exactly what ``datetime.isoformat`` writes."""
    import datetime as dt

    from trubrics_otel.translate.encoder import iso_timestamp, record_timestamp

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    for ns in (time_ns, time_ns - time_ns % 10**9, time_ns + repeat):  # whole seconds, same second
        expected = (epoch + dt.timedelta(microseconds=ns // 1000)).isoformat()
        assert record_timestamp(ns) == expected
        assert iso_timestamp(ns) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=4))
def test_stored_records_become_the_events_their_spans_would(batch):
    """The export thread turns journal records straight into events (no span): the same
    events, skips and counts as through their spans; a record that cannot be encoded is
    counted and skipped, and costs the others nothing."""
    from trubrics_otel.deliver.exporter import TrubricsSpanExporter

    damaged = [b'[1,"e"]', b'[2,[1],1,1,[]]', b'[1,{},1,1,1,0,null,[]]', b'[2,"e",-1,1,[1,2,3,4]]']
    payloads = [to_bytes(r) for r in batch] + damaged + [b"\x07a newer format"]
    direct, spans = (TrubricsSpanExporter(api_key="k", host="http://127.0.0.1:9", spool=False) for _ in "ab")
    expected = spans.encode(tracked.spans_from_bytes(payloads, logging.getLogger()))
    assert direct.encode_records(payloads) == expected
    assert direct.stats() == spans.stats()
    not_encodable = to_bytes((VERSION, LLM, 7, 7, 0, None, ("u", "p", "g", "Prompt", "Generation", None, None,
                                                            10**18, "not a latency", None, None)))
    assert direct.encode_records([not_encodable, *payloads]) == expected
    assert direct.stats()["encode_errors"] == 1


def test_a_tuple_thread_id_is_sent_alike_from_memory_and_from_the_journal():
    """marshal keeps a tuple a tuple, JSON makes it a list: the event's ``thread_id`` text must
    not depend on which copy of the record is sent (Hypothesis found this once)."""
    record = (VERSION, LLM, 2**100, 2**60, 0, None,
              ("u", "p", "g", "Prompt", "Generation", None, {"$thread_id": (1, "two")}, 10**18, 1.5, None, None))
    with mock.patch.object(tracked, "_JSON", None):  # the marshal format
        stored = from_bytes(to_bytes(record))
    assert _as_sent(stored) == _as_sent(with_json_properties(record))
    assert _as_sent(stored)[0]["thread_id"] == "[1, 'two']"
