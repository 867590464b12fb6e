"""OpenInference (Arize Phoenix): ``openinference.span.kind`` LLM and TOOL spans.

Used by OpenInference's instrumentations of LangChain/LangGraph, LlamaIndex, the OpenAI
Agents SDK, Anthropic, OpenAI, Google ADK… (spec: ``Arize-ai/openinference`` ``spec/``).
The user and session they record (``user.id``, ``session.id``, and LangChain's
``config={"metadata": {"user_id": …}}`` left inside the ``metadata`` JSON) are the shared
key lists' business (``conventions/__init__.py``)::

    read(span)              # LlmCall for an LLM span, SpanEvent for a TOOL span, None otherwise
    tool_call_ids(spans)    # tool span id → call id, for TOOL spans that do not say it

- LLM span: messages in ``llm.input_messages.{i}.message.*`` / ``llm.output_messages.{i}.
  message.*`` (text in ``.content`` or in ``.contents.{j}.message_content.text``; tool calls
  in ``.tool_calls.{j}.tool_call.*``), or a completions API's ``llm.prompts.{i}.prompt.text``
  / ``llm.choices.{i}.completion.text``, else the raw ``input.value`` / ``output.value``
  (chat completions, Responses, Anthropic or LangChain JSON, or plain text). Tokens in
  ``llm.token_count.*``, where ``prompt`` INCLUDES ``prompt_details.cache_read`` /
  ``.cache_write`` and ``completion`` includes ``completion_details.reasoning``; details a
  span leaves out are taken from the provider usage in ``output.value`` when it has one.
  Model: the one the reply in ``output.value`` names (a chat completion's ``model``, a LangChain
  generation's), else ``llm.model_name`` (LangChain streams: the request model; LiteLLM: the
  app's ``openai/gpt-4o-mini``, its reply JSON the dated response model). Time to first token:
  LlamaIndex's ``First Token Stream Event``.
- An LLM-kind span with no messages, tokens or error, whose ``input.value`` / ``output.value``
  hold no request or reply, describes no model call (LlamaIndex gives the LLM kind to every
  method of an LLM object, e.g. the request-building ``_prepare_chat_with_tools``): :func:`read`
  returns ``None`` for it.
- AGENT / CHAIN / RETRIEVER… spans are wrappers: not recognised.
- TOOL span: an ``execute_tool <tool.name>`` event (:mod:`.openinference_tools`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    new_tuple,
)
from trubrics_otel.translate.conventions.openinference_tools import (
    TOOL_KIND,
    read_tool,
    tool_call_ids,
)
from trubrics_otel.translate.conventions.tokens import (
    TIME_TO_FIRST_TOKEN,
    as_count,
    token_properties,
    usage_properties_of,
)
from trubrics_otel.translate.messages import (
    assistant_text,
    Layout,
    indexed_by,
    indexed_keys,
    last_user_text,
    parse_json,
    responses_text,
    text_or_none,
)
from trubrics_otel.translate.usage import MAX_TOKENS, NoCost, make_usage

__all__ = ["OPENINFERENCE", "read", "read_llm", "read_tool", "recognises", "tool_call_ids"]

PROMPTS_PREFIX = "llm.prompts."
CHOICES_PREFIX = "llm.choices."
REQUEST_MODEL_NAME = "llm.request.model_name"
RESPONSE_MODEL_NAME = "llm.response.model_name"
TOKEN_COUNT_PREFIX = "llm.token_count."
_MESSAGE_LISTS = ("message.contents.", "message.tool_calls.")
_LISTS = (sc.LLM_INPUT_MESSAGES_PREFIX, sc.LLM_OUTPUT_MESSAGES_PREFIX, PROMPTS_PREFIX, CHOICES_PREFIX)
CACHE_READ = "llm.token_count.prompt_details.cache_read"
CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
REASONING = "llm.token_count.completion_details.reasoning"
FIRST_TOKEN_EVENT = "First Token Stream Event"

# invocation parameters that are the request itself, not a setting worth a property
_NOT_PARAMETERS = frozenset({"model", "messages", "tools", "stream_options"})


def recognises(attributes: Attributes) -> bool:
    return attributes.get(sc.OPENINFERENCE_SPAN_KIND) in (sc.OPENINFERENCE_LLM, TOOL_KIND)


def read(span: ReadableSpan) -> LlmCall | SpanEvent | None:
    attributes = span.attributes or {}
    if attributes.get(sc.OPENINFERENCE_SPAN_KIND) == TOOL_KIND:
        return read_tool(span)
    call = read_llm(span)
    return call if is_model_call(span, call) else None


def is_model_call(span: ReadableSpan, call: LlmCall) -> bool:
    """Whether an LLM-kind span is a model call. It is not when its recorded input and output
    hold no request or reply we can read and it has no messages, tokens or error (see the
    module docstring)."""
    if call.prompt or call.generation or span.status.status_code is StatusCode.ERROR:
        return True
    attributes = span.attributes or {}
    if not (attributes.get(sc.INPUT_VALUE) or attributes.get(sc.OUTPUT_VALUE)):
        return True  # nothing at all recorded (content hidden): still a call
    prefixes = (sc.LLM_INPUT_MESSAGES_PREFIX, sc.LLM_OUTPUT_MESSAGES_PREFIX, TOKEN_COUNT_PREFIX,
                PROMPTS_PREFIX, CHOICES_PREFIX)
    return any(key.startswith(prefixes) for key in attributes)


def read_llm(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    request = attributes.get(sc.INPUT_VALUE)  # absent on most LLM spans: no call to parse it
    request = parse_json(request) if request is not None else None
    response = attributes.get(sc.OUTPUT_VALUE)
    response = parse_json(response) if response is not None else None
    properties: dict[str, Any] = {}
    provider = attributes.get(sc.LLM_PROVIDER) or attributes.get(sc.LLM_SYSTEM)
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    if attributes.get(sc.LLM_FINISH_REASON):
        properties[sc.PROP_FINISH_REASON] = attributes[sc.LLM_FINISH_REASON]
    parameters = parse_json(attributes.get(sc.LLM_INVOCATION_PARAMETERS))
    parameters = parameters if parameters.__class__ is dict or isinstance(parameters, Mapping) else {}
    for key, value in parameters.items():
        if key not in _NOT_PARAMETERS:
            properties[key] = value
    properties.update(tokens(attributes, provider, response))
    first_token = time_to_first_token(span)
    if first_token is not None:
        properties[TIME_TO_FIRST_TOKEN] = first_token

    request_model = text_or_none(parameters.get("model")) or text_or_none(
        attributes.get(REQUEST_MODEL_NAME)
    )
    model = (
        (_response_model(response) if response is not None else None)
        or text_or_none(attributes.get(RESPONSE_MODEL_NAME))
        or text_or_none(attributes.get(sc.LLM_MODEL_NAME))
        or request_model
    )
    if request_model and model and request_model != model:
        properties[sc.PROP_REQUEST_MODEL] = request_model
    if response is not None:  # the provider SDK's own span of the call names it too
        response_id = _response_id(response)
        if response_id:
            properties[sc.PROP_RESPONSE_ID] = response_id

    layout = indexed_keys(attributes, _LISTS)  # where the four lists are, once per key spelling
    inputs = _messages(attributes, layout[sc.LLM_INPUT_MESSAGES_PREFIX])
    outputs = _messages(attributes, layout[sc.LLM_OUTPUT_MESSAGES_PREFIX])
    prompts = _texts(attributes, layout, PROMPTS_PREFIX, "prompt.text")  # completions APIs
    choices = _texts(attributes, layout, CHOICES_PREFIX, "completion.text")
    if inputs:
        prompt = last_user_text(inputs)
    else:
        prompt = prompts[-1] if prompts else _prompt_of_request(request, attributes)
    if outputs:
        generation = assistant_text(outputs)
    else:
        generation = "\n".join(choices) or _generation_of_response(response, attributes)
    return new_tuple(LlmCall, (prompt, generation, model, properties))


def _messages(attributes: Attributes, items: tuple[tuple[tuple[str, str], ...], ...]) -> list[dict[str, Any]]:
    """``llm.{input,output}_messages.{i}.message.*`` → messages; most are a role and a text,
    read straight from the attributes without their flat dict."""
    messages = []
    for item in items:
        if len(item) == 2:
            role = _ROLE_AND_TEXT.get((item[0][0], item[1][0]))
            if role is not None:  # the keys of the role and of the text, in either order
                text = attributes[item[1 - role][1]]
                if text is not None:
                    messages.append({"role": attributes[item[role][1]], "content": text or None})
                    continue
        messages.append(_message({rest: attributes[key] for rest, key in item}))
    return messages


_PLAIN_LISTS = {prefix: prefix.rstrip(".") for prefix in (PROMPTS_PREFIX, CHOICES_PREFIX)}
_ROLE_AND_TEXT = {("message.role", "message.content"): 0, ("message.content", "message.role"): 1}
"""The rests of a two-key message → the index of its role's key."""


