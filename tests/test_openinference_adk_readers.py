"""The OpenInference and Google ADK readers on what the fixtures alone do not pin down.

The recorded fixtures (``tests/fixtures/spans``, checked field by field in
``test_fixture_expectations.py``) show each library's usual output; these tests hold the
readers' rules at their edges: which tool call a tool run answers, token counts written
the older way, and spans that only look like model calls.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from span_fixtures import load

from trubrics_otel.translate.conventions import LlmCall, SpanEvent, read_span
from trubrics_otel.translate.conventions import openinference as oi
from trubrics_otel.translate.encoder import encode_spans

TRACE = 0xC0DE


def span(
    span_id: int,
    attributes: dict[str, Any],
    *,
    start: int = 1_000,
    end: int = 2_000,
    name: str = "span",
    trace_id: int = TRACE,
    events: list[Event] | None = None,
    status: StatusCode = StatusCode.UNSET,
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False),
        attributes=attributes,
        events=events or [],
        kind=SpanKind.INTERNAL,
        status=Status(status),
        start_time=start,
        end_time=end,
    )


def reply_calling(*calls: tuple[str, str]) -> dict[str, Any]:
    """An OpenInference LLM span's attributes whose reply calls these (id, tool name)."""
    attributes: dict[str, Any] = {"openinference.span.kind": "LLM"}
    prefix = "llm.output_messages.0.message.tool_calls"
    for i, (call_id, name) in enumerate(calls):
        attributes[f"{prefix}.{i}.tool_call.id"] = call_id
        attributes[f"{prefix}.{i}.tool_call.function.name"] = name
        attributes[f"{prefix}.{i}.tool_call.function.arguments"] = "{}"
    return attributes


def tool_run(name: str) -> dict[str, Any]:
    return {"openinference.span.kind": "TOOL", "tool.name": name}


# --- tool runs ------------------------------------------------------------------------


def test_tool_runs_that_record_no_call_id_get_the_id_of_the_call_they_answer() -> None:
    for source in ("openai-agents-responses", "openai-agents-chatcompletions",
                   "llama-index-openinference"):
        spans = load(source, "tool_call")
        tools = [s for s in spans if (s.attributes or {}).get("openinference.span.kind") == "TOOL"]
        assert len(tools) == 1, source
        assert oi.tool_call_ids(spans) == {tools[0].context.span_id: "call_fake_0001"}, source


def test_two_runs_of_one_tool_answer_its_two_calls_in_order() -> None:
    spans = [
        span(1, reply_calling(("call_a", "get_weather"), ("call_b", "get_weather")), end=100),
        span(3, tool_run("get_weather"), start=300),
        span(2, tool_run("get_weather"), start=200),
    ]
    assert oi.tool_call_ids(spans) == {2: "call_a", 3: "call_b"}


def test_a_tool_run_is_matched_only_to_a_reply_of_its_trace_that_came_before_it() -> None:
    spans = [
        span(1, reply_calling(("call_later", "get_weather")), start=500, end=600),
        span(2, reply_calling(("call_other_trace", "get_weather")), end=100, trace_id=0xBEEF),
        span(3, tool_run("get_weather"), start=300),
        span(4, reply_calling(("call_other_tool", "get_time")), end=100),
    ]
    assert oi.tool_call_ids(spans) == {}


def test_a_tool_run_is_an_execute_tool_event_with_its_own_call_id() -> None:
    event = read_span(span(1, {**tool_run("search"), "tool.id": "toolu_1"}, name="search"))
    assert event == SpanEvent(
        "execute_tool search", {"tool_name": "search", "tool_call_id": "toolu_1", "$source": "openinference"}
    )
    reply = span(1, reply_calling(("toolu_1", "search")))
    tool = span(2, {**tool_run("search"), "tool.id": "toolu_1"}, start=3_000)
    assert oi.tool_call_ids([reply, tool]) == {}


