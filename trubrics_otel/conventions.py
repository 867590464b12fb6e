"""How each span convention spells an LLM call: the one table to extend.

The encoder asks :func:`read_span` what a span is: an LLM call (:class:`LlmCall`: prompt,
generation, model, properties), a product event (:class:`SpanEvent`, e.g. a tool run), or
nothing it knows. Each :class:`Convention` in :data:`CONVENTIONS` recognises its spans and
reads them; the first that recognises a span wins. Who the event is for and which thread it
belongs to come from :data:`USER_ID_ATTRIBUTES` and :data:`THREAD_ID_ATTRIBUTES`, tried in
order on every span. Supporting another instrumentation library means adding a row (and a
fixture test under ``tests/fixtures/spans``), never touching the encoder.

============================  ==========================================================
row                           recognises
============================  ==========================================================
``GENAI``                     ``gen_ai.operation.name`` chat / text_completion /
                              generate_content; or, older, ``gen_ai.system`` + request
                              model. Messages from ``gen_ai.input/output.messages``, else
                              content span events, else OpenLLMetry's flattened
                              ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*``
``GENAI_TOOL``                ``gen_ai.operation.name = execute_tool`` → product event
``OPENLLMETRY_LEGACY``        ``llm.request.type`` chat / completion (OpenLLMetry <= 0.47)
``OPENINFERENCE``             ``openinference.span.kind = LLM``: ``llm.input_messages.*``,
                              ``llm.output_messages.*``, ``llm.token_count.*``, else
                              ``input.value`` / ``output.value``
============================  ==========================================================

Content that arrives only as log records is joined onto its span before it gets here
(:mod:`trubrics_otel.genai_logs`), so the rows only ever read spans.

Spans written by :class:`trubrics_otel.Trubrics` use the OpenTelemetry GenAI convention,
so they are read by the same row as the official GenAI instrumentation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
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
class SpanEvent:
    """A span that is a product event (a tool run, an opted-in HTTP span…), not an LLM call."""

    name: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Convention:
    name: str
    recognises: Callable[[Attributes], bool]
    read: Callable[[ReadableSpan], LlmCall | SpanEvent]


# --- Who and which conversation: tried in order, on every span -------------------------

USER_ID_ATTRIBUTES: tuple[str, ...] = (
    sc.USER_ID,
    sc.ENDUSER_ID,
    sc.TRACELOOP_ASSOCIATION_PREFIX + "user_id",
)
"""The first present is the event's ``user_id`` (``user_context`` stamps ``user.id``)."""

THREAD_ID_ATTRIBUTES: tuple[str, ...] = (
    sc.GEN_AI_CONVERSATION_ID,
    sc.SESSION_ID,
    sc.TRACELOOP_ASSOCIATION_PREFIX + "thread_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "session_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "conversation_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "chat_id",
)
"""The first present is the event's thread (``user_context`` stamps ``gen_ai.conversation.id``)."""

PROPERTY_PREFIXES: tuple[str, ...] = (sc.TRACELOOP_ASSOCIATION_PREFIX,)
"""Attributes under these prefixes become properties, prefix removed."""


def first_of(attributes: Attributes, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "":
            return str(value)
    return None


def prefixed_properties(attributes: Attributes) -> dict[str, Any]:
    return {
        key[len(prefix) :]: _plain(value)
        for key, value in attributes.items()
        for prefix in PROPERTY_PREFIXES
        if key.startswith(prefix)
    }


# --- OpenTelemetry GenAI (newest and older forms; also current OpenLLMetry) ------------

_GENAI_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})

# usage attribute → property name; the older spellings too
_USAGE = {
    sc.GEN_AI_USAGE_INPUT_TOKENS: sc.PROP_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: sc.PROP_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_TOTAL_TOKENS: sc.PROP_TOTAL_TOKENS,
    sc.GEN_AI_USAGE_PROMPT_TOKENS: sc.PROP_INPUT_TOKENS,
    sc.GEN_AI_USAGE_COMPLETION_TOKENS: sc.PROP_OUTPUT_TOKENS,
    sc.LLM_USAGE_TOTAL_TOKENS: sc.PROP_TOTAL_TOKENS,
    sc.LLM_TOKEN_COUNT_PROMPT: sc.PROP_INPUT_TOKENS,
    sc.LLM_TOKEN_COUNT_COMPLETION: sc.PROP_OUTPUT_TOKENS,
    sc.LLM_TOKEN_COUNT_TOTAL: sc.PROP_TOTAL_TOKENS,
}