def _texts(attributes: Attributes, layout: Layout, prefix: str, key: str) -> list[str]:
    """``llm.prompts.{i}.prompt.text`` → texts; also the older plain list ``llm.prompts``."""
    items = layout[prefix]
    flat = [str(attributes[name]) for item in items for rest, name in item
            if rest == key and attributes[name] is not None] if items else []  # most spans: none
    listed = attributes.get(_PLAIN_LISTS[prefix]) if not flat else None
    if listed is not None and isinstance(listed, (list, tuple)):
        flat = [item for item in listed if isinstance(item, str)]
    return flat


def _message(flat: Mapping[str, Any]) -> dict[str, Any]:
    content = flat.get("message.content")
    if len(flat) == 2 and content is not None and "message.role" in flat:  # most: role and text
        return {"role": flat["message.role"], "content": content or None}
    lists = indexed_by(flat, _MESSAGE_LISTS)
    parts = lists["message.contents."]
    if content is None and parts:
        content = "".join(
            str(part.get("message_content.text") or "")
            for part in parts
            if part.get("message_content.type", "text") == "text"
        )
    calls = lists["message.tool_calls."]
    if not calls:  # Anthropic's tool_use blocks, among the contents
        calls = [part for part in parts if "tool_call.function.name" in part]
    # an empty text beside tool calls is no text: the calls are the reply
    message: dict[str, Any] = {"role": flat.get("message.role"), "content": content or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("tool_call.id"),
                "name": call.get("tool_call.function.name"),
                "arguments": call.get("tool_call.function.arguments", ""),
            }
            for call in calls
        ]
    return message


