"""Property-based tests: any input → valid JSON within the limits, and no exception.

Covers the properties encoder (``jsonable.dumps``), the outgoing-event policy
(``redaction.Policy``) and the whole ``track()`` → span → event path. The OTLP decoder's
fuzz test is in ``test_fuzz_otlp.py``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.translate.encoder import encode_span
from trubrics_otel.translate.jsonable import (
    MAX_DEPTH,
    MAX_PROPERTIES_CHARS,
    MAX_STRING_CHARS,
    MAX_TEXT_CHARS,
    bound_properties,
    dumps,
)
from trubrics_otel.translate.redaction import Policy

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Weird:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.binary(max_size=64), st.datetimes(), st.dates(), st.uuids(),
    st.decimals(allow_nan=True, allow_infinity=True), st.just(Weird()), st.just(object()),
    st.integers(MAX_STRING_CHARS - 2, MAX_STRING_CHARS + 50).map(lambda n: "ab" * (n // 2)),
)
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False),
                 st.tuples(st.integers()), st.uuids())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.frozensets(st.integers(), max_size=5),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=40,
)
properties = st.dictionaries(keys, values, max_size=8)


def _strict(constant: str):
    raise AssertionError(f"{constant} is not JSON")


def _depth(value, level=0) -> int:
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def _nested(depth: int) -> dict:
    node: dict = {}
    top = node
    for _ in range(depth):
        node["n"] = {}
        node = node["n"]
    return top


def _cyclic() -> dict:
    d: dict = {"a": [1, 2]}
    d["a"].append(d)
    return d


@FAST
@given(properties)
def test_dumps_always_gives_a_json_object(props):
    parsed = json.loads(dumps(props), parse_constant=_strict)  # valid, strict JSON…
    assert isinstance(parsed, dict)  # …and an object


@pytest.mark.parametrize("props", [
    _nested(3 * MAX_DEPTH), _nested(50_000), _cyclic(), {"x": "y" * (3 * MAX_PROPERTIES_CHARS)},
    {str(i): "v" * 1000 for i in range(1000)}, {"f": float("nan"), "d": decimal.Decimal("Infinity")},
    {dt.date(2020, 1, 1): uuid.UUID(int=1), b"\xff": bytearray(b"\xfe")},
])
def test_dumps_extremes_stay_within_limits(props):
    text = dumps(props)
    assert len(text) <= MAX_PROPERTIES_CHARS  # the size bound, right at track()
    # the nesting bound: applied to every event on its way out (plain JSON nested 96 deep
    # passes dumps' fast path as it is); the object itself is one level
    sent = bound_properties(json.loads(text))
    assert _depth(sent) <= MAX_DEPTH + 1
    assert len(json.dumps(sent, ensure_ascii=False, separators=(",", ":"))) <= MAX_PROPERTIES_CHARS


def _span(attributes: dict) -> ReadableSpan:
    context = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan("e", context, attributes=attributes, start_time=1, end_time=2)


def _within_limits(event: dict) -> None:
    text = json.dumps(event, ensure_ascii=False, allow_nan=False)  # JSON, no NaN
    assert json.loads(text) == event
    props = event["properties"]
    assert len(json.dumps(props, ensure_ascii=False, separators=(",", ":"))) <= MAX_PROPERTIES_CHARS
    assert _depth(props) <= MAX_DEPTH + 1

    def strings(v):
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            for k, x in v.items():
                yield from strings(x)
        elif isinstance(v, list):
            for x in v:
                yield from strings(x)

    assert all(len(s) <= MAX_STRING_CHARS for s in strings(props))
    for field in ("prompt", "generation"):
        if field in event:
            assert isinstance(event[field], str) and len(event[field]) <= MAX_TEXT_CHARS


@FAST
@given(properties, st.text(), st.booleans())
def test_event_path_is_valid_json_within_limits(props, text, capture):
    """track()'s path: properties → span attribute → encoder → policy → wire dict."""
    attributes = {sc.USER_ID: "u", sc.TRUBRICS_EVENT: "e", sc.TRUBRICS_PROPERTIES: dumps(props)}
    kind, event = encode_span(_span(attributes))
    _within_limits(Policy(capture_content=capture).apply(kind, event))


@FAST
@given(st.text(), st.text(), properties)
def test_llm_event_path_is_valid_json_within_limits(prompt, generation, props):
    attributes = {
        sc.USER_ID: "u", sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": generation}]}]),
        sc.TRUBRICS_PROPERTIES: dumps(props),
    }
    kind, event = encode_span(_span(attributes))
    assert kind == "llm"
    _within_limits(Policy().apply(kind, event))


@FAST
@given(values)
@example(math.inf)  # found by hypothesis: a mask returning inf once left invalid JSON
@example({"x": [math.nan]})
def test_any_mask_result_is_made_safe(returned):
    """Whatever a user's mask returns (or raises), the event is still valid and bounded."""
    policy = Policy(mask=lambda value: returned)
    event = {"user_id": "u", "prompt": "p", "generation": "g", "properties": {"$trace_id": "t"},
             "timestamp": None}
    out = policy.apply("llm", event)
    json.loads(json.dumps(out["properties"], allow_nan=False))
    assert out["properties"]["$trace_id"] == "t"
    assert isinstance(out["prompt"], str)


def test_huge_values_are_cut():
    event = {"user_id": "u", "prompt": "p" * (MAX_TEXT_CHARS * 2), "generation": "",
             "properties": {"s": "x" * (MAX_STRING_CHARS * 3), "deep": _nested(MAX_DEPTH * 2)}}
    _within_limits(Policy().apply("llm", event))


def test_math_is_finite_guard():  # keeps the float strategy honest about NaN handling
    assert json.loads(dumps({"x": math.inf})) == {"x": None}
