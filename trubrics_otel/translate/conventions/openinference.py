"""OpenInference (Arize Phoenix): ``openinference.span.kind = LLM`` spans.

Messages in ``llm.input_messages.{i}.message.*`` / ``llm.output_messages.{i}.message.*``
(tool calls included), else the raw ``input.value`` / ``output.value``; tokens in
``llm.token_count.*``; the response model in ``llm.model_name``, the request in
``llm.invocation_parameters`` (JSON).
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
    usage_properties,
)
from trubrics_otel.translate.messages import (
    assistant_text,
    indexed,
    last_user_text,
    parse_json,
    text_or_none,
)

# invocation parameters that are the request itself, not a setting worth a property
_OPENINFERENCE_NOT_PARAMETERS = frozenset({"model", "messages", "tools", "stream_options"})


def recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.OPENINFERENCE_SPAN_KIND) == sc.OPENINFERENCE_LLM


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties = usage_properties(attributes)
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
            prompt = text_or_none(attributes.get(sc.INPUT_VALUE)) or ""
    generation = assistant_text(outputs)
    if not generation:  # the raw response
        response = parse_json(attributes.get(sc.OUTPUT_VALUE))
        if isinstance(response, Mapping) and isinstance(response.get("choices"), list):
            generation = assistant_text(
                [c.get("message") for c in response["choices"] if isinstance(c, Mapping)]
            )
        elif response is None:  # plain text, not JSON
            generation = text_or_none(attributes.get(sc.OUTPUT_VALUE)) or ""
    return LlmCall(
        prompt=prompt,
        generation=generation,
        model=text_or_none(response_model or request_model),
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


OPENINFERENCE = Convention("openinference", recognises, read)