def tokens(attributes: Attributes, provider: Any, response: Any) -> dict[str, Any]:
    """Token properties from ``llm.token_count.*``, gaps filled from the raw usage."""
    raw_usage = _raw_usage(response) if response is not None else None  # (most spans: no output.value)
    raw = {} if raw_usage is None else token_properties(str(provider) if provider else None, raw_usage)
    # as_count only reads text: a count (nearly always) or an absent one is taken as it is
    prompt = attributes.get(sc.LLM_TOKEN_COUNT_PROMPT)
    prompt = as_count(prompt) if isinstance(prompt, str) else prompt
    completion = attributes.get(sc.LLM_TOKEN_COUNT_COMPLETION)
    completion = as_count(completion) if isinstance(completion, str) else completion
    if prompt is None and completion is None:
        return raw
    if raw_usage is None and prompt.__class__ is int and completion.__class__ is int \
            and 0 <= prompt <= MAX_TOKENS and 0 <= completion <= MAX_TOKENS and _DETAIL_NAMES.isdisjoint(attributes):
        # most spans: two plain counts, no detail, no raw usage; what the lines below give then
        counted = {sc.PROP_INPUT_TOKENS: prompt, sc.PROP_OUTPUT_TOKENS: completion,
                   sc.PROP_CACHE_READ_INPUT_TOKENS: 0, sc.PROP_CACHE_CREATION_INPUT_TOKENS: 0,
                   sc.PROP_REASONING_TOKENS: 0}
        total = as_count(attributes.get(sc.LLM_TOKEN_COUNT_TOTAL))
        if isinstance(total, int) and not isinstance(total, bool):
            counted[sc.PROP_TOTAL_TOKENS] = total
        return counted
    usage = {sc.GEN_AI_USAGE_INPUT_TOKENS: prompt, sc.GEN_AI_USAGE_OUTPUT_TOKENS: completion}
    for name, (attribute, prop) in _DETAILS.items():
        value = attributes.get(attribute)
        if value is None:  # most spans: no cache or reasoning detail
            usage[name] = raw.get(prop)
        else:
            value = as_count(value)
            usage[name] = value if value is not None else raw.get(prop)
    # what token_properties(None, usage) gives, without finding out again which shape it is
    checked = make_usage(*usage.values())
    counted = ({} if isinstance(checked, NoCost) else usage_properties_of(checked)) \
        or _uncached_prompt_made_total(usage)
    total = as_count(attributes.get(sc.LLM_TOKEN_COUNT_TOTAL))
    if counted and isinstance(total, int) and not isinstance(total, bool):
        counted[sc.PROP_TOTAL_TOKENS] = total
    return counted


_DETAILS = {
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: (CACHE_READ, sc.PROP_CACHE_READ_INPUT_TOKENS),
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: (CACHE_WRITE, sc.PROP_CACHE_CREATION_INPUT_TOKENS),
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: (REASONING, sc.PROP_REASONING_TOKENS),
}
"""GenAI usage name ← OpenInference detail attribute, and the property it becomes."""
_DETAIL_NAMES = frozenset(attribute for attribute, _ in _DETAILS.values())


