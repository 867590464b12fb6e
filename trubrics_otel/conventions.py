"""How each span convention spells an LLM call: the one table to extend.

The encoder asks :func:`read_llm_call` whether a span is an LLM call and, if so, for its
prompt, generation, model and properties. Each :class:`Convention` in
:data:`CONVENTIONS` recognises its spans and reads them; the first that recognises a span
wins. Supporting another instrumentation library means adding a row (and a fixture test),
never touching the encoder.

Spans written by :class:`trubrics_otel.Trubrics` use the OpenTelemetry GenAI convention,
so they are read by the same row as the official GenAI instrumentation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc

Attributes = Mapping[str, Any]


@dataclass(frozen=True)
class LlmCall:
    """What one LLM call says, whatever convention it was written in."""

    prompt: str
    generation: str
    model: str | None
    properties: dict[str, Any] = field(default_factory=dict)
    """Normalised extras: token counts, finish reason, provider, request parameters."""


@dataclass(frozen=True)
class Convention:
    name: str
    recognises: Callable[[Attributes], bool]
    read: Callable[[ReadableSpan], LlmCall]


# --- OpenTelemetry GenAI ----------------------------------------------------------------

_GENAI_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})

# usage attribute → property name
_GENAI_USAGE = {
    sc.GEN_AI_USAGE_INPUT_TOKENS: sc.PROP_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: sc.PROP_OUTPUT_TOKENS,
}


def _genai_recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.GEN_AI_OPERATION_NAME) in _GENAI_LLM_OPERATIONS


def _genai_read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties: dict[str, Any] = {}
    for attribute, prop in _GENAI_USAGE.items():
        if attribute in attributes:
            properties[prop] = attributes[attribute]
    provider = attributes.get(sc.GEN_AI_PROVIDER_NAME) or attributes.get(sc.GEN_AI_SYSTEM)
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    finish = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if finish:
        properties[sc.PROP_FINISH_REASON] = finish[0] if len(finish) == 1 else list(finish)
    for key, value in attributes.items():
        if key.startswith(sc.GEN_AI_REQUEST_PREFIX):
            properties[key[len(sc.GEN_AI_REQUEST_PREFIX) :]] = _plain(value)
    properties.pop("model", None)
    request_model = attributes.get(sc.GEN_AI_REQUEST_MODEL)
    response_model = attributes.get(sc.GEN_AI_RESPONSE_MODEL)
    if request_model and response_model and request_model != response_model:
        properties[sc.PROP_REQUEST_MODEL] = request_model
    return LlmCall(
        prompt=last_user_text(parse_json(attributes.get(sc.GEN_AI_INPUT_MESSAGES))),
        generation=assistant_text(parse_json(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))),
        model=response_model or request_model,
        properties=properties,
    )


GENAI = Convention("opentelemetry-genai", _genai_recognises, _genai_read)

CONVENTIONS: tuple[Convention, ...] = (GENAI,)
"""Tried in order; the first convention that recognises a span reads it."""


def read_llm_call(span: ReadableSpan) -> LlmCall | None:
    attributes = span.attributes or {}
    for convention in CONVENTIONS:
        if convention.recognises(attributes):
            return convention.read(span)
    return None


# --- Helpers shared by the rows ---------------------------------------------------------


def parse_json(value: Any) -> Any:
    """A JSON attribute's value, or ``None`` when absent or unparseable."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def message_text(message: Mapping[str, Any]) -> str:
    """Text of one message in either GenAI form (``parts`` or ``content``)."""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [p.get("content", "") for p in parts if isinstance(p, Mapping) and p.get("type") == "text"]
        if texts:
            return "".join(str(t) for t in texts)
        calls = [p for p in parts if isinstance(p, Mapping) and p.get("type") == "tool_call"]
        return summarise_tool_calls(calls)
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        return summarise_tool_calls(calls)
    return ""


def summarise_tool_calls(calls: list[Any]) -> str:
    """``tool_call: get_weather({"city": "Paris"})``, one line per call."""
    lines = []
    for call in calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") if isinstance(call.get("function"), Mapping) else call
        name = function.get("name", "?")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
        lines.append(f"tool_call: {name}({arguments})")
    return "\n".join(lines)


def last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return ""


def assistant_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    return "\n".join(message_text(m) for m in messages if isinstance(m, Mapping))


def _plain(value: Any) -> Any:
    """OTel attribute value → JSON value (sequences arrive as tuples)."""
    return list(value) if isinstance(value, tuple) else value
