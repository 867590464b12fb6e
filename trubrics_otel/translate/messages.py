"""Chat messages in any shape → GenAI semantic-convention messages, and back to text.

::

    genai_messages("Hi", "user")           # [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
    genai_messages([{"role": "user", "content": "Hi"}], "user")
    last_user_text(messages), assistant_text(messages)

Pure functions: the tracing API writes messages with :func:`genai_messages`, and the
conventions read every library's messages with the text helpers below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from trubrics_otel.translate.fastjson import loads
from trubrics_otel.translate.jsonable import snapshot
from trubrics_otel.translate.reprs import looks_like_repr, python_literal

T = TypeVar("T")


def genai_messages(value: Any, role: str) -> list[dict[str, Any]]:
    """Prompt or completion (text, one message, a list of them, any JSON) → GenAI messages."""
    if value is None:
        return []
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [_message(m, role) for m in value]
    if _is_message(value):
        return [_message(value, role)]
    return [{"role": role, "parts": [text_part(value)]}]


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and ("role" in value or "content" in value or "parts" in value)


def _message(message: Mapping[str, Any], role: str) -> dict[str, Any]:
    role = str(message.get("role") or role)
    if isinstance(message.get("parts"), list):
        return {"role": role, "parts": message["parts"]}
    parts: list[Any] = []
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": part["text"]})
            else:
                parts.append(part)
    elif content is not None:
        parts.append(text_part(content))
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping):
            function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else call
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
    return {"role": role, "parts": parts}


def text_part(value: Any) -> dict[str, Any]:
    return {"type": "text", "content": value if isinstance(value, str) else json_text(value)}


def json_text(value: Any) -> str:
    """Any value as compact JSON text (a snapshot: JSON-safe whatever it holds)."""
    return json.dumps(snapshot(value), ensure_ascii=False, separators=(",", ":"))


# --- reading messages back (the conventions' helpers) ---------------------------------


def parse_json(value: Any) -> Any:
    """A JSON attribute's value, or ``None`` when absent or unparseable."""
    if not isinstance(value, str):
        return value
    try:
        return loads(value)
    except ValueError:
        return None


def message_text(message: Mapping[str, Any]) -> str:
    """Text of one message in either GenAI form (``parts`` or ``content``)."""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [p.get("content", "") for p in parts
                 if (p.__class__ is dict or isinstance(p, Mapping)) and p.get("type") == "text"]
        if texts:
            try:
                text = "".join(texts)
            except TypeError:  # a part whose content is not text
                return "".join([str(t) for t in texts])
            if (text and text[-1] in "})") or len(texts) > 1:  # a few ns for the usual reply
                return _odd_reply(parts, texts, text)
            return text
        calls = [p for p in parts if _is_mapping(p) and p.get("type") == "tool_call"]
        return summarise_tool_calls(calls)
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if _is_mapping(p))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        return summarise_tool_calls(calls)
    return ""


_CALL_BLOCKS = frozenset({"function_call", "tool_call", "tool_use"})
_NOT_TEXT_BLOCKS = _CALL_BLOCKS | {"reasoning"}


def _odd_reply(parts: list[Any], texts: list[Any], text: str) -> str:
    """The reply of text parts that may hold something else than text (see below): a reply
    ending in ``}`` or ``)``, or in several parts."""
    if any(t[:2] == '{"' for t in texts if isinstance(t, str)):
        text = _without_block_texts(parts, texts, text)
    if text and text[-1] in "})" and looks_like_repr(text):
        return _reply_of_repr(text)
    return text


def _without_block_texts(parts: list[Any], texts: list[Any], text: str) -> str:
    """The reply's text without text parts that hold a provider content block as JSON (OpenLLMetry
    writes LangChain's Responses API blocks so: a function call beside its own ``tool_call``
    part); when nothing else is left, the tool calls."""
    kept: list[str] = []
    calls: list[Any] = []
    for content in texts:
        block = parse_json(content) if isinstance(content, str) and content.startswith('{"') else None
        if isinstance(block, dict) and block.get("type") in _NOT_TEXT_BLOCKS:
            if block["type"] in _CALL_BLOCKS:
                calls.append(block)
            continue
        kept.append(str(content))
    if len(kept) == len(texts):
        return text
    if kept:
        return "".join(kept)
    tool_parts = [p for p in parts if _is_mapping(p) and p.get("type") == "tool_call"]
    return summarise_tool_calls(tool_parts or calls)


def _reply_of_repr(text: str) -> str:
    """The reply an SDK object's repr in a text part stands for (see
    :mod:`~trubrics_otel.translate.reprs`): its text or tool calls; else the text as it is."""
    data = python_literal(text)
    if not isinstance(data, dict):
        return text
    if isinstance(data.get("output"), list):  # a Responses API response
        return responses_text(data["output"]) or text
    if data.get("type") == "function_call":  # one Responses API output item
        return summarise_tool_calls([data])
    if "tool_calls" in data or ("role" in data and "content" in data):  # a chat message
        return message_text(data) or text
    return text


