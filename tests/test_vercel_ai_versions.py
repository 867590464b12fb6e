"""Vercel AI SDK releases older than the recorded one (ai 6): what their docs and source say
the spans hold, read by the same row. Spans made with the real OpenTelemetry SDK."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trubrics_otel.translate.encoder import encode_spans

PROMPT = json.dumps([{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}])


def llm_event(attributes: dict[str, Any]) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("ai")
    with tracer.start_as_current_span("ai.generateText", attributes={
        "ai.operationId": "ai.generateText", "ai.usage.promptTokens": 99,
    }):
        with tracer.start_as_current_span("ai.generateText.doGenerate", attributes={
            "ai.operationId": "ai.generateText.doGenerate", "ai.prompt.messages": PROMPT,
            "ai.model.id": "m", **attributes,
        }):
            pass
    (event,) = encode_spans(exporter.get_finished_spans()).llm_events  # the wrapper is none
    return event


def test_ai4_tool_calls_with_args_and_prompt_tokens() -> None:
    event = llm_event({
        "ai.model.provider": "openai.chat",
        "ai.response.toolCalls": json.dumps([{"toolCallType": "function", "toolCallId": "c1",
                                              "toolName": "get_weather", "args": '{"city":"Paris"}'}]),
        "ai.usage.promptTokens": 10, "ai.usage.completionTokens": 5,
    })
    assert event["generation"] == 'tool_call: get_weather({"city": "Paris"})'
    assert (event["properties"]["input_tokens"], event["properties"]["output_tokens"]) == (10, 5)
    assert event["properties"]["provider"] == "openai"


def test_ai3_reply_in_result_attributes() -> None:
    event = llm_event({"ai.result.text": "Sunny.", "ai.finishReason": "stop"})
    assert (event["prompt"], event["generation"]) == ("Weather in Paris?", "Sunny.")
    assert event["properties"]["finish_reason"] == "stop"


def test_ai5_anthropic_input_tokens_get_the_cache_back() -> None:
    """ai 5's Anthropic provider left cache reads and writes out of inputTokens."""
    event = llm_event({
        "ai.model.provider": "anthropic.messages", "ai.response.text": "Sunny.",
        "ai.usage.inputTokens": 20, "ai.usage.outputTokens": 5, "ai.usage.cachedInputTokens": 1000,
        "ai.response.providerMetadata": json.dumps({"anthropic": {"cacheCreationInputTokens": 200}}),
    })
    properties = event["properties"]
    assert (properties["input_tokens"], properties["cache_read_input_tokens"],
            properties["cache_creation_input_tokens"]) == (1220, 1000, 200)


def test_ai6_anthropic_input_tokens_are_already_total() -> None:
    event = llm_event({
        "ai.model.provider": "anthropic.messages", "ai.response.text": "Sunny.",
        "ai.usage.inputTokens": 1220, "ai.usage.outputTokens": 5,
        "ai.usage.inputTokenDetails.noCacheTokens": 20,
        "ai.usage.inputTokenDetails.cacheReadTokens": 1000,
        "ai.usage.inputTokenDetails.cacheWriteTokens": 200,
    })
    assert event["properties"]["input_tokens"] == 1220
    assert event["properties"]["cache_creation_input_tokens"] == 200


def test_streamed_object_and_time_to_first_chunk() -> None:
    event = llm_event({"ai.operationId": "ai.streamObject.doStream",
                       "ai.response.object": '{"city":"Paris"}', "ai.response.msToFirstChunk": 250.0})
    assert event["generation"] == '{"city":"Paris"}'
    assert event["properties"]["time_to_first_token"] == 0.25


def test_spans_an_exporter_rewrote_into_genai_attributes() -> None:
    """Traceloop's JS SDK replaces ``ai.prompt.messages`` / ``ai.response.text`` by GenAI ones."""
    event = llm_event({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather?",
                       "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Sunny.",
                       "ai.prompt.messages": "", "ai.response.model": "m-1"})
    assert (event["prompt"], event["generation"], event["assistant_id"]) == ("Weather?", "Sunny.", "m-1")
