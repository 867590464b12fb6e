"""LiteLLM through OpenInference, as recorded (``tests/recorders/litellm_openinference.py``): the
event's model is the one the reply names (``gpt-4o-mini-2024-07-18``, as the other sources give
it), the app's ``openai/gpt-4o-mini`` kept as the request model, and the dated name is priced
when the span carries no cost of its own."""

from __future__ import annotations

import json

import pytest
from span_fixtures import FIXTURES, to_span
from test_fixture_expectations import encode_fixture

DATED, ASKED = "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"


def spans(case: str, *, without_cost: bool = False) -> list:
    recorded = json.loads((FIXTURES / "litellm-openinference" / f"{case}.json").read_text())["spans"]
    if without_cost:  # an instrumentation that leaves llm.cost.* out: the price table's turn
        for span in recorded:
            span["attributes"] = {k: v for k, v in span["attributes"].items() if not k.startswith("llm.cost.")}
    return [to_span(span) for span in recorded]


def test_a_reply_that_names_its_model_gives_it_and_a_text_reply_keeps_the_apps():
    asks, answers = sorted(encode_fixture(spans("tool_call")).llm_events, key=lambda e: e["timestamp"])
    assert (asks["assistant_id"], asks["properties"]["request_model"]) == (DATED, ASKED)
    assert answers["assistant_id"] == ASKED and "request_model" not in answers["properties"]
    chat, = encode_fixture(spans("chat")).llm_events  # output.value is the text: no response model
    assert chat["assistant_id"] == ASKED


def test_the_dated_model_is_priced_when_the_span_carries_no_cost():
    carried = sorted(encode_fixture(spans("tool_call")).llm_events, key=lambda e: e["timestamp"])
    priced = sorted(encode_fixture(spans("tool_call", without_cost=True)).llm_events, key=lambda e: e["timestamp"])
    assert [e["properties"]["cost_source"] for e in carried] == ["span", "span"]
    for ours, theirs in zip(priced, carried):
        assert ours["properties"]["cost_source"] != "span"
        assert ours["properties"]["cost_usd"] == pytest.approx(theirs["properties"]["cost_usd"])  # LiteLLM's own price
