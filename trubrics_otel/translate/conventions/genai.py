"""The OpenTelemetry GenAI semantic conventions: the newest form and the older ones in the field.

Recognises ``gen_ai.operation.name`` chat / text_completion / generate_content, or (older)
``gen_ai.system`` / ``gen_ai.provider.name`` + ``gen_ai.request.model``. Messages come from
``gen_ai.input.messages`` / ``gen_ai.output.messages``, else content span events, else
OpenLLMetry's flattened ``gen_ai.prompt.{i}.*``. ``execute_tool`` spans are product events, and
so are the spans of Traceloop's ``@tool`` decorator (``traceloop.span.kind = tool``, no operation).
Also what :class:`trubrics_otel.Trubrics` writes, and current OpenLLMetry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    keys_under,
    new_tuple,
    tool_name,
    usage_properties,
)
from trubrics_otel.translate.conventions.openllmetry import (
    BEDROCK_SCOPE,
    bedrock_usage,
    flattened_messages,
    tool_call_id,
)
from trubrics_otel.translate.conventions.vercel_ai import is_vercel_span
from trubrics_otel.translate.messages import (
    as_list,
    assistant_text,
    last_user_text,
    parse_json,
    plain,
    text_or_none,
)

_GENAI_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


def recognises(attributes: Attributes) -> bool:
    if is_vercel_span(attributes):  # its wrappers and embeddings carry gen_ai.* too
        return False
    operation = attributes.get(sc.GEN_AI_OPERATION_NAME)
    if operation is not None:
        return operation in _GENAI_LLM_OPERATIONS
    if attributes.get(sc.LLM_REQUEST_TYPE) not in (None, "chat", "completion"):
        return False  # OpenLLMetry <= 0.47 embeddings, rerank…
    # Before gen_ai.operation.name existed, a provider and a request model marked a call.
    return bool(
        (attributes.get(sc.GEN_AI_SYSTEM) or attributes.get(sc.GEN_AI_PROVIDER_NAME))
        and attributes.get(sc.GEN_AI_REQUEST_MODEL)
    )


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    scope = span.instrumentation_scope
    properties = genai_properties(attributes, own=scope is not None and scope.name == sc.SCOPE_NAME)
    if scope is not None and scope.name == BEDROCK_SCOPE:
        properties = bedrock_usage(properties)
    first_token = time_to_first_token(span)
    if first_token is not None:
        properties[sc.PROP_TIME_TO_FIRST_TOKEN] = first_token
    inputs = parse_json(attributes.get(sc.GEN_AI_INPUT_MESSAGES))
    outputs = parse_json(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))
    if not inputs and not outputs:  # older forms: content as span events
        inputs, outputs = messages_from_events((e.name, e.attributes or {}) for e in span.events)
    if not inputs and not outputs:  # OpenLLMetry <= 0.47: flattened gen_ai.prompt.{i}.*
        inputs = flattened_messages(attributes, sc.GEN_AI_PROMPT_PREFIX)
        outputs = flattened_messages(attributes, sc.GEN_AI_COMPLETION_PREFIX)
    if sc.PROP_FINISH_REASON not in properties and isinstance(outputs, list):
        reasons = [m.get("finish_reason") for m in outputs if isinstance(m, Mapping)]
        if any(reasons):
            properties[sc.PROP_FINISH_REASON] = next(r for r in reasons if r)
    return new_tuple(LlmCall, (  # prompt, generation, model, properties
        last_user_text(inputs),
        assistant_text(outputs),
        text_or_none(
            attributes.get(sc.GEN_AI_RESPONSE_MODEL) or attributes.get(sc.GEN_AI_REQUEST_MODEL)
            # MLflow's GenAI mode names a failed call's model only in its raw, JSON ``model``
            or parse_json(attributes.get("model"))
        ),
        properties,
    ))


TIME_TO_FIRST_CHUNK_ATTRIBUTES = (
    "gen_ai.response.time_to_first_chunk",  # the anthropic SDK's own spans
    "gen_ai.client.operation.time_to_first_chunk",  # pydantic-ai
    "gen_ai.server.time_to_first_token",
)
"""Seconds to the first streamed chunk, as a span attribute."""
_CHUNK_EVENTS = frozenset({
    "gen_ai.content.completion.chunk",  # OpenLLMetry, one per chunk
    "First Token Stream Event",  # OpenInference (LlamaIndex, LangChain): once, at the first token
})


def time_to_first_token(span: ReadableSpan) -> float | None:
    """Seconds to the first token of a stream: the span's own figure, else its first chunk
    event's time; ``None`` where the span cannot know (not streamed, or not measured)."""
    attributes = span.attributes or {}
    for name in TIME_TO_FIRST_CHUNK_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            if attributes.get("gen_ai.request.stream") is False:
                return None  # OpenLIT writes the whole call's time there when not streamed
            return float(value)
    if span.start_time is not None:
        for event in span.events:
            if event.name in _CHUNK_EVENTS and event.timestamp is not None:
                return max(0, event.timestamp - span.start_time) / 1e9
    return None