def _genai_recognises(attributes: Attributes) -> bool:
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


def _genai_read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties = _genai_properties(attributes)
    inputs = parse_json(attributes.get(sc.GEN_AI_INPUT_MESSAGES))
    outputs = parse_json(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))
    if not inputs and not outputs:  # older forms: content as span events
        inputs, outputs = messages_from_events((e.name, e.attributes or {}) for e in span.events)
    if not inputs and not outputs:  # OpenLLMetry <= 0.47: flattened gen_ai.prompt.{i}.*
        inputs = _openllmetry_messages(attributes, sc.GEN_AI_PROMPT_PREFIX)
        outputs = _openllmetry_messages(attributes, sc.GEN_AI_COMPLETION_PREFIX)
    if sc.PROP_FINISH_REASON not in properties and isinstance(outputs, list):
        reasons = [m.get("finish_reason") for m in outputs if isinstance(m, Mapping)]
        if any(reasons):
            properties[sc.PROP_FINISH_REASON] = next(r for r in reasons if r)
    return LlmCall(
        prompt=last_user_text(inputs),
        generation=assistant_text(outputs),
        model=_text(
            attributes.get(sc.GEN_AI_RESPONSE_MODEL) or attributes.get(sc.GEN_AI_REQUEST_MODEL)
        ),
        properties=properties,
    )


def _genai_properties(attributes: Attributes) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for attribute, prop in _USAGE.items():
        if attribute in attributes and prop not in properties:
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
        if name == sc.GEN_AI_CONTENT_PROMPT_EVENT:
            inputs.extend(_as_list(parse_json(attributes.get(sc.GEN_AI_PROMPT))))
        elif name == sc.GEN_AI_CONTENT_COMPLETION_EVENT:
            outputs.extend(_as_list(parse_json(attributes.get(sc.GEN_AI_COMPLETION))))
        elif name in sc.GEN_AI_MESSAGE_EVENTS:
            inputs.append({**body, "role": body.get("role") or sc.GEN_AI_MESSAGE_EVENTS[name]})
        elif name == sc.GEN_AI_CHOICE_EVENT:
            message = parse_json(body.get("message"))
            if not isinstance(message, Mapping):
                message = {"content": body.get("content")}
            message = dict(message)
            message.setdefault("role", "assistant")
            if body.get("finish_reason"):
                message["finish_reason"] = body["finish_reason"]
            outputs.append(message)
    return inputs, outputs