def _uncached_prompt_made_total(usage: dict[str, Any]) -> dict[str, Any]:
    """Older Anthropic instrumentations wrote Anthropic's uncached ``input_tokens`` as the
    prompt count, so the cache parts exceed it: the whole input is their sum."""
    prompt = usage[sc.GEN_AI_USAGE_INPUT_TOKENS]
    cache = [usage[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] or 0,
             usage[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] or 0]
    counts = [prompt, *cache]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return {}
    if sum(cache) <= prompt:
        return {}  # not that mistake: something else is wrong with these counts
    return token_properties(None, {**usage, sc.GEN_AI_USAGE_INPUT_TOKENS: prompt + sum(cache)})


def _raw_usage(response: Any) -> Any:
    """The provider's usage object inside ``output.value``, in a shape ``normalise_usage`` reads."""
    if isinstance(response, list) and response and isinstance(response[0], Mapping):
        response = response[0]  # the OpenAI Agents SDK's streamed chat completion
    if not isinstance(response, Mapping):
        return None
    generation = _langchain_generation(response)
    if generation is not None:
        kwargs = _get(generation, "message", "kwargs") or {}
        usage = kwargs.get("usage_metadata") if isinstance(kwargs, Mapping) else None
        return _langchain_usage(usage) if isinstance(usage, Mapping) else None
    return response.get("usage") or response.get("usage_metadata")


def _langchain_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """LangChain's ``usage_metadata`` (totals include cache and reasoning) as GenAI usage."""
    details_in = usage.get("input_token_details") or {}
    details_out = usage.get("output_token_details") or {}
    return {
        sc.GEN_AI_USAGE_INPUT_TOKENS: usage.get("input_tokens"),
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.get("output_tokens"),
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: details_in.get("cache_read"),
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: details_in.get("cache_creation"),
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: details_out.get("reasoning"),
    }


def time_to_first_token(span: ReadableSpan) -> float | None:
    for event in span.events:
        if event.name == FIRST_TOKEN_EVENT and span.start_time is not None:
            return max(0, event.timestamp - span.start_time) / 1e9
    return None


def _prompt_of_request(request: Any, attributes: Attributes) -> str:
    if isinstance(request, Mapping):
        return last_user_text(request.get("messages"))
    if isinstance(request, list):  # Responses API input items
        return last_user_text(request)
    if request is None:  # plain text, not JSON
        return text_or_none(attributes.get(sc.INPUT_VALUE)) or ""
    return ""


def _generation_of_response(response: Any, attributes: Attributes) -> str:
    if isinstance(response, list) and response and isinstance(response[0], Mapping):
        response = response[0]
    if isinstance(response, Mapping):
        if isinstance(response.get("choices"), list):  # chat completions
            return assistant_text(
                [c.get("message") for c in response["choices"] if isinstance(c, Mapping)]
            )
        if isinstance(response.get("output"), list):  # Responses API
            return responses_text(response["output"])
        if isinstance(response.get("content"), list):  # Anthropic Messages
            return assistant_text([{"role": "assistant", "content": response["content"]}])
        return ""
    if response is None:  # plain text, not JSON
        return text_or_none(attributes.get(sc.OUTPUT_VALUE)) or ""
    return ""


def _langchain_generation(response: Any) -> Mapping[str, Any] | None:
    """The first generation of a serialised LangChain ``LLMResult``."""
    generations = response.get("generations") if isinstance(response, Mapping) else None
    first = generations[0] if isinstance(generations, list) and generations else None
    generation = first[0] if isinstance(first, list) and first else None
    return generation if isinstance(generation, Mapping) else None


def _response_model(response: Any) -> str | None:
    """The model the reply names: a chat completion's ``model`` (LiteLLM's ``llm.model_name`` is
    the app's ``openai/gpt-4o-mini``, its reply JSON the dated ``gpt-4o-mini-2024-07-18``), or a
    LangChain generation's (a stream's ``llm.model_name`` is the request model)."""
    if isinstance(response, Mapping) and "choices" in response:
        return text_or_none(response.get("model"))
    generation = _langchain_generation(response)
    if generation is None:
        return None
    return text_or_none(_get(generation, "generation_info", "model_name")) or text_or_none(
        _get(generation, "message", "kwargs", "response_metadata", "model_name")
    )


def _response_id(response: Any) -> str | None:
    """The provider's id of the reply (a chat completion's ``id``, a LangChain generation's
    ``response_metadata.id``): what ties this span to the provider SDK's own span of the call
    when LangGraph runs the model outside this span's context (the SDK span is no child)."""
    if isinstance(response, Mapping) and "choices" in response:
        return text_or_none(response.get("id"))
    generation = _langchain_generation(response)
    return None if generation is None else text_or_none(
        _get(generation, "message", "kwargs", "response_metadata", "id"))


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


OPENINFERENCE = Convention("openinference", recognises, read,  # type: ignore[arg-type]
                           frozenset({sc.OPENINFERENCE_SPAN_KIND}))
