"""The OTLP intake's quick validation answers exactly as the full one does, for every event an
encoded span can turn into: the usual ones and each way a span's attributes can go wrong."""

from __future__ import annotations

import copy
import math

import pytest

from trubrics_otel.server.validation import EVENT, LLM_EVENT, validate_encoded, validate_event


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
