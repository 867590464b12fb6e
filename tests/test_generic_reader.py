"""The generic reader (the rule table's last row) and ``$source`` (which row read an event).

A library nobody recorded still gives a useful event when its span names a model and carries
message-shaped content or token counts under a common spelling; a span that is a wrapper, a
tool, an HTTP or a database call never becomes an LLM event, whatever model it names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind
from span_fixtures import load

from trubrics_otel.translate.encoder import encode_spans

MESSAGES = json.dumps([{"role": "system", "content": "Be terse."},
                       {"role": "user", "content": "Capital of France?"}])


def span(attributes: dict[str, Any], name: str = "generate", span_id: int = 7) -> ReadableSpan:
    return ReadableSpan(
        name=name, context=SpanContext(0xABC, span_id, is_remote=False), parent=None,
        attributes=attributes, kind=SpanKind.CLIENT, start_time=1_000_000_000,
        end_time=1_500_000_000,
    )


def llm_events(*spans: ReadableSpan) -> list[dict[str, Any]]:
    encoded = encode_spans(list(spans))
    assert not encoded.errors
    return encoded.llm_events


UNKNOWN_LIBRARIES = {
    "input/output + usage.*": (
        {"model": "acme-large", "input": MESSAGES, "output": "Paris.",
         "usage.prompt_tokens": 9, "usage.completion_tokens": 2, "user.id": "u1"},
        ("Capital of France?", "Paris.", "acme-large", 9, 2),
    ),
    "*.input.value / *.output.value": (
        {"acme.model_name": "acme-small", "acme.input.value": "Capital of France?",
         "acme.output.value": json.dumps({"choices": [{"message": {"role": "assistant",
                                                                   "content": "Paris."}}],
                                          "usage": {"prompt_tokens": 4, "completion_tokens": 1}})},
        ("Capital of France?", "Paris.", "acme-small", 4, 1),
    ),
    "*.messages + JSON usage": (
        {"llm.model": "acme-x", "llm.messages": MESSAGES, "llm.response": "Paris.",
         "llm.usage": json.dumps({"input_tokens": 7, "output_tokens": 3})},
        ("Capital of France?", "Paris.", "acme-x", 7, 3),
    ),
    "prompt / completion + *_tokens": (
        {"model_id": "acme-y", "prompt": "Capital of France?", "completion": "Paris.",
         "prompt_tokens": 3, "completion_tokens": 1},
        ("Capital of France?", "Paris.", "acme-y", 3, 1),
    ),
    "token counts alone": (
        {"ai.model.name": "acme-z", "ai.inputTokens": 12, "ai.outputTokens": 4},
        ("", "", "acme-z", 12, 4),
    ),
}


@pytest.mark.parametrize("case", list(UNKNOWN_LIBRARIES))
def test_an_unknown_library_gives_a_useful_event(case: str) -> None:
    attributes, (prompt, generation, model, input_tokens, output_tokens) = UNKNOWN_LIBRARIES[case]
    (event,) = llm_events(span(attributes))
    assert (event["prompt"], event["generation"], event["assistant_id"]) == (prompt, generation, model)
    assert event["properties"]["input_tokens"] == input_tokens
    assert event["properties"]["output_tokens"] == output_tokens
    assert event["properties"]["$source"] == "generic"


def test_an_unknown_call_inherits_its_user_and_thread() -> None:
    app = ReadableSpan(name="handle request", context=SpanContext(0xABC, 1, is_remote=False),
                       attributes={"user.id": "u9", "session.id": "s9"}, start_time=0,
                       end_time=2_000_000_000)
    call = ReadableSpan(name="generate", context=SpanContext(0xABC, 2, is_remote=False),
                        parent=app.context, attributes={"model": "m", "input": "Hi", "output": "Yo"},
                        start_time=1_000_000_000, end_time=1_500_000_000)
    (event,) = llm_events(app, call)
    assert (event["user_id"], event["thread_id"]) == ("u9", "s9")


NOT_CALLS = {
    "an HTTP client span": ({"http.request.method": "POST", "url.full": "https://x/v1/chat",
                             "model": "gpt-4o", "http.response.body.size": 120,
                             "http.response.usage": '{"prompt_tokens": 3, "completion_tokens": 1}'},
                            "POST"),
    "a database span": ({"db.system": "postgresql", "db.statement": "select model, input",
                         "model": "m", "input": "x"}, "SELECT"),
    "an agent span with a model and no messages or tokens": (
        {"agent.name": "helper", "agent.model": "gpt-4o", "agent.instructions": "Be nice"},
        "run agent"),
    "an agent span with a model, messages and summed tokens": (
        {"model": "gpt-4o", "input": MESSAGES, "output": "Paris.", "usage.total_tokens": 40},
        "agent run"),
    "a span declaring itself an agent": (
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o",
         "input": MESSAGES, "gen_ai.usage.input_tokens": 10}, "invoke_agent helper"),
    "a tool span": ({"tool.name": "get_weather", "model": "gpt-4o", "input": "{\"city\": 1}",
                     "output": "Sunny"}, "get_weather tool"),
    "an embedding": ({"model": "text-embedding-3-small", "input": "Paris",
                      "embedding.dimensions": 1536, "usage.prompt_tokens": 1}, "embed"),
    "a model name and nothing else": ({"model": "gpt-4o", "input": ""}, "load model"),
}


@pytest.mark.parametrize("case", list(NOT_CALLS))
def test_what_is_not_a_model_call_gives_no_llm_event(case: str) -> None:
    attributes, name = NOT_CALLS[case]
    assert llm_events(span(attributes, name=name)) == []


SOURCES = {
    ("openai-v2-span_only", "chat"): "opentelemetry-genai",
    ("openinference", "chat"): "openinference",
    ("vercel-ai", "chat"): "vercel-ai",
    ("litellm-otel", "chat_request_span"): "litellm",
    ("langfuse-sdk", "chat"): "langfuse",
}


@pytest.mark.parametrize("source, case", list(SOURCES))
def test_each_event_says_which_row_read_it(source: str, case: str) -> None:
    encoded = encode_spans(load(source, case))
    assert {e["properties"]["$source"] for e in encoded.llm_events} == {SOURCES[source, case]}


def test_our_own_events_carry_no_source() -> None:
    """Spans trubrics-otel wrote (``track_llm`` sent over OTLP) were not "understood" by a row."""
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                  "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}
    own = ReadableSpan(name="chat m", context=SpanContext(0xABC, 3, is_remote=False),
                       attributes=attributes, start_time=0, end_time=1,
                       instrumentation_scope=InstrumentationScope("trubrics_otel"))
    (event,) = llm_events(own)
    assert "$source" not in event["properties"]
    (theirs,) = llm_events(span(attributes))
    assert theirs["properties"]["$source"] == "opentelemetry-genai"


def test_each_spelling_of_keys_gets_its_own_answer() -> None:
    """Which rows a span's keys make it is remembered per spelling of those keys: a span with
    as many keys as a call's, or the same keys in another order, is judged on its own."""
    call = {"model": "m", "input": "Hi", "output": "Yo"}
    lookalike = {"model": "m", "colour": "red", "size": "L"}  # as many keys, no content
    raw = {"llm.openai.messages": "[{'role': 'user', 'content': 'Hi'}]",
           "llm.openai.choices": "[{'message': {'role': 'assistant', 'content': 'Yo'}}]",
           "llm.openai.model": "gpt-4o"}
    raw_lookalike = {"llm.openai.choices": "[]", "llm.openai.colour": "red", "llm.openai.size": "L"}
    for _ in range(2):
        assert llm_events(span(lookalike)) == []
        assert [e["prompt"] for e in llm_events(span(call))] == ["Hi"]
        assert [e["generation"] for e in llm_events(span(dict(reversed(call.items()))))] == ["Yo"]
        assert llm_events(span(raw_lookalike, name="raw_gen_ai_request")) == []
        assert [e["properties"]["$source"] for e in llm_events(span(raw, name="raw_gen_ai_request"))] \
            == ["litellm-raw-request"]
        assert [e["prompt"] for e in llm_events(span(dict(reversed(raw.items())), name="raw_gen_ai_request"))] \
            == ["Hi"]