def _openllmetry_messages(attributes: Attributes, prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` … → ``[{"role", "content", "tool_calls"}]``."""
    messages = []
    for flat in indexed(attributes, prefix):
        message: dict[str, Any] = {k: v for k, v in flat.items() if "." not in k}
        calls = indexed(flat, "tool_calls.")
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return messages


GENAI = Convention("opentelemetry-genai", _genai_recognises, _genai_read)


# --- OpenLLMetry <= 0.47 (no gen_ai.operation.name; llm.request.type instead) ------------


def _openllmetry_recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.LLM_REQUEST_TYPE) in ("chat", "completion")


OPENLLMETRY_LEGACY = Convention("openllmetry-legacy", _openllmetry_recognises, _genai_read)


# --- OpenInference (Arize) ---------------------------------------------------------------

# invocation parameters that are the request itself, not a setting worth a property
_OPENINFERENCE_NOT_PARAMETERS = frozenset({"model", "messages", "tools", "stream_options"})


def _openinference_recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.OPENINFERENCE_SPAN_KIND) == sc.OPENINFERENCE_LLM


def _openinference_read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties: dict[str, Any] = {}
    for attribute, prop in _USAGE.items():
        if attribute in attributes and prop not in properties:
            properties[prop] = attributes[attribute]
    provider = attributes.get(sc.LLM_PROVIDER) or attributes.get(sc.LLM_SYSTEM)
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    if attributes.get(sc.LLM_FINISH_REASON):
        properties[sc.PROP_FINISH_REASON] = attributes[sc.LLM_FINISH_REASON]
    parameters = parse_json(attributes.get(sc.LLM_INVOCATION_PARAMETERS))
    parameters = parameters if isinstance(parameters, Mapping) else {}
    for key, value in parameters.items():
        if key not in _OPENINFERENCE_NOT_PARAMETERS:
            properties[key] = value
    request_model = parameters.get("model")
    response_model = attributes.get(sc.LLM_MODEL_NAME)
    if request_model and response_model and request_model != response_model:
        properties[sc.PROP_REQUEST_MODEL] = request_model

    inputs = [_openinference_message(m) for m in indexed(attributes, sc.LLM_INPUT_MESSAGES_PREFIX)]
    outputs = [
        _openinference_message(m) for m in indexed(attributes, sc.LLM_OUTPUT_MESSAGES_PREFIX)
    ]
    prompt = last_user_text(inputs)
    if not prompt:  # no flattened messages: the raw request
        request = parse_json(attributes.get(sc.INPUT_VALUE))
        prompt = last_user_text(request.get("messages")) if isinstance(request, Mapping) else ""
        if not prompt and request is None:  # plain text, not JSON
            prompt = _text(attributes.get(sc.INPUT_VALUE)) or ""
    generation = assistant_text(outputs)
    if not generation:  # the raw response
        response = parse_json(attributes.get(sc.OUTPUT_VALUE))
        if isinstance(response, Mapping) and isinstance(response.get("choices"), list):
            generation = assistant_text(
                [c.get("message") for c in response["choices"] if isinstance(c, Mapping)]
            )
        elif response is None:  # plain text, not JSON
            generation = _text(attributes.get(sc.OUTPUT_VALUE)) or ""
    return LlmCall(
        prompt=prompt,
        generation=generation,
        model=_text(response_model or request_model),
        properties=properties,
    )


def _openinference_message(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"message.role": …, "message.tool_calls.0.tool_call.function.name": …}`` → message."""
    message: dict[str, Any] = {
        "role": flat.get("message.role"),
        "content": flat.get("message.content"),
    }
    calls = [
        {
            "name": c.get("tool_call.function.name"),
            "arguments": c.get("tool_call.function.arguments", ""),
        }
        for c in indexed(flat, "message.tool_calls.")
    ]
    if calls:
        message["tool_calls"] = calls
    return message


OPENINFERENCE = Convention("openinference", _openinference_recognises, _openinference_read)


# --- Tool runs: product events, not LLM calls --------------------------------------------


def _tool_recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OPERATION_EXECUTE_TOOL


def _tool_read(span: ReadableSpan) -> SpanEvent:
    attributes = span.attributes or {}
    properties: dict[str, Any] = {}
    if attributes.get(sc.GEN_AI_TOOL_NAME):
        properties[sc.PROP_TOOL_NAME] = attributes[sc.GEN_AI_TOOL_NAME]
    if attributes.get(sc.GEN_AI_TOOL_CALL_ID):
        properties[sc.PROP_TOOL_CALL_ID] = attributes[sc.GEN_AI_TOOL_CALL_ID]
    return SpanEvent(name=span.name, properties=properties)


GENAI_TOOL = Convention("opentelemetry-genai-tool", _tool_recognises, _tool_read)


CONVENTIONS: tuple[Convention, ...] = (GENAI, GENAI_TOOL, OPENLLMETRY_LEGACY, OPENINFERENCE)
"""Tried in order; the first convention that recognises a span reads it."""


def read_span(span: ReadableSpan) -> LlmCall | SpanEvent | None:
    attributes = span.attributes or {}
    for convention in CONVENTIONS:
        if convention.recognises(attributes):
            return convention.read(span)
    return None


def read_llm_call(span: ReadableSpan) -> LlmCall | None:
    found = read_span(span)
    return found if isinstance(found, LlmCall) else None


def other_span(span: ReadableSpan) -> SpanEvent:
    """Any other span (HTTP, database…), for users who opt in: named after the span."""
    properties: dict[str, Any] = {
        key: _plain(value)
        for key, value in (span.attributes or {}).items()
        if not key.startswith("trubrics.")
    }
    properties[sc.PROP_SPAN_KIND] = span.kind.name.lower()
    if span.start_time is not None and span.end_time is not None:
        properties[sc.PROP_DURATION] = (span.end_time - span.start_time) / 1e9
    return SpanEvent(name=span.name, properties=properties)


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


def indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened lists back into dicts: ``{"p.0.role": "user"}`` → ``[{"role": "user"}]``."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            items.setdefault(int(index), {})[rest] = value
    return [items[i] for i in sorted(items)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []
