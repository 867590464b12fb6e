"""The record behind a ``track()`` span: lazy fields, the journal's bytes, the encoder's fast path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.capture.context import UserContext, stamp
from trubrics_otel.translate.encoder import encode_record, encode_span
from trubrics_otel.translate.record_codec import UnknownFormat
from trubrics_otel.translate.tracked import (
    EVENT,
    LLM,
    VERSION,
    TrackedSpan,
    from_bytes,
    to_bytes,
)

texts = st.text(max_size=20)
names = st.text(min_size=1, max_size=12)
ids = st.integers(min_value=1, max_value=2**64 - 1)
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
own_properties = st.none() | st.dictionaries(
    st.sampled_from(["plan", "$thread_id", "$assistant_id", "input_tokens", "a"]) | texts
    | st.integers(0, 3),  # a key JSON turns into text
    plain | st.just(float("nan")) | st.sets(st.integers(), max_size=2),  # values JSON cannot hold
    min_size=1, max_size=5,
)
contexts = st.none() | st.builds(
    lambda user, thread, props: stamp(UserContext(user, thread, props), {}) or None,
    st.none() | names, st.none() | st.just("") | names,
    st.dictionaries(st.sampled_from(["a", "plan", "$thread_id"]), plain, max_size=2),
)
ends = st.integers(min_value=0, max_value=2**62)
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
records = st.one_of(
    st.tuples(st.just(VERSION), st.just(EVENT), ids, ids, st.just(0) | ids, contexts, event_bodies),
    st.tuples(st.just(VERSION), st.just(LLM), ids, ids, st.just(0) | ids, contexts, llm_bodies),
)


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


@settings(max_examples=100, deadline=None)
@given(records)
def test_a_record_survives_the_journal_bytes(record):
    stored = from_bytes(to_bytes(record))
    assert stored is not None
    assert stored[:6] == record[:6]  # version, kind, ids, context: the same span identity
    # the same event (compared as sent: NaN is not equal to itself, a set has no order)
    assert encode_record(stored) == encode_record(record)


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
        from_bytes(to_bytes((VERSION + 1, EVENT, 1, 2, 0, None, ("u", "e", None, 0))))


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