def genai_properties(attributes: Attributes, *, own: bool = False) -> dict[str, Any]:
    """``own``: a span trubrics-otel wrote (``track_llm``), whose absent counts stay absent."""
    properties = usage_properties(attributes, absent_is_zero=not own)
    provider = attributes.get(sc.GEN_AI_PROVIDER_NAME) or attributes.get(sc.GEN_AI_SYSTEM)
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    finish = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if isinstance(finish, str):  # LiteLLM writes the list as JSON text
        parsed = parse_json(finish)
        finish = parsed if isinstance(parsed, list) else [finish]
    if finish:
        properties[sc.PROP_FINISH_REASON] = finish[0] if len(finish) == 1 else list(finish)
    for key in keys_under(attributes, sc.GEN_AI_REQUEST_PREFIX):
        properties[key[len(sc.GEN_AI_REQUEST_PREFIX) :]] = plain(attributes[key])
    properties.pop("model", None)
    request_model = attributes.get(sc.GEN_AI_REQUEST_MODEL)
    response_model = attributes.get(sc.GEN_AI_RESPONSE_MODEL)
    if request_model and response_model and request_model != response_model:
        properties[sc.PROP_REQUEST_MODEL] = request_model
    return properties


def messages_from_events(events: Iterable[tuple[str, Attributes]]) -> tuple[list[Any], list[Any]]:
    """(inputs, outputs) from content events: span events or log records, older forms.

    Reads ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` (JSON lists in
    ``gen_ai.prompt`` / ``gen_ai.completion``) and the per-message events
    ``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``, whose body is
    the event's attributes, or JSON in ``gen_ai.event.content``.
    """
    inputs: list[Any] = []
    outputs: list[Any] = []
    for name, attributes in events:
        body = attributes
        if sc.GEN_AI_EVENT_CONTENT in attributes:
            parsed = parse_json(attributes[sc.GEN_AI_EVENT_CONTENT])
            body = parsed if isinstance(parsed, Mapping) else {"content": parsed}
        content = body.get("content")
        if content.__class__ is str and content[:2] == '[{':  # Strands: a JSON block list
            body = {**body, "content": None, "parts": blocks_as_parts(parse_json(content))}
        if name == OPERATION_DETAILS_EVENT:  # the latest GenAI convention (Strands' opt-in)
            inputs.extend(as_list(parse_json(attributes.get(sc.GEN_AI_INPUT_MESSAGES))))
            outputs.extend(as_list(parse_json(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))))
        elif name == sc.GEN_AI_CONTENT_PROMPT_EVENT:
            inputs.extend(as_list(parse_json(attributes.get(sc.GEN_AI_PROMPT))))
        elif name == sc.GEN_AI_CONTENT_COMPLETION_EVENT:
            outputs.extend(as_list(parse_json(attributes.get(sc.GEN_AI_COMPLETION))))
        elif name in sc.GEN_AI_MESSAGE_EVENTS:
            inputs.append({**body, "role": body.get("role") or sc.GEN_AI_MESSAGE_EVENTS[name]})
        elif name == sc.GEN_AI_CHOICE_EVENT:
            message = parse_json(body.get("message"))
            if isinstance(message, list):  # Strands: a block list (text, toolUse)
                message = {"parts": blocks_as_parts(message)}
            elif not isinstance(message, Mapping):
                message = {"content": body.get("content")}
            message = dict(message)
            message.setdefault("role", "assistant")
            if not message.get("tool_calls") and body.get("tool_calls"):  # OpenLLMetry: beside it
                message["tool_calls"] = parse_json(body["tool_calls"])
            if body.get("finish_reason"):
                message["finish_reason"] = body["finish_reason"]
            outputs.append(message)
    return inputs, outputs


OPERATION_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def blocks_as_parts(blocks: Any) -> list[Any]:
    """Converse-style content blocks (``{"text"}``, ``{"toolUse": {...}}``) → GenAI parts."""
    parts: list[Any] = []
    for block in as_list(blocks):
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            parts.append({"type": "text", "content": block["text"]})
        elif isinstance(block.get("toolUse"), Mapping):
            use = block["toolUse"]
            parts.append({"type": "tool_call", "id": use.get("toolUseId"), "name": use.get("name"),
                          "arguments": use.get("input")})
        else:
            parts.append(block)
    return parts


GENAI = Convention("opentelemetry-genai", recognises, read,
                   frozenset({sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_SYSTEM, sc.GEN_AI_PROVIDER_NAME}))


TRACELOOP_SPAN_KIND = "traceloop.span.kind"


def _tool_recognises(attributes: Attributes) -> bool:
    return (attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OPERATION_EXECUTE_TOOL
            or attributes.get(TRACELOOP_SPAN_KIND) == "tool")


def _tool_read(span: ReadableSpan) -> SpanEvent:
    attributes = span.attributes or {}
    properties: dict[str, Any] = {}
    name = attributes.get(sc.GEN_AI_TOOL_NAME) or attributes.get("traceloop.entity.name")
    name = tool_name(name) if isinstance(name, str) and name else None
    if name:
        properties[sc.PROP_TOOL_NAME] = name
    call_id = attributes.get(sc.GEN_AI_TOOL_CALL_ID) or tool_call_id(attributes)
    if call_id:
        properties[sc.PROP_TOOL_CALL_ID] = call_id
    return SpanEvent(name=f"{sc.OPERATION_EXECUTE_TOOL} {name}" if name else span.name,
                     properties=properties)


GENAI_TOOL = Convention("opentelemetry-genai-tool", _tool_recognises, _tool_read,
                        frozenset({sc.GEN_AI_OPERATION_NAME, TRACELOOP_SPAN_KIND}))
