"""LiteLLM's OpenTelemetry callback (``litellm.callbacks = ["otel"]``).

LiteLLM writes a call's attributes (GenAI names, ``litellm.*``, ``gen_ai.cost.*``) onto the
caller's current span: the app's own span, or its ``litellm_request`` span when it makes one
(``USE_OTEL_LITELLM_REQUEST_SPAN``, or no span current). That *carrier* span is the LLM event
(:data:`LITELLM`, the GenAI reader plus LiteLLM's extras: tool calls in the legacy
``gen_ai.completion.0.function_call.*``, cached and reasoning counts from
``metadata.usage_object``; its ``gen_ai.cost.total_cost`` becomes ``cost_usd`` in the encoder,
as every span-carried cost does).

Each call also gets a ``raw_gen_ai_request`` child holding the provider's request and response
as ``llm.<provider>.messages`` / ``.choices`` / ``.usage`` / ``.model`` (Python ``repr`` text,
not JSON): :data:`LITELLM_RAW` reads it. It is the same call as its carrier, merged by
:mod:`trubrics_otel.translate.duplicates`; but when several calls ran under one app span, the
last overwrote the carrier, and only the raw children tell the calls apart: the encoder then
drops the carrier (see :func:`is_raw_request` and ``TraceMemory.call_children``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import genai
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall
from trubrics_otel.translate.conventions.tokens import usage_properties_of
from trubrics_otel.translate.messages import (
    assistant_text,
    by_shape,
    last_user_text,
    summarise_tool_calls,
    text_or_none,
)
from trubrics_otel.translate.usage import Usage, normalise_usage

CALL_ID = "litellm.call_id"
RAW_REQUEST_SPAN = "raw_gen_ai_request"
_FUNCTION_CALL = "gen_ai.completion.0.function_call."
_USAGE_OBJECT = "metadata.usage_object"  # the provider's usage, Python repr
_MAX_REPR_CHARS = 1_000_000


def recognises(attributes: Attributes) -> bool:
    return CALL_ID in attributes and genai.recognises(attributes)


def read(span: ReadableSpan) -> LlmCall:
    call = genai.read(span)
    attributes = span.attributes or {}
    properties = dict(call.properties)
    detailed = normalise_usage(
        str(attributes.get(sc.GEN_AI_SYSTEM) or ""), _literal(attributes.get(_USAGE_OBJECT))
    )
    if isinstance(detailed, Usage):  # the only place the carrier keeps cached / reasoning counts
        properties.update(usage_properties_of(detailed))
    generation = call.generation
    if not generation and attributes.get(_FUNCTION_CALL + "name"):
        generation = summarise_tool_calls([{
            "name": attributes[_FUNCTION_CALL + "name"],
            "arguments": attributes.get(_FUNCTION_CALL + "arguments", ""),
        }])
    return LlmCall(prompt=call.prompt, generation=generation, model=call.model, properties=properties)


LITELLM = Convention("litellm", recognises, read, frozenset({CALL_ID}))


def is_raw_request(span: ReadableSpan) -> bool:
    return span.name == RAW_REQUEST_SPAN


def _raw_provider(attributes: Attributes) -> str | None:
    for key in attributes:
        if key.startswith("llm.") and key.endswith(".choices") and key.count(".") == 2:
            return key.split(".")[1]
    return None


def raw_recognises(attributes: Attributes) -> bool:
    """Asked of every span no row with ``needs`` took (HTTP, DB, wrappers…): its keys alone
    decide, so the answer is found once per spelling of a span's keys (``by_shape``)."""
    return by_shape(_RAW_SHAPES, RAW_REQUEST_SPAN, tuple(attributes), _raw_keys)


def _raw_keys(keys: tuple[str, ...], _: str) -> bool:
    provider = _raw_provider(dict.fromkeys(keys))
    return provider is not None and f"llm.{provider}.messages" in keys


_RAW_SHAPES: dict[str, dict[tuple[str, ...], bool]] = {}


def raw_read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    provider = _raw_provider(attributes) or ""
    messages = _literal(attributes.get(f"llm.{provider}.messages"))
    choices = _literal(attributes.get(f"llm.{provider}.choices"))
    replies = [c.get("message") for c in choices if isinstance(c, Mapping)] if isinstance(choices, list) else []
    properties: dict[str, Any] = {sc.PROP_PROVIDER: provider}
    usage = normalise_usage(provider, _literal(attributes.get(f"llm.{provider}.usage")))
    if isinstance(usage, Usage):
        properties.update(usage_properties_of(usage))
    reasons = [c.get("finish_reason") for c in choices if isinstance(c, Mapping)] if isinstance(choices, list) else []
    if reasons and reasons[0]:
        properties[sc.PROP_FINISH_REASON] = reasons[0]
    return LlmCall(
        prompt=last_user_text(messages),
        generation=assistant_text([r for r in replies if isinstance(r, Mapping)]),
        model=text_or_none(attributes.get(f"llm.{provider}.model")),
        properties=properties,
    )


def _literal(text: Any) -> Any:
    """A Python ``repr`` of plain data back into data (never evaluated: ``ast.literal_eval``)."""
    if not isinstance(text, str) or len(text) > _MAX_REPR_CHARS:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


LITELLM_RAW = Convention("litellm-raw-request", raw_recognises, raw_read)
