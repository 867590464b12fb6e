"""The shared vocabulary of the convention rows: what a row reads a span into.

::

    Convention("my-library", recognises=lambda attributes: ..., read=lambda span: LlmCall(...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.messages import by_shape

Attributes = Mapping[str, Any]

UNKNOWN_ERROR_TYPE = "error"
"""The ``error.type`` of a failed call whose spans name no error class."""


class LlmCall(NamedTuple):
    """What one LLM call says, whatever convention it was written in. (Named tuples, this
    and :class:`SpanEvent`: one per span, at less than half a frozen dataclass's cost.)"""

    prompt: str
    generation: str
    model: str | None
    properties: dict[str, Any]
    """Normalised extras: token counts, finish reason, provider, request parameters."""


new_tuple = tuple.__new__
"""``new_tuple(LlmCall, (prompt, generation, model, properties))``: a named tuple built without
its Python-level ``__new__`` (a third of the cost), where a row reads every LLM span."""


class SpanEvent(NamedTuple):
    """A span that is a product event (a tool run, an opted-in HTTP span…), not an LLM call."""

    name: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class Convention:
    name: str
    recognises: Callable[[Attributes], bool]
    read: Callable[[ReadableSpan], LlmCall | SpanEvent | None]
    """``None``: the span only looked like one of the row's (the generic row)."""
    needs: frozenset[str] | None = None
    """Attributes one of which every span the row recognises has: a span with none of them
    is not asked (``read_span`` tries 18 rows per span). ``None``: any span may be the row's."""


def keys_under(attributes: Attributes, prefix: str) -> tuple[str, ...]:
    """The keys of ``attributes`` that start with ``prefix``, in their order. Found once per
    spelling of a span's keys: a library writes the same keys in the same order in every
    span, and a tuple of them is looked up for less than testing each key."""
    return by_shape(_KEYS_UNDER, prefix, tuple(attributes), _keys_starting)


def _keys_starting(keys: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    return tuple(key for key in keys if key.startswith(prefix))


_KEYS_UNDER: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {}


USAGE: dict[str, tuple[str, ...]] = {
    sc.PROP_INPUT_TOKENS: (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS,
                           sc.LLM_TOKEN_COUNT_PROMPT),
    sc.PROP_OUTPUT_TOKENS: (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS,
                            sc.LLM_TOKEN_COUNT_COMPLETION),
    sc.PROP_TOTAL_TOKENS: (sc.GEN_AI_USAGE_TOTAL_TOKENS, sc.LLM_USAGE_TOTAL_TOKENS,
                           sc.LLM_TOKEN_COUNT_TOTAL),
    sc.PROP_CACHE_READ_INPUT_TOKENS: (
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "gen_ai.usage.cache_read_input_tokens",  # OpenLLMetry before the semconv name
        "gen_ai.usage.details.cache_read_tokens",  # pydantic-ai's raw details
        "llm.token_count.prompt_details.cache_read",  # OpenInference
    ),
    sc.PROP_CACHE_CREATION_INPUT_TOKENS: (
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        "gen_ai.usage.cache_write.input_tokens",  # the anthropic SDK's own spans
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.details.cache_write_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    sc.PROP_REASONING_TOKENS: (
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        "gen_ai.usage.reasoning_tokens",  # OpenLLMetry
        "gen_ai.usage.details.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "ai.usage.outputTokenDetails.reasoningTokens",  # AI SDK 7 with OpenTelemetry({usage: true})
    ),
}
"""Property → the attributes that spell it, first present wins. Every spelling here counts in
the normalised sense (cache within input, reasoning within output): the OpenTelemetry GenAI
convention's, which these libraries follow (Bedrock's OpenLLMetry does not: its reader adds
the cache back)."""


_USAGE_NAMES = frozenset(name for names in USAGE.values() for name in names)


def usage_properties(attributes: Attributes, *, absent_is_zero: bool = True) -> dict[str, Any]:
    """Token counts under their property names. Libraries leave out zero counts (pydantic-ai,
    OpenLLMetry): with input or output present, every absent count is 0 (``absent_is_zero``;
    not for our own ``track_llm`` spans, whose counts are what the app gave)."""
    properties: dict[str, Any] = {}
    present = _USAGE_NAMES.intersection(attributes)  # one pass over the keys, then few lookups
    if not present:
        return properties
    plan = _USAGE_PLANS.get(present)
    if plan is None:
        if len(_USAGE_PLANS) > 1024:
            _USAGE_PLANS.clear()
        plan = _USAGE_PLANS[present] = tuple(
            (prop, tuple(name for name in names if name in present))
            for prop, names in USAGE.items() if not present.isdisjoint(names))
    for prop, names in plan:  # in the table's order; the first spelling that is a count wins
        for name in names:
            value = attributes[name]
            count = value if value.__class__ is int else token_count(value)
            if count is not None:
                properties[prop] = count
                break
    if absent_is_zero and (sc.PROP_INPUT_TOKENS in properties or sc.PROP_OUTPUT_TOKENS in properties):
        for prop in _ZERO_WHEN_ABSENT:
            properties.setdefault(prop, 0)
    return properties


_USAGE_PLANS: dict[frozenset[str], tuple[tuple[str, tuple[str, ...]], ...]] = {}
"""By which spellings a span has: each property and its spellings present, in rank order."""


_ZERO_WHEN_ABSENT = (sc.PROP_INPUT_TOKENS, sc.PROP_OUTPUT_TOKENS, sc.PROP_CACHE_READ_INPUT_TOKENS,
                     sc.PROP_CACHE_CREATION_INPUT_TOKENS, sc.PROP_REASONING_TOKENS)


def token_count(value: Any) -> int | None:
    """A token count as a number (some libraries write ``"12"``); ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


_CALLABLE_SUFFIXES = (".__call__", "._arun", "._run", ".ainvoke", ".invoke", ".arun", ".run",
                      ".forward", "()")


def tool_name(raw: str) -> str:
    """A tool's name as the app wrote it, not as a tracer named the callable that ran it:
    ``get_weather.__call__`` / ``get_weather.invoke`` / ``get_weather()`` → ``get_weather``."""
    name = raw.strip()
    for _ in range(2):  # "get_weather.__call__()" at most
        for suffix in _CALLABLE_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return name or raw


def tool_event(raw_name: str) -> SpanEvent:
    """The product event of a tool run: ``execute_tool <name>`` with ``tool_name``."""
    name = tool_name(raw_name)
    return SpanEvent(f"{sc.OPERATION_EXECUTE_TOOL} {name}", {sc.PROP_TOOL_NAME: name})
