"""Google ADK (Agent Development Kit): its model-call spans, in both of its telemetry schemas.

ADK marks every span it makes or enriches with ``gcp.vertex.agent.*`` attributes (event and
invocation ids). Its model calls::

    generate_content <model>   schema v2 (ADK 2 default): GenAI convention, gen_ai.usage.*
                               already normalised, content only when
                               OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is set
                               (a stream's reply then comes one message per chunk)
    call_llm                   schema v1 (ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1): the request and
                               response as Gemini JSON in gcp.vertex.agent.llm_request /
                               llm_response; a child generate_content span is the same call

Also read here, because ADK stamps them too: the span of OTel contrib's google-genai
instrumentation (which ADK then leaves the call to; it adds the response model and
``gen_ai.response.time_to_first_chunk``), and ADK's ``invoke_agent`` span onto which
OpenInference's google-adk instrumentation writes a call's ``llm.*`` attributes (its
``gen_ai.operation.name`` then says ``generate_content``). Wrappers (``invoke_workflow``,
``invoke_agent``, ``invocation``) are not recognised; ``execute_tool`` spans are the GenAI
tool row's. Content ADK did not capture is written ``<elided>``: no prompt rather than that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import (  # modules, not the table
    genai,
    openinference,
)
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall
from trubrics_otel.translate.conventions.tokens import (
    TIME_TO_FIRST_TOKEN,
    genai_usage_properties,
    token_properties,
)
from trubrics_otel.translate.messages import (
    message_text,
    parse_json,
    summarise_tool_calls,
    text_or_none,
)

ADK_PREFIX = "gcp.vertex.agent."
LLM_REQUEST = "gcp.vertex.agent.llm_request"
LLM_RESPONSE = "gcp.vertex.agent.llm_response"
ADK_ITSELF = "gcp.vertex.agent"
"""What schema v1 writes as ``gen_ai.system``: ADK, not the model's provider."""
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
ELIDED = "<elided>"


def recognises(attributes: Attributes) -> bool:
    if LLM_REQUEST in attributes:  # schema v1: call_llm names its model; tool spans carry '{}'
        return sc.GEN_AI_REQUEST_MODEL in attributes
    return attributes.get(sc.GEN_AI_OPERATION_NAME) == "generate_content" and any(
        key.startswith(ADK_PREFIX) for key in attributes
    )


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    if LLM_REQUEST in attributes:
        call = read_call_llm(attributes)
    else:
        call = genai.read(span)
        properties = {**call.properties, **genai_usage_properties(attributes)}
        first_chunk = attributes.get(TIME_TO_FIRST_CHUNK)
        if isinstance(first_chunk, (int, float)) and not isinstance(first_chunk, bool):
            properties[TIME_TO_FIRST_TOKEN] = float(first_chunk)
        call = LlmCall(
            prompt=_visible(call.prompt),
            generation=_stream_reply(attributes, call.generation),
            model=call.model,
            properties=properties,
        )
    if not call.prompt and not call.generation and sc.OPENINFERENCE_SPAN_KIND in attributes:
        written = openinference.read_llm(span)  # OpenInference's llm.* written on ADK's span
        call = LlmCall(written.prompt, written.generation, call.model, call.properties)
    return call


def read_call_llm(attributes: Attributes) -> LlmCall:
    """Schema v1's ``call_llm``: Gemini request / response JSON."""
    request = parse_json(attributes.get(LLM_REQUEST))
    response = parse_json(attributes.get(LLM_RESPONSE))
    request = request if isinstance(request, Mapping) else {}
    response = response if isinstance(response, Mapping) else {}
    properties = genai.genai_properties(attributes)
    if properties.get(sc.PROP_PROVIDER) == ADK_ITSELF:
        del properties[sc.PROP_PROVIDER]
    # Gemini's own usage first: ADK 1.x wrote gen_ai.usage.output_tokens without the thoughts
    usage = token_properties("gemini", response.get("usage_metadata"))
    properties.update(usage or genai_usage_properties(attributes))
    model = (
        text_or_none(response.get("model_version"))
        or text_or_none(attributes.get(sc.GEN_AI_REQUEST_MODEL))
        or text_or_none(request.get("model"))
    )
    request_model = text_or_none(request.get("model")) or attributes.get(sc.GEN_AI_REQUEST_MODEL)
    if request_model and model and request_model != model:
        properties[sc.PROP_REQUEST_MODEL] = request_model
    return LlmCall(
        prompt=_last_user_text(request.get("contents")),
        generation=_reply_text(response.get("content")),
        model=model,
        properties=properties,
    )


def _last_user_text(contents: Any) -> str:
    """The last user turn that has text (a turn holding only a function response is none)."""
    if not isinstance(contents, list):
        return ""
    for content in reversed(contents):
        if isinstance(content, Mapping) and content.get("role") == "user":
            text = "".join(_texts(content))
            if text:
                return text
    return ""


def _reply_text(content: Any) -> str:
    if not isinstance(content, Mapping):
        return ""
    text = "".join(_texts(content))
    if text:
        return text
    calls = [
        {"name": part["function_call"].get("name"), "arguments": part["function_call"].get("args")}
        for part in content.get("parts") or ()
        if isinstance(part, Mapping) and isinstance(part.get("function_call"), Mapping)
    ]
    return summarise_tool_calls(calls)


def _texts(content: Mapping[str, Any]) -> list[str]:
    return [
        str(part["text"])
        for part in content.get("parts") or ()
        if isinstance(part, Mapping)
        and isinstance(part.get("text"), str)
        and not part.get("thought")  # Gemini's thought summaries are not the reply
    ]


def _stream_reply(attributes: Attributes, generation: str) -> str:
    """A streamed reply is one output message per chunk: the chunks joined, not lines."""
    outputs = parse_json(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))
    if isinstance(outputs, list) and len(outputs) > 1:
        texts = [message_text(m) for m in outputs if isinstance(m, Mapping)]
        if not any(text.startswith("tool_call: ") for text in texts):
            generation = "".join(texts)
    return _visible(generation)


def _visible(text: str) -> str:
    """``<elided>`` (ADK's placeholder for content it did not capture) is no content."""
    return "" if not text.replace(ELIDED, "").strip() else text


GOOGLE_ADK = Convention("google-adk", recognises, read, frozenset({LLM_REQUEST, sc.GEN_AI_OPERATION_NAME}))