def test_a_langchain_tool_run_finds_its_call_id_in_the_tool_message() -> None:
    [tool] = [s for s in load("langchain-openinference", "tool_call") if s.name == "get_weather"]
    assert read_span(tool) == SpanEvent(
        "execute_tool get_weather", {"tool_name": "get_weather", "tool_call_id": "call_fake_0001",
         "$source": "openinference"}
    )


# --- what is a model call -------------------------------------------------------------


def test_llama_index_request_building_is_not_a_second_model_call() -> None:
    spans = load("llama-index-openinference", "tool_call")
    builders = [s for s in spans if s.name == "OpenAI._prepare_chat_with_tools"]
    assert len(builders) == 2
    assert [read_span(s) for s in builders] == [None, None]
    assert len(encode_spans(spans).llm_events) == 2


def test_a_failed_call_that_recorded_nothing_else_is_still_a_model_call() -> None:
    [failed] = [s for s in load("openai-agents-responses", "error") if s.name == "response"]
    assert isinstance(read_span(failed), LlmCall)


def test_a_call_whose_reply_is_only_tool_calls_reads_as_those_calls() -> None:
    attributes = {
        **reply_calling(("call_1", "get_weather")),
        "llm.output_messages.0.message.contents.0.message_content.type": "text",
        "llm.output_messages.0.message.contents.0.message_content.text": "",
    }
    call = read_span(span(1, attributes))
    assert isinstance(call, LlmCall)
    assert call.generation == "tool_call: get_weather({})"


def test_a_completions_call_reads_its_prompt_and_choice() -> None:
    call = read_span(span(1, {"openinference.span.kind": "LLM",
                              "llm.prompts.0.prompt.text": "Say hi",
                              "llm.choices.0.completion.text": "Hi",
                              "input.value": '{"prompts": ["Say hi"]}'}))
    assert isinstance(call, LlmCall)
    assert (call.prompt, call.generation) == ("Say hi", "Hi")
    older = read_span(span(1, {"openinference.span.kind": "LLM", "llm.prompts": ("Say hi",)}))
    assert isinstance(older, LlmCall) and older.prompt == "Say hi"


# --- tokens ---------------------------------------------------------------------------


def llm_tokens(**counts: Any) -> dict[str, Any]:
    attributes = {"openinference.span.kind": "LLM", "llm.provider": "anthropic",
                  "llm.input_messages.0.message.role": "user",
                  "llm.input_messages.0.message.content": "Hi"}
    attributes.update({f"llm.token_count.{k.replace('__', '.')}": v for k, v in counts.items()})
    call = read_span(span(1, attributes))
    assert isinstance(call, LlmCall)
    return {k: call.properties.get(k) for k in ("input_tokens", "output_tokens",
            "cache_read_input_tokens", "cache_creation_input_tokens", "reasoning_tokens")}


def test_cached_input_is_part_of_the_prompt_count_never_added_twice() -> None:
    assert llm_tokens(prompt=1506, completion=4, prompt_details__cache_read=1200,
                      prompt_details__cache_write=300) == {
        "input_tokens": 1506, "output_tokens": 4, "cache_read_input_tokens": 1200,
        "cache_creation_input_tokens": 300, "reasoning_tokens": 0}


def test_an_uncached_prompt_count_written_the_anthropic_way_is_made_the_total() -> None:
    tokens = llm_tokens(prompt=6, completion=4, prompt_details__cache_read=1200,
                        prompt_details__cache_write=300)
    assert tokens["input_tokens"] == 1506 and tokens["cache_read_input_tokens"] == 1200


