"""OpenLLMetry (Traceloop): releases <= 0.47, still in the field, and its flattened messages.

Current OpenLLMetry writes the GenAI convention (:mod:`.genai` reads it). Older releases mark
a call with ``llm.request.type`` (no ``gen_ai.operation.name``) and flatten messages into
``gen_ai.prompt.{i}.role/.content`` / ``gen_ai.completion.{i}.*``; the same GenAI reader
then applies. LangChain's tool-call replies are completed from their task span
(:func:`task_reply`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import Attributes, LlmCall, token_count
from trubrics_otel.translate.messages import (
    as_list,
    indexed,
    parse_json,
    summarise_tool_calls,
    user_text,
)
from trubrics_otel.translate.usage import Usage, normalise_usage


def recognises_legacy(attributes: Attributes) -> bool:
    return attributes.get(sc.LLM_REQUEST_TYPE) in ("chat", "completion")


def flattened_messages(attributes: Attributes, prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` … → ``[{"role", "content", "tool_calls"}]``."""
    messages = []
    for flat in indexed(attributes, prefix):
        message: dict[str, Any] = {k: v for k, v in flat.items() if "." not in k}
        calls = indexed(flat, "tool_calls.")
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return messages


# --- LangChain through OpenLLMetry: a reply only its task span recorded -------------------

TASK_OUTPUT_ATTRIBUTES = ("gen_ai.task.output", "traceloop.entity.output")
"""A LangGraph ``execute_task model`` span's output: the serialised ``AIMessage``. OpenLLMetry
writes no output messages or output usage on a ``ChatOpenAI.chat`` whose reply is only tool
calls; this is where they are."""

_MAX_DEPTH = 8


def task_reply(attributes: Attributes) -> LlmCall | None:
    """The last ``AIMessage`` in a task span's output, as the reply of the call below it."""
    for name in TASK_OUTPUT_ATTRIBUTES:
        if name in attributes:
            message = _last_message(parse_json(attributes[name]), _AI_MESSAGES, 0)
            if message is not None:
                return _ai_message_reply(message)
    return None


def tool_call_id(attributes: Attributes) -> str | None:
    """The call id of a LangChain tool run: only inside its serialised ``ToolMessage``."""
    for name in ("gen_ai.tool.call.result", "traceloop.entity.output"):
        if name in attributes:
            message = _last_message(parse_json(attributes[name]), ("ToolMessage",), 0)
            if message is not None and isinstance(message.get("tool_call_id"), str):
                return str(message["tool_call_id"])
    return None


_AI_MESSAGES = ("AIMessage", "AIMessageChunk")


def _last_message(value: Any, kinds: tuple[str, ...], depth: int) -> Mapping[str, Any] | None:
    """The ``kwargs`` of the last serialised LangChain message of one of ``kinds``."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        ids = value.get("id")
        if isinstance(ids, list) and ids and ids[-1] in kinds:
            kwargs = value.get("kwargs")
            return kwargs if isinstance(kwargs, Mapping) else None
        children: Any = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in reversed(children):
        found = _last_message(child, kinds, depth + 1)
        if found is not None:
            return found
    return None


def _ai_message_reply(message: Mapping[str, Any]) -> LlmCall:
    calls = [
        {"name": call.get("name"), "arguments": call.get("args")}
        for call in as_list(message.get("tool_calls")) if isinstance(call, Mapping)
    ]
    content = message.get("content")
    text = content if isinstance(content, str) else user_text({"content": content})
    generation = "\n".join(part for part in (text, summarise_tool_calls(calls)) if part)
    usage = message.get("usage_metadata")
    properties: dict[str, Any] = {}
    if isinstance(usage, Mapping):  # LangChain's own shape: cache within input, reasoning within output
        inputs = usage.get("input_token_details")
        outputs = usage.get("output_token_details")
        inputs = inputs if isinstance(inputs, Mapping) else {}
        outputs = outputs if isinstance(outputs, Mapping) else {}
        for prop, value in (
            (sc.PROP_INPUT_TOKENS, usage.get("input_tokens")),
            (sc.PROP_OUTPUT_TOKENS, usage.get("output_tokens")),
            (sc.PROP_CACHE_READ_INPUT_TOKENS, inputs.get("cache_read")),
            (sc.PROP_CACHE_CREATION_INPUT_TOKENS, inputs.get("cache_creation")),
            (sc.PROP_REASONING_TOKENS, outputs.get("reasoning")),
        ):
            count = token_count(value)
            if count is not None:
                properties[prop] = count
    return LlmCall(prompt="", generation=generation, model=None, properties=properties)


# --- AWS Bedrock through OpenLLMetry ------------------------------------------------------

BEDROCK_SCOPE = "opentelemetry.instrumentation.bedrock"


def bedrock_usage(properties: dict[str, Any]) -> dict[str, Any]:
    """OpenLLMetry's Bedrock spans copy Bedrock's ``inputTokens``, which EXCLUDES cache reads
    and writes (as Anthropic's ``input_tokens`` does): the same rule puts them back."""
    if sc.PROP_INPUT_TOKENS not in properties:
        return properties
    usage = normalise_usage("anthropic", {
        "input_tokens": properties.get(sc.PROP_INPUT_TOKENS),
        "output_tokens": properties.get(sc.PROP_OUTPUT_TOKENS),
        "cache_read_input_tokens": properties.get(sc.PROP_CACHE_READ_INPUT_TOKENS),
        "cache_creation_input_tokens": properties.get(sc.PROP_CACHE_CREATION_INPUT_TOKENS),
    })
    if isinstance(usage, Usage):
        properties[sc.PROP_INPUT_TOKENS] = usage.input_tokens
        properties.pop(sc.PROP_TOTAL_TOKENS, None)  # its own input + output: not a total
    return properties
