"""The recorded fixtures that carry their own expectations are well-formed specs.

``tests/recorders/*.py`` write ``{"spans", "logs", "expected"}`` files whose ``expected`` block is
what the readers (``translate/conventions/<source>.py``) must produce. These checks keep the spec
itself honest until then: every fixture loads as real spans, names existing spans for its LLM
events, uses only the agreed event properties, and is documented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from span_fixtures import FIXTURES, load

SPECS = sorted(
    path for path in FIXTURES.glob("*/*.json") if "expected" in json.loads(path.read_text())
)
LLM_EVENT_KEYS = {
    "user_id",
    "thread_id",
    "prompt",
    "generation",
    "assistant_id",
    "error",
    "properties",
}
PROPERTIES = {
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "time_to_first_token",
    "provider",
}


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_there_are_specs() -> None:
    assert len({p.parent for p in SPECS}) >= 12


@pytest.mark.parametrize("path", SPECS, ids=fixture_id)
def test_a_spec_names_real_spans_for_its_llm_events(path: Path) -> None:
    data = json.loads(path.read_text())
    expected: dict[str, Any] = data["expected"]
    spans = {s.context.span_id: s for s in load(path.parent.name, path.stem)}
    chosen = [int(span_id, 16) for span_id in expected["span_for_llm_event"]]
    assert len(chosen) == len(set(chosen)) == len(expected["llm_events"])
    for span_id in chosen:
        assert span_id in spans
        assert spans[span_id].name != "handle request"  # the app's span is never an LLM call
    assert isinstance(expected["notes"], str) and expected["notes"]


@pytest.mark.parametrize("path", SPECS, ids=fixture_id)
def test_a_spec_uses_the_agreed_event_shape(path: Path) -> None:
    expected = json.loads(path.read_text())["expected"]
    for event in expected["llm_events"]:
        assert set(event) == LLM_EVENT_KEYS
        assert set(event["properties"]) <= PROPERTIES
        assert event["properties"]["provider"] == "openai"
        tokens = event["properties"]
        if "cache_read_input_tokens" in tokens and "input_tokens" in tokens:
            assert tokens["cache_read_input_tokens"] <= tokens["input_tokens"]
        assert (event["error"] is None) == (event["generation"] is not None)
    for event in expected["events"]:
        assert event["event"] == "execute_tool get_weather"
        assert event["properties"]["tool_name"] == "get_weather"


@pytest.mark.parametrize("path", SPECS, ids=fixture_id)
def test_a_tool_case_expects_one_tool_event_between_two_calls(path: Path) -> None:
    expected = json.loads(path.read_text())["expected"]
    if path.stem not in ("tool_call", "metadata_agent"):
        assert expected["events"] == []
        return
    first, second = expected["llm_events"]
    assert first["generation"].startswith("tool_call: get_weather(")
    assert second["prompt"] == first["prompt"]  # the last user TEXT, not the tool result
    assert len(expected["events"]) == 1


def test_every_spec_directory_is_documented() -> None:
    table = (FIXTURES / "README.md").read_text()
    for directory in sorted({p.parent for p in SPECS}):
        assert (directory / "NOTES.md").is_file(), directory.name
        assert f"`{directory.name}`" in table, directory.name
