"""The quick validations answer exactly as the full one does: the OTLP intake's, for every event
an encoded span can turn into (the usual ones and each way a span's attributes can go wrong), and
the ingestion API's reading of a body, for the usual batches and each way a body can be odd."""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest

from trubrics_otel.server.validation import (
    EVENT,
    LLM_EVENT,
    parse_batch,
    read_batch,
    validate_batch,
    validate_encoded,
    validate_event,
)
from trubrics_otel.server.store.rows import llm_row
from trubrics_otel.translate import fastjson
from trubrics_otel.translate.fastjson import dumps


def llm_event(**changes):
    event = {
        "user_id": "u1", "prompt": "hi", "generation": "hello", "prompt_event_name": "Prompt",
        "generation_event_name": "Generation", "assistant_id": "gpt-4o",
        "properties": {"$trace_id": "ab" * 16, "$span_id": "cd" * 8, "input_tokens": 3, "temperature": 0.2},
        "timestamp": "2026-12-04T12:00:00.123456+00:00", "latency": 0.5, "thread_id": "t1",
    }
    event.update(changes)
    return event


def product_event(**changes):
    event = {"user_id": "u1", "event": "execute_tool search", "properties": {"$source": "genai"},
             "timestamp": "2026-12-04T12:00:00+00:00"}
    event.update(changes)
    return event


def deep(levels):
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


CASES = [
    (LLM_EVENT, llm_event()),
    (LLM_EVENT, llm_event(thread_id=None, assistant_id=None, latency=None)),
    (LLM_EVENT, llm_event(latency=-0.25)),  # a span that ends before it starts
    (LLM_EVENT, llm_event(latency=math.inf)),
    (LLM_EVENT, llm_event(latency=3)),  # an int: valid, the careful path says so
    (LLM_EVENT, llm_event(properties={"cost": math.nan, "ok": 1, "none": None})),
    (LLM_EVENT, llm_event(properties={"nested": [{"v": -math.inf}]})),
    (LLM_EVENT, llm_event(properties={"none": None, "fine": 1.5})),
    (LLM_EVENT, llm_event(properties=deep(150))),
    (LLM_EVENT, llm_event(properties=deep(60))),
    (LLM_EVENT, llm_event(properties={"text": "[[[[" * 40})),  # brackets in text, not depth
    (LLM_EVENT, llm_event(prompt="lone \ud800 surrogate")),
    (LLM_EVENT, llm_event(properties={"k\udfff": 1})),
    (LLM_EVENT, llm_event(user_id="   ")),
    (LLM_EVENT, llm_event(user_id="")),
    (LLM_EVENT, llm_event(prompt=None)),
    (LLM_EVENT, llm_event(prompt_event_name=None)),
    (LLM_EVENT, llm_event(generation=42)),
    (LLM_EVENT, llm_event(thread_id=7)),
    (LLM_EVENT, llm_event(properties=None)),
    (LLM_EVENT, llm_event(properties={1: "int key"})),
    (LLM_EVENT, {**llm_event(), "extra": 1}),
    (LLM_EVENT, {k: v for k, v in llm_event().items() if k != "prompt"}),
    (EVENT, product_event()),
    (EVENT, product_event(event=" ")),
    (EVENT, product_event(user_id=None)),
    (EVENT, product_event(properties={"big": 2**70, "nan": math.nan})),
    (EVENT, product_event(timestamp=None)),
]


@pytest.mark.parametrize("fields,event", CASES)
def test_quick_validation_answers_as_the_full_one(fields, event):
    expected = validate_event(copy.deepcopy(event), fields, lenient=True)
    got = validate_encoded(copy.deepcopy(event), fields)
    assert repr(got) == repr(expected)  # repr: NaN != NaN, and repaired values must match too


