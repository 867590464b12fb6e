"""The Vercel AI SDK (``ai`` 3–6, JavaScript; spans arrive over OTLP): ``ai.*`` attributes.

Every span has ``ai.operationId``. One provider request is one ``…doGenerate`` /
``…doStream`` span (:data:`MODEL_CALLS`): those are the LLM events. The outer
``ai.generateText`` / ``ai.streamText`` / ``ai.generateObject`` span wraps all steps and sums
their usage: never an event (its ``ai.prompt`` only lends a prompt to a failed call below it).
``ai.toolCall`` is a tool run. Embeddings are neither.

Read from a model-call span: the prompt from ``ai.prompt.messages``; the reply from
``ai.response.text``, ``ai.response.toolCalls`` and ``ai.response.object`` (``ai.result.*`` in
ai 3); the model served (``ai.response.model``) else requested (``ai.model.id``); the provider
is ``ai.model.provider`` up to its first dot (``openai.chat`` → ``openai``); usage from
``ai.usage.*`` (ai 6 counts every provider's cache inside ``inputTokens``; ai 5's Anthropic
provider did not, so that case goes through :func:`normalise_usage`); time to first token
from ``ai.response.msToFirstChunk``. Users and threads: ``ai.telemetry.metadata.userId`` /
``.sessionId`` (see the identity lists in :mod:`trubrics_otel.translate.conventions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    token_count,
    tool_name,
)
from trubrics_otel.translate.messages import (
    as_list,
    last_user_text,
    parse_json,
    summarise_tool_calls,
    text_or_none,
)
from trubrics_otel.translate.usage import Usage, normalise_usage

OPERATION_ID = "ai.operationId"
MODEL_CALLS = frozenset({
    "ai.generateText.doGenerate", "ai.streamText.doStream",
    "ai.generateObject.doGenerate", "ai.streamObject.doStream",
})
TOOL_CALL = "ai.toolCall"

_USAGE = {
    sc.PROP_INPUT_TOKENS: ("ai.usage.inputTokens", "ai.usage.promptTokens"),
    sc.PROP_OUTPUT_TOKENS: ("ai.usage.outputTokens", "ai.usage.completionTokens"),
    sc.PROP_TOTAL_TOKENS: ("ai.usage.totalTokens",),
    sc.PROP_CACHE_READ_INPUT_TOKENS: ("ai.usage.inputTokenDetails.cacheReadTokens",
                                      "ai.usage.cachedInputTokens"),
    sc.PROP_CACHE_CREATION_INPUT_TOKENS: ("ai.usage.inputTokenDetails.cacheWriteTokens",),
    sc.PROP_REASONING_TOKENS: ("ai.usage.outputTokenDetails.reasoningTokens",
                               "ai.usage.reasoningTokens"),
}


def is_vercel_span(attributes: Attributes) -> bool:
    operation = attributes.get(OPERATION_ID)
    return isinstance(operation, str) and operation.startswith("ai.")


def recognises(attributes: Attributes) -> bool:
    return attributes.get(OPERATION_ID) in MODEL_CALLS


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties: dict[str, Any] = usage(attributes)
    provider = provider_of(attributes)
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    finish = attributes.get("ai.response.finishReason") or attributes.get("ai.finishReason")
    if finish:
        properties[sc.PROP_FINISH_REASON] = finish
    first_chunk_ms = attributes.get("ai.response.msToFirstChunk")
    if isinstance(first_chunk_ms, (int, float)) and not isinstance(first_chunk_ms, bool):
        properties[sc.PROP_TIME_TO_FIRST_TOKEN] = first_chunk_ms / 1000
    requested = text_or_none(attributes.get("ai.model.id"))
    served = text_or_none(attributes.get("ai.response.model") or attributes.get(sc.GEN_AI_RESPONSE_MODEL))
    if requested and served and requested != served:
        properties[sc.PROP_REQUEST_MODEL] = requested
    return LlmCall(
        prompt=last_user_text(parse_json(attributes.get("ai.prompt.messages"))),
        generation=generation(attributes),
        model=served or requested or text_or_none(attributes.get(sc.GEN_AI_REQUEST_MODEL)),
        properties=properties,
    )


def provider_of(attributes: Attributes) -> str | None:
    provider = attributes.get("ai.model.provider") or attributes.get(sc.GEN_AI_SYSTEM)
    return str(provider).split(".", 1)[0] if provider else None


def generation(attributes: Attributes) -> str:
    """Text, then tool calls, then structured output: whatever the reply held."""
    lines = []
    text = attributes.get("ai.response.text", attributes.get("ai.result.text"))
    if isinstance(text, str) and text:
        lines.append(text)
    calls = parse_json(attributes.get("ai.response.toolCalls", attributes.get("ai.result.toolCalls")))
    summary = summarise_tool_calls([
        {"name": call.get("toolName"), "arguments": _arguments(call.get("input", call.get("args")))}
        for call in as_list(calls) if isinstance(call, Mapping)
    ])
    if summary:
        lines.append(summary)
    structured = attributes.get("ai.response.object", attributes.get("ai.result.object"))
    if isinstance(structured, str) and structured and not lines:
        lines.append(structured)
    return "\n".join(lines)


def _arguments(value: Any) -> Any:
    """The provider's argument string (doGenerate) or the parsed object (doStream): one form."""
    parsed = parse_json(value) if isinstance(value, str) else value
    return parsed if parsed is not None else value


