"""The rule table on recorded spans from the real libraries, and on the older forms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from span_fixtures import FIXTURES, load

from trubrics_otel.translate.encoder import encode_span, encode_spans

# The fixtures recorded by instrumented_app.py; those that carry their own "expected" block
# (tests/recorders/) are the spec for the readers still to be written.
LIBRARIES = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if (p / "chat.json").is_file() and "expected" not in json.loads((p / "chat.json").read_text())
)
SNAPSHOT = "gpt-4o-mini-2024-07-18"

# case → (prompt, generation, assistant_id)
EXPECTED = {
    "chat": ("Say hello", "Echo: Say hello", SNAPSHOT),
    "stream": ("Count to three", "Echo: Count to three", SNAPSHOT),
    "error": ("Break", "", "fail-500"),
    "tool_call": ("Weather in Paris?", 'tool_call: get_weather({"city": "Paris"})', SNAPSHOT),
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("case", list(EXPECTED))
def test_recorded_spans(library: str, case: str) -> None:
    encoded = encode_spans(load(library, case))
    assert not encoded.errors
    (event,) = encoded.llm_events
    assert (event["prompt"], event["generation"], event["assistant_id"]) == EXPECTED[case]
    assert (event["user_id"], event["thread_id"]) == ("u1", "t-42")
    assert event["properties"]["plan"] == "pro"
    assert encoded.skipped == 1  # the app's "handle request" span
    assert [e["event"] for e in encoded.events] == (
        ["execute_tool get_weather"] if case == "tool_call" else []
    )


def test_content_only_in_log_records_needs_the_join() -> None:
    from span_fixtures import to_span

    data = json.loads((FIXTURES / "openai-v2-event_only" / "chat.json").read_text())
    alone = encode_spans([to_span(s) for s in data["spans"]])
    assert (alone.llm_events[0]["prompt"], alone.llm_events[0]["generation"]) == ("", "")
    joined = encode_spans(load("openai-v2-event_only", "chat"))
    assert (joined.llm_events[0]["prompt"], joined.llm_events[0]["generation"]) == (
        "Say hello",
        "Echo: Say hello",
    )


# --- older forms still in the field (spelled as those releases documented them) ----------


def span(
    attributes: dict[str, Any],
    events: list[Event] | None = None,
    *,
    status: Status | None = None,
    name: str = "llm",
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(0xABC, 0xDEF, is_remote=False),
        attributes=attributes,
        events=events or [],
        kind=SpanKind.CLIENT,
        status=status or Status(StatusCode.UNSET),
        start_time=1_000_000_000,
        end_time=3_500_000_000,
    )


def llm_event(s: ReadableSpan) -> dict[str, Any]:
    kind, event = encode_span(s)
    assert kind == "llm"
    return event


def test_openllmetry_flattened_prompt_and_completion() -> None:
    event = llm_event(
        span(
            {
                "llm.request.type": "chat",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.request.temperature": 0.5,
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "Be brief.",
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": "First",
                "gen_ai.prompt.2.role": "assistant",
                "gen_ai.prompt.2.content": "Ok",
                "gen_ai.prompt.3.role": "user",
                "gen_ai.prompt.3.content": "Second",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "Done",
                "gen_ai.completion.0.finish_reason": "stop",
                "gen_ai.usage.prompt_tokens": 11,
                "gen_ai.usage.completion_tokens": 1,
                "llm.usage.total_tokens": 12,
                "traceloop.association.properties.user_id": "u7",
                "traceloop.association.properties.session_id": "s7",
                "traceloop.association.properties.tenant": "acme",
            }
        )
    )
    assert (event["prompt"], event["generation"], event["assistant_id"]) == (
        "Second",
        "Done",
        "gpt-4o-2024-08-06",
    )
    assert (event["user_id"], event["thread_id"], event["latency"]) == ("u7", "s7", 2.5)
    assert event["timestamp"] == "1970-01-01T00:00:03.500000+00:00"  # the span's end
    props = event["properties"]
    assert {
        k: props[k]
        for k in (
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "provider",
            "finish_reason",
            "temperature",
            "request_model",
            "tenant",
        )
    } == {
        "input_tokens": 11,
        "output_tokens": 1,
        "total_tokens": 12,
        "provider": "OpenAI",
        "finish_reason": "stop",
        "temperature": 0.5,
        "request_model": "gpt-4o",
        "tenant": "acme",
    }


def test_openllmetry_flattened_tool_calls_are_summarised() -> None:
    event = llm_event(
        span(
            {
                "llm.request.type": "chat",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Weather?",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.tool_calls.0.name": "get_weather",
                "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Oslo"}',
            }
        )
    )
    assert event["generation"] == 'tool_call: get_weather({"city": "Oslo"})'


def test_openllmetry_embeddings_are_not_llm_events() -> None:
    kind, _ = encode_span(
        span(
            {
                "llm.request.type": "embedding",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "text-embedding-3-small",
            }
        )
    )
    assert kind is None


def test_genai_content_as_span_events_semconv_1_27() -> None:
    event = llm_event(
        span(
            {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
            [
                Event(
                    "gen_ai.content.prompt",
                    {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Hi there"}])},
                ),
                Event(
                    "gen_ai.content.completion",
                    {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "Hello!"}])},
                ),
            ],
        )
    )
    assert (event["prompt"], event["generation"], event["assistant_id"]) == (
        "Hi there",
        "Hello!",
        "gpt-4o",
    )
    assert event["properties"]["provider"] == "openai"


def test_genai_per_message_span_events() -> None:
    event = llm_event(
        span(
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"},
            [
                Event("gen_ai.system.message", {"content": "Be brief."}),
                Event("gen_ai.user.message", {"content": "Question?"}),
                Event(
                    "gen_ai.choice",
                    {
                        "gen_ai.event.content": json.dumps(
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "Answer."},
                            }
                        )
                    },
                ),
            ],
        )
    )
    assert (event["prompt"], event["generation"]) == ("Question?", "Answer.")
    assert event["properties"]["finish_reason"] == "stop"


def test_openinference_raw_input_and_output_values() -> None:
    event = llm_event(
        span(
            {
                "openinference.span.kind": "LLM",
                "input.value": json.dumps(
                    {"messages": [{"role": "user", "content": "Raw prompt"}]}
                ),
                "output.value": "Raw answer",
                "user.id": "u9",
                "session.id": "s9",
            }
        )
    )
    assert (event["prompt"], event["generation"], event["user_id"], event["thread_id"]) == (
        "Raw prompt",
        "Raw answer",
        "u9",
        "s9",
    )


def test_error_type_and_message_from_status_and_class_string() -> None:
    event = llm_event(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "error.type": "<class 'openai.RateLimitError'>",
            },
            status=Status(StatusCode.ERROR, "Error code: 429 - slow down"),
        )
    )
    assert event["properties"]["error.type"] == "openai.RateLimitError"
    assert event["properties"]["error.message"] == "Error code: 429 - slow down"


def test_no_user_anywhere_is_the_anonymous_id() -> None:
    event = llm_event(span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}))
    assert event["user_id"] == "anonymous"
    assert event["thread_id"] is None


def test_other_spans_only_when_opted_in() -> None:
    http = span(
        {"http.request.method": "GET", "url.path": "/health", "user.id": "u1"}, name="GET /health"
    )
    assert encode_spans([http]).skipped == 1
    (event,) = encode_spans([http], all_spans=True).events
    assert event["event"] == "GET /health"
    assert event["user_id"] == "u1"
    assert {
        k: event["properties"][k] for k in ("http.request.method", "span_kind", "duration")
    } == {"http.request.method": "GET", "span_kind": "client", "duration": 2.5}


@pytest.mark.parametrize("attributes, expected", [
    ({"gen_ai.usage.prompt_tokens": 99, "gen_ai.usage.input_tokens": 10}, 10),  # the semconv name wins
    ({"llm.token_count.prompt": 7, "gen_ai.usage.prompt_tokens": 8}, 8),
    ({"gen_ai.usage.input_tokens": "n/a", "gen_ai.usage.prompt_tokens": "12"}, 12),  # else the next count
])
def test_the_first_spelling_of_a_token_count_that_is_a_count_wins(attributes, expected):
    from trubrics_otel.translate.conventions.base import usage_properties

    properties = usage_properties({**attributes, "gen_ai.usage.output_tokens": 3})
    assert properties["input_tokens"] == expected
    assert (properties["output_tokens"], properties["reasoning_tokens"]) == (3, 0)