BODIES = [
    json.dumps([llm_event(), llm_event(user_id="u2", latency=None)]),
    json.dumps([llm_event(properties={"big": 2**70, "neg": -(2**64), "u64": 2**64 - 1, "e": 1e20})]),
    json.dumps([llm_event(properties={"text": "e+1 is not a number", "n": 1.5e-7})]),
    json.dumps([llm_event(properties=deep(99)), llm_event(properties=deep(101)), llm_event(extra=deep(120)),
                llm_event(properties=[deep(120)])]),
    json.dumps([llm_event(), {"user_id": "u1"}, "text", None, [1], llm_event(latency=-1)]),
    '[{"user_id": "u", "prompt": "p", "generation": "g", "properties": {"n": 1e999}}, ' + json.dumps(llm_event()) + "]",
    '[{"user_id": "u", "prompt": "p", "generation": "g", "properties": {"n": NaN}}]',
    '[{"user_id": "\\ud800", "prompt": "p", "generation": "g"}, ' + json.dumps(llm_event()) + "]",
    json.dumps([llm_event(properties={"k": "x" * 10_000})]),
    json.dumps([llm_event(properties=None), llm_event(properties={})]),
    '[{"user_id": "u", "prompt": "p", "generation": "g", "latency": 1E2, "properties": '
    '{"a": 1, "b": -0, "a": 1.0e+2, "c": 1e-400, "d": "\\u0000", "e": 123456789012345678}}]',
    json.dumps({"user_id": "u1"}), json.dumps(2**70), json.dumps([llm_event()] * 101),
]


@pytest.mark.parametrize("body", BODIES)
def test_read_batch_answers_as_parse_then_validate(body):
    """The ingestion API's reading (orjson, when installed) answers exactly as the stdlib's
    parser and the full validation do, and the properties' JSON it hands the store is theirs."""
    good, errors, measured = read_batch(body.encode(), LLM_EVENT)
    assert repr((good, errors)) == repr(validate_batch(parse_batch(body.encode()), LLM_EVENT))
    for event in good:
        if id(event) in measured:
            assert _text(measured[id(event)]) == dumps(event["properties"]).decode()
    if fastjson.ACCELERATED and body == BODIES[0]:
        assert len(measured) == 2  # the usual batch: its properties encoded once


def _text(json: bytes | str) -> str:  # the properties' JSON as validation hands it on: text or bytes
    return json if isinstance(json, str) else json.decode()


def test_unreadable_body_raises_as_parse_batch():
    for body in (b"{not json", b"[1,", b"\xff[]", b"\xef\xbb\xbf[]"):
        with pytest.raises(ValueError):
            read_batch(body, LLM_EVENT)
        with pytest.raises(ValueError):
            parse_batch(body)


_ABSENT = object()
_TEXTS = ("u1", "", "  ", "héllo", _ABSENT, None, 7, 1.5, ["a"], False)
VARIANTS = {  # each field's usual values, and the odd ones a sender may put there
    **dict.fromkeys(("user_id", "prompt", "generation", "prompt_event_name", "generation_event_name",
                     "assistant_id", "thread_id"), _TEXTS),
    "timestamp": (None, _ABSENT, "2026-12-04T12:00:00Z", "2026-12-04T12:00:00.123456+02:00", "2026-12-04",
                  "not a time", "", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00",
                  "0002-01-01T00:00:00+23:59", " 2026-12-04T12:00:00z ", 1700000000),
    "latency": (None, _ABSENT, 0.0, 0.5, 3, -0.25, -1, True, 1e17, 2**63, 2**64, 2**70, "1"),
    "properties": (None, _ABSENT, {}, [], "text", {"deep": deep(98)}, {"deep": deep(99)}, {"deep": deep(100)},
                   {"big": 2**64}, {"big": -(2**63) - 1}, {"f": 1e20}, {"n": None, "f": -0.0, "t": "e+"}),
    "extra": (_ABSENT, 1, deep(120), 2**70),
}


def test_read_batch_answers_as_parse_then_validate_for_any_two_fields_changed():
    """An LLM event with any two of its fields changed (missing, null, of another type, out of
    range): the quick reading of the usual ones answers as the full validation does, and the
    store makes the same row of it. One event a body: an inexact number sends a whole
    body to the stdlib, which would hide its neighbours' answers."""
    base = {**llm_event(), "extra": _ABSENT}
    changes = [(name, value) for name, values in VARIANTS.items() for value in values]
    for (first, one), (second, other) in itertools.combinations(changes, 2):
        event = {**base, first: one, second: other} if first != second else {**base, first: one}
        body = json.dumps([{k: v for k, v in event.items() if v is not _ABSENT}]).encode()
        good, errors, measured = read_batch(body, LLM_EVENT)
        expected = validate_batch(parse_batch(body), LLM_EVENT)
        assert repr((good, errors)) == repr(expected), body[:300]
        if good and id(good[0]) in measured:
            assert _text(measured[id(good[0])]) == dumps(good[0]["properties"]).decode()
        # and the row stored: every column as from the full validation's event
        assert [llm_row(e, 0, measured.get(id(e))) for e in good] == [llm_row(e, 0) for e in expected[0]]