def usage(attributes: Attributes) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for prop, names in _USAGE.items():
        for name in names:
            count = token_count(attributes.get(name))
            if count is not None:
                counts[prop] = count
                break
    provider = provider_of(attributes) or ""
    if (provider.startswith("anthropic") and "ai.usage.inputTokenDetails.noCacheTokens" not in attributes
            and sc.PROP_INPUT_TOKENS in counts):
        counts.update(_anthropic_ai5(attributes, counts))
    return counts


def _anthropic_ai5(attributes: Attributes, counts: Mapping[str, int]) -> dict[str, int]:
    """ai 5's Anthropic provider: ``inputTokens`` excluded the cache; writes were only in the
    provider metadata. Normalised by Anthropic's rule."""
    metadata = parse_json(attributes.get("ai.response.providerMetadata"))
    anthropic = metadata.get("anthropic") if isinstance(metadata, Mapping) else None
    anthropic = anthropic if isinstance(anthropic, Mapping) else {}
    normalised = normalise_usage("anthropic", {
        "input_tokens": counts.get(sc.PROP_INPUT_TOKENS),
        "output_tokens": counts.get(sc.PROP_OUTPUT_TOKENS),
        "cache_read_input_tokens": counts.get(sc.PROP_CACHE_READ_INPUT_TOKENS),
        "cache_creation_input_tokens": token_count(anthropic.get("cacheCreationInputTokens")),
    })
    if not isinstance(normalised, Usage):
        return {}
    return {
        sc.PROP_INPUT_TOKENS: normalised.input_tokens,
        sc.PROP_CACHE_READ_INPUT_TOKENS: normalised.cache_read_input_tokens,
        sc.PROP_CACHE_CREATION_INPUT_TOKENS: normalised.cache_creation_input_tokens,
    }


VERCEL_AI = Convention("vercel-ai", recognises, read, frozenset({OPERATION_ID}))


def _tool_recognises(attributes: Attributes) -> bool:
    return attributes.get(OPERATION_ID) == TOOL_CALL


def _tool_read(span: ReadableSpan) -> SpanEvent:
    attributes = span.attributes or {}
    name = text_or_none(attributes.get("ai.toolCall.name"))
    name = tool_name(name) if name else None
    properties: dict[str, Any] = {}
    if name:
        properties[sc.PROP_TOOL_NAME] = name
    if attributes.get("ai.toolCall.id"):
        properties[sc.PROP_TOOL_CALL_ID] = attributes["ai.toolCall.id"]
    return SpanEvent(name=f"{sc.OPERATION_EXECUTE_TOOL} {name}" if name else span.name,
                     properties=properties)


VERCEL_AI_TOOL = Convention("vercel-ai-tool", _tool_recognises, _tool_read, frozenset({OPERATION_ID}))
