"""The recorded span fixtures that carry hand-written ``expected`` events are sound specs.

A reader (``translate/conventions/<source>.py``) will be checked against these fixtures, so
a fixture whose expectation contradicts its own spans would make a correct reader fail.
Here each one must load as real ``ReadableSpan`` objects, point at spans it really has, and
state token counts that obey the project's convention (input includes cached, output
includes reasoning)::

    python -m pytest tests/test_span_fixture_specs.py -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from span_fixtures import FIXTURES, load

EVENT_KEYS = {"user_id", "thread_id", "prompt", "generation", "assistant_id", "error", "properties"}
TOKEN_KEYS = {
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
}
SECONDS_PLACEHOLDER = "<seconds>"


def _with_expectations() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*.json") if "expected" in json.loads(p.read_text()))


FIXTURE_FILES = _with_expectations()


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.fixture(params=FIXTURE_FILES, ids=[_id(p) for p in FIXTURE_FILES])
def fixture(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    return request.param, json.loads(request.param.read_text())


def test_every_source_was_recorded() -> None:
    sources = {p.parent.name for p in FIXTURE_FILES}
    assert {
        "vercel-ai",
        "pydantic-ai",
        "langchain-openinference",
        "langchain-openllmetry",
        "llama-index-openinference",
        "openai-agents-responses",
        "openai-agents-chatcompletions",
        "anthropic-native",
        "anthropic-openllmetry",
        "anthropic-openinference",
        "litellm-otel",
        "google-adk",
        "bedrock-openllmetry",
    } <= sources


def test_fixture_loads_as_spans(fixture: tuple[Path, dict[str, Any]]) -> None:
    path, data = fixture
    spans = load(path.parent.name, path.stem)
    assert len(spans) == len(data["spans"])
    assert all(span.end_time >= span.start_time for span in spans)


def test_llm_events_point_at_recorded_spans(fixture: tuple[Path, dict[str, Any]]) -> None:
    _, data = fixture
    expected = data["expected"]
    ids = {span["span_id"] for span in data["spans"]}
    chosen = expected["span_for_llm_event"]
    assert len(chosen) == len(expected["llm_events"])
    assert set(chosen) <= ids
    assert len(set(chosen)) == len(chosen), "one span per model call"
    assert isinstance(expected["notes"], str) and expected["notes"]


def test_llm_events_follow_the_token_convention(fixture: tuple[Path, dict[str, Any]]) -> None:
    _, data = fixture
    for event in data["expected"]["llm_events"]:
        assert set(event) == EVENT_KEYS
        properties = event["properties"]
        counts = {k: v for k, v in properties.items() if k in TOKEN_KEYS}
        assert all(isinstance(v, int) and v >= 0 for v in counts.values()), counts
        cached = counts.get("cache_read_input_tokens", 0) + counts.get(
            "cache_creation_input_tokens", 0
        )
        assert counts.get("input_tokens", cached) >= cached, "input_tokens includes the cached ones"
        assert counts.get("output_tokens", 0) >= counts.get("reasoning_tokens", 0)
        ttft = properties.get("time_to_first_token")  # measured in the recording, or unknowable
        assert ttft in (None, SECONDS_PLACEHOLDER) or (isinstance(ttft, float) and ttft >= 0)
        assert "provider" in properties  # null: the telemetry does not say, none may be made up
        if event["error"] is not None:
            assert event["generation"] is None


def test_tool_events_name_their_tool(fixture: tuple[Path, dict[str, Any]]) -> None:
    _, data = fixture
    for event in data["expected"]["events"]:
        assert event["event"].startswith("execute_tool ")
        assert event["properties"]["tool_name"] == event["event"].removeprefix("execute_tool ")


def test_every_spec_directory_is_documented() -> None:
    table = (FIXTURES / "README.md").read_text()
    for directory in sorted({p.parent for p in FIXTURE_FILES}):
        assert (directory / "NOTES.md").is_file(), directory.name
        assert f"`{directory.name}`" in table, directory.name