def responses_text(items: list[Any]) -> str:
    """A Responses API ``output``: its messages' text, else its function calls."""
    texts = [
        str(part.get("text", ""))
        for item in items
        if isinstance(item, Mapping) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, Mapping)
    ]
    if any(texts):
        return "".join(texts)
    calls = [i for i in items if isinstance(i, Mapping) and i.get("type") == "function_call"]
    return summarise_tool_calls(calls)


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, with parsed JSON's plain dicts spared the ABC check."""
    return value.__class__ is dict or isinstance(value, Mapping)


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
    """The prompt: the text of the last user message that has text. A user message holding
    only a tool result (pydantic-ai, Anthropic, Bedrock put them there) is not the prompt."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):  # _is_mapping, inline: a call less per message
        if (message.__class__ is dict or isinstance(message, Mapping)) and message.get("role") == "user":
            text = user_text(message)
            if text:
                return text
    return ""


def user_text(message: Mapping[str, Any]) -> str:
    """The text parts of one message, in any shape: GenAI ``parts``, a string, or a list of
    content parts (``{"type": "text", "text": ...}`` or ``{"type": "text", "content": ...}``)."""
    parts = message.get("parts")
    if not isinstance(parts, list):
        parts = message.get("content")
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif _is_mapping(part) and part.get("type", "text") in ("text", "input_text"):
            text = part.get("content", part.get("text"))
            if isinstance(text, str):
                texts.append(text)
    return "".join(texts)


def assistant_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    if len(messages) == 1:  # the usual reply, without a comprehension's function call
        only = messages[0]
        return "\n".join((message_text(only),)) if _is_mapping(only) else ""
    return "\n".join([message_text(m) for m in messages if _is_mapping(m)])


def plain(value: Any) -> Any:
    """OTel attribute value → JSON value (sequences arrive as tuples)."""
    return list(value) if isinstance(value, tuple) else value


def indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened lists back into dicts: ``{"p.0.role": "user"}`` → ``[{"role": "user"}]``."""
    return indexed_by(attributes, (prefix,))[prefix]


def indexed_by(attributes: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """:func:`indexed` for several prefixes in one pass over the keys (an LLM span holds dozens
    of attributes and is read for four or five lists). No prefix may start another."""
    return {prefix: [{rest: attributes[key] for rest, key in item} for item in items]
            for prefix, items in indexed_keys(attributes, prefixes).items()}


Layout = dict[str, tuple[tuple[tuple[str, str], ...], ...]]
"""Per prefix, its items in index order, each item its ``(rest, key)`` pairs in key order."""


def indexed_keys(attributes: Mapping[str, Any], prefixes: tuple[str, ...]) -> Layout:
    """Where :func:`indexed_by`'s items are among the keys, without their values."""
    return by_shape(_LAYOUTS, prefixes, tuple(attributes), _layout)


def by_shape(memo: dict[Any, dict[tuple[str, ...], T]], group: Hashable, shape: tuple[str, ...],
             work: Callable[[tuple[str, ...], Any], T]) -> T:
    """``work(shape, group)`` worked out once per spelling of a span's keys (``shape``, a tuple
    of them) and ``group`` (a convention's constant prefixes): a library writes the same keys
    in the same order in every span, and one lookup costs less than testing each key.
    Bounded: 64 groups of 1,024 spellings."""
    known = memo.get(group)
    if known is None or len(known) > 1024:
        if len(memo) > 64:  # groups are the conventions' constants: never this many
            memo.clear()
        known = memo[group] = {}
    found = known.get(shape)
    if found is None:
        found = known[shape] = work(shape, group)
    return found


def _layout(keys: tuple[str, ...], prefixes: tuple[str, ...]) -> Layout:
    found: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for key in keys:
        shape = _shape(key, prefixes)
        if shape:
            where, rest = shape
            found.setdefault(where, []).append((rest, key))
    layout: dict[str, list[tuple[tuple[str, str], ...]]] = {prefix: [] for prefix in prefixes}
    for where in sorted(found):
        layout[where[0]].append(tuple(found[where]))
    return {prefix: tuple(items) for prefix, items in layout.items()}


_LAYOUTS: dict[tuple[str, ...], dict[tuple[str, ...], Layout]] = {}
"""Per prefixes, each spelling of a span's keys seen → its layout."""


def _shape(key: str, prefixes: tuple[str, ...]) -> tuple[tuple[str, int], str] | tuple[()]:
    for prefix in prefixes:
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if rest and index.isdigit():
                return ((prefix, int(index)), rest)
            return ()
    return ()


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []
