"""Haystack (2.x and 3.x with ``opentelemetry-haystack``, content tracing on).

A model call is a pipeline's ``haystack.component.run`` span of a generator component
(``haystack.component.type`` ``OpenAIChatGenerator``, ``AnthropicChatGenerator``… any
``*Generator``), or an ``Agent``'s ``haystack.agent.step.llm`` span. Everything is in JSON::

    haystack.component.input  / haystack.agent.step.llm.input    {"messages": [{"role", "content":
                                                                  [{"text"}]}...]} (Python repr
                                                                  text when a value was not JSON)
    haystack.component.output / haystack.agent.step.llm.output   {"replies": [{"content": [{"text"}
                                                                  | {"tool_call"}], "meta": {"model",
                                                                  "usage", "finish_reason"}}]}

An agent's tool run is ``haystack.agent.step.tool`` with ``haystack.tool.name``: a tool event.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    tool_event,
)
from trubrics_otel.translate.conventions.generic import parsed, prompt_text, usage_of
from trubrics_otel.translate.messages import summarise_tool_calls, text_or_none

COMPONENT_TYPE = "haystack.component.type"
_STEP_INPUT, _STEP_OUTPUT = "haystack.agent.step.llm.input", "haystack.agent.step.llm.output"
_INPUT, _OUTPUT = "haystack.component.input", "haystack.component.output"
TOOL_NAME = "haystack.tool.name"
# the last user message's text in a ChatMessage repr: ... ChatRole.USER ... TextContent(text='...')
_REPR_USER_TEXT = re.compile(
    r"ChatRole\.USER.*?TextContent\(text=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.DOTALL)


def recognises(attributes: Attributes) -> bool:
    kind = attributes.get(COMPONENT_TYPE)
    if kind is not None:
        return isinstance(kind, str) and kind.endswith("Generator")
    return _STEP_OUTPUT in attributes or _STEP_INPUT in attributes


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    inputs = attributes.get(_INPUT) or attributes.get(_STEP_INPUT)
    output = parsed(attributes.get(_OUTPUT) or attributes.get(_STEP_OUTPUT))
    replies = output.get("replies") if isinstance(output, Mapping) else None
    reply = replies[0] if isinstance(replies, list) and replies else None
    meta = reply.get("meta") if isinstance(reply, Mapping) else None
    if meta is None and isinstance(output, Mapping):  # text generators: a "meta" list beside
        metas = output.get("meta")
        meta = metas[0] if isinstance(metas, list) and metas else None
    meta = meta if isinstance(meta, Mapping) else {}
    properties = usage_of(meta.get("usage"))
    if meta.get("finish_reason"):
        properties[sc.PROP_FINISH_REASON] = meta["finish_reason"]
    return LlmCall(
        prompt=_prompt(inputs),
        generation=_reply_text(reply),
        model=text_or_none(meta.get("model")),
        properties=properties,
    )


def _prompt(inputs: Any) -> str:
    found = parsed(inputs)
    if not isinstance(found, str):
        return prompt_text(found)
    matches = _REPR_USER_TEXT.findall(found)  # not JSON: the repr of ChatMessage objects
    if not matches:
        return ""
    try:
        text = ast.literal_eval(matches[-1])
    except (ValueError, SyntaxError):
        return ""
    return text if isinstance(text, str) else ""


def _reply_text(reply: Any) -> str:
    if isinstance(reply, str):
        return reply
    if not isinstance(reply, Mapping) or not isinstance(reply.get("content"), list):
        return ""
    texts, calls = [], []
    for part in reply["content"]:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, Mapping) and isinstance(part.get("tool_call"), Mapping):
            call = part["tool_call"]
            calls.append({"name": call.get("tool_name"), "arguments": call.get("arguments")})
    return "".join(texts) or summarise_tool_calls(calls)


HAYSTACK = Convention("haystack", recognises, read, frozenset({COMPONENT_TYPE, _STEP_INPUT, _STEP_OUTPUT}))


def _tool_recognises(attributes: Attributes) -> bool:
    return TOOL_NAME in attributes


def _tool_read(span: ReadableSpan) -> SpanEvent:
    return tool_event(str((span.attributes or {})[TOOL_NAME]))


HAYSTACK_TOOL = Convention("haystack-tool", _tool_recognises, _tool_read, frozenset({TOOL_NAME}))
