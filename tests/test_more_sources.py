"""Issue 29's sources beyond what their fixtures' ``expected`` blocks compare: latency of a
Logfire stream, a Langfuse error on an UNSET status, OpenLIT's user, tool names."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext
from span_fixtures import FIXTURES, load

from trubrics_otel.translate.encoder import encode_spans


def span(attributes: dict[str, Any], name: str = "call", span_id: int = 5) -> ReadableSpan:
    return ReadableSpan(name=name, context=SpanContext(0xBEE, span_id, is_remote=False),
                        attributes=attributes, start_time=1_000_000_000, end_time=3_000_000_000)


def test_a_logfire_stream_is_one_event_timed_by_its_duration() -> None:
    for mode in ("logfire-default", "logfire-v1"):
        spans = load(mode, "stream")
        [log] = [s for s in spans if (s.attributes or {}).get("logfire.span_type") == "log"]
        (event,) = encode_spans(spans).llm_events
        assert event["latency"] == log.attributes["duration"] > 0
        assert event["properties"]["$span_id"] == f"{log.context.span_id:016x}"


def test_a_langfuse_error_level_is_an_error_whatever_the_status() -> None:
    attributes = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "m",
                  "langfuse.observation.input": json.dumps([{"role": "user", "content": "Hi"}]),
                  "langfuse.observation.level": "ERROR",
                  "langfuse.observation.status_message": "quota exceeded"}
    (event,) = encode_spans([span(attributes)]).llm_events
    assert (event["properties"]["error.type"], event["properties"]["error.message"]) == (
        "error", "quota exceeded")
    assert event["prompt"] == "Hi"


def test_langfuse_cost_details_are_the_event_cost() -> None:
    (event,) = encode_spans(load("langfuse-sdk", "observe_generation")).llm_events
    assert abs(event["properties"]["cost_usd"] - 0.000096) < 1e-12
    assert FIXTURES.is_dir()


def test_openlit_names_the_user_from_the_openai_user_parameter() -> None:
    (event,) = encode_spans(load("openlit", "user_param")).llm_events
    assert event["user_id"] == "u1"


def test_a_zero_cost_for_counted_tokens_is_no_cost() -> None:
    """OpenLIT without its price table (offline) writes 0: the event is priced by us instead."""
    from trubrics_otel.translate.cost import span_cost

    assert span_cost({"gen_ai.usage.cost": 0, "gen_ai.usage.input_tokens": 5}) is None
    assert span_cost({"gen_ai.usage.cost": 0}) == {"cost_usd": 0}
    assert span_cost({"gen_ai.usage.cost": 2.5e-06, "gen_ai.usage.input_tokens": 5}) == {
        "cost_usd": 2.5e-06}


def test_strands_time_to_first_token_is_in_seconds_and_its_provider_is_not_the_framework() -> None:
    for source in ("strands-agents", "strands-agents-latest"):
        spans = load(source, "chat")
        [chat] = [s for s in spans if s.name == "chat"]
        (event,) = encode_spans(spans).llm_events
        milliseconds = chat.attributes["gen_ai.server.time_to_first_token"]
        assert event["properties"]["time_to_first_token"] == milliseconds / 1000
        assert "provider" not in event["properties"]
        assert event["properties"]["$source"] == "strands-agents"


def test_a_tool_event_is_named_after_the_tool_not_the_callable_that_ran_it() -> None:
    from trubrics_otel.translate.conventions.base import tool_name

    tool_spans = [
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather.__call__"},
        {"openinference.span.kind": "TOOL", "tool.name": "get_weather.invoke"},
        {"langfuse.observation.type": "tool"},
        {"mlflow.spanType": '"TOOL"', "mlflow.spanFunctionName": '"get_weather.__call__"'},
        {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "get_weather()"},
    ]
    for number, attributes in enumerate(tool_spans, start=1):
        encoded = encode_spans([span(attributes, name="get_weather.__call__", span_id=number)])
        (event,) = encoded.events
        assert (event["event"], event["properties"]["tool_name"]) == (
            "execute_tool get_weather", "get_weather"), attributes
    assert tool_name("run") == "run" and tool_name("get_weather.__call__()") == "get_weather"


def _root(trace: int, scope: str, start: int, end: int, parent: int | None = None) -> ReadableSpan:
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                  "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 3}
    return ReadableSpan(
        name="chat", context=SpanContext(trace, trace + 1, is_remote=False),
        parent=None if parent is None else SpanContext(trace, parent, is_remote=False),
        attributes=attributes, start_time=start, end_time=end,
        instrumentation_scope=InstrumentationScope(scope))


def test_one_call_in_two_traces_is_one_event_only_when_roots_overlap() -> None:
    (merged,) = encode_spans(load("anthropic-openllmetry-events", "chat")).llm_events
    assert merged["assistant_id"] == "claude-sonnet-4-6-20250929"  # filled from the SDK's root
    ms = 1_000_000
    overlapping = [_root(0x10, "a", 100 * ms, 900 * ms), _root(0x20, "b", 200 * ms, 800 * ms)]
    assert len(encode_spans(overlapping).llm_events) == 1
    one_after_the_other = [_root(0x10, "a", 100 * ms, 900 * ms),
                           _root(0x20, "b", 1_000 * ms, 1_800 * ms)]
    assert len(encode_spans(one_after_the_other).llm_events) == 2
    not_roots = [_root(0x10, "a", 100 * ms, 900 * ms, parent=7),
                 _root(0x20, "b", 200 * ms, 800 * ms, parent=9)]
    assert len(encode_spans(not_roots).llm_events) == 2