def test_plain_counts_give_every_token_property_the_detailed_ones_do() -> None:
    """A call with a prompt and a completion count and no detail: all five counts, the parts
    it does not break down 0, as for a call that does (and the total it wrote)."""
    assert llm_tokens(prompt=12, completion=3) == {
        "input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0, "reasoning_tokens": 0}
    assert llm_tokens(prompt=12, completion=3, prompt_details__cache_read=0) == llm_tokens(prompt=12, completion=3)
    attributes = {"openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user",
                  "llm.input_messages.0.message.content": "Hi", "llm.token_count.prompt": 12,
                  "llm.token_count.completion": 3, "llm.token_count.total": 15}
    (event,) = encode_spans([span(1, attributes)]).llm_events
    assert {k: v for k, v in event["properties"].items() if k.endswith("tokens")} == {
        "input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0, "reasoning_tokens": 0, "total_tokens": 15}
    assert llm_tokens(prompt=12, completion=None)["output_tokens"] == 0


def test_counts_written_as_text_are_counts() -> None:
    assert llm_tokens(prompt="12", completion="3", total="15")["input_tokens"] == 12


def test_impossible_counts_give_no_tokens_rather_than_wrong_ones() -> None:
    not_counts = llm_tokens(prompt="many", completion=4, prompt_details__cache_read="x")
    assert not_counts["input_tokens"] is None
    assert llm_tokens(prompt=-5, completion=4)["input_tokens"] is None
    reasoning_above_output = llm_tokens(prompt=10, completion=2, completion_details__reasoning=7)
    assert reasoning_above_output["output_tokens"] is None


def test_time_to_first_token_is_the_first_token_event_after_the_start() -> None:
    attributes = {"openinference.span.kind": "LLM", "llm.output_messages.0.message.content": "Hi"}
    call = read_span(span(1, attributes, start=1_000_000_000,
                          events=[Event("First Token Stream Event", {}, 1_250_000_000)]))
    assert isinstance(call, LlmCall)
    assert call.properties["time_to_first_token"] == 0.25


# --- Google ADK -----------------------------------------------------------------------


def test_content_adk_did_not_capture_is_no_prompt() -> None:
    [model_span] = [
        s for s in load("google-adk-legacy", "chat") if s.name.startswith("generate_content")
    ]
    call = read_span(model_span)
    assert isinstance(call, LlmCall)
    assert (call.prompt, call.generation) == ("", "")
    assert call.properties["provider"] == "gemini"


def test_adk_1x_call_llm_counts_the_thoughts_from_geminis_own_usage() -> None:
    response = {"content": {"role": "model", "parts": [{"text": "Hi"}]},
                "usage_metadata": {"prompt_token_count": 10, "candidates_token_count": 2,
                                   "thoughts_token_count": 5, "cached_content_token_count": 4}}
    older_call_llm = {  # ADK 1.x: output_tokens without the thoughts
        "gen_ai.system": "gcp.vertex.agent", "gen_ai.request.model": "gemini-2.5-flash",
        "gcp.vertex.agent.llm_request": json.dumps(
            {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}),
        "gcp.vertex.agent.llm_response": json.dumps(response),
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2,
    }
    call = read_span(span(1, older_call_llm, name="call_llm"))
    assert isinstance(call, LlmCall)
    assert (call.prompt, call.generation, call.model) == ("Hello", "Hi", "gemini-2.5-flash")
    assert {k: call.properties[k] for k in ("input_tokens", "output_tokens", "reasoning_tokens",
                                            "cache_read_input_tokens")} == {
        "input_tokens": 10, "output_tokens": 7, "reasoning_tokens": 5, "cache_read_input_tokens": 4}
    assert "provider" not in call.properties  # gcp.vertex.agent is ADK, not the model's provider


def test_adk_tool_spans_and_wrappers_are_no_model_calls() -> None:
    for case in ("tool_call", "error"):
        for s in load("google-adk-legacy", case):
            if s.name.startswith(("execute_tool", "invoke_agent", "invocation")):
                assert not isinstance(read_span(s), LlmCall), s.name
    older_tool_response = {
        "gen_ai.system": "gcp.vertex.agent",
        "gcp.vertex.agent.llm_request": "{}",
        "gcp.vertex.agent.llm_response": "{}",
        "gcp.vertex.agent.event_id": "e1",
    }
    assert read_span(span(1, older_tool_response)) is None


def test_the_adk_runner_user_on_a_content_log_record_reaches_the_model_span() -> None:
    [model_span] = [s for s in load("google-adk-content", "runner_session")
                    if s.name.startswith("generate_content")]
    assert (model_span.attributes or {}).get("user.id") == "u1"
