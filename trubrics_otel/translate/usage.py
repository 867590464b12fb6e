"""Token usage in one shape, whatever the provider's counting rules.

::

    from trubrics_otel.translate.usage import normalise_usage

    normalise_usage("anthropic", {"input_tokens": 20, "cache_read_input_tokens": 1000,
                                  "cache_creation_input_tokens": 200, "output_tokens": 50})
    # Usage(input_tokens=1220, output_tokens=50, cache_read_input_tokens=1000,
    #       cache_creation_input_tokens=200, reasoning_tokens=0)

In a :class:`Usage`, ``input_tokens`` counts ALL input (uncached + cache reads + cache
writes) and ``output_tokens`` ALL output (visible + reasoning): the cache and reasoning
counts are parts of those totals, never additions to them. That is the OpenTelemetry GenAI
convention (``gen_ai.usage.cache_read.input_tokens`` is part of ``gen_ai.usage.input_tokens``)
and genai-prices' own. Providers differ, and :func:`normalise_usage` applies each one's rule:

- OpenAI (Chat Completions and Responses, and the many OpenAI-compatible APIs): ``prompt_tokens``
  / ``input_tokens`` INCLUDE ``prompt_tokens_details.cached_tokens`` / ``input_tokens_details.
  cached_tokens`` (https://platform.openai.com/docs/guides/prompt-caching: the cached count is
  reported inside the prompt's details), and ``completion_tokens`` / ``output_tokens`` INCLUDE
  ``completion_tokens_details.reasoning_tokens`` (https://platform.openai.com/docs/guides/reasoning:
  reasoning tokens "are billed as output tokens" and counted in the completion).
- Anthropic: ``input_tokens`` EXCLUDES cache reads and writes; the total input is
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``
  (https://docs.claude.com/en/docs/build-with-claude/prompt-caching, "Tracking cache performance").
- Gemini: ``prompt_token_count`` INCLUDES ``cached_content_token_count`` ("when cached_content
  is set, this is still the total effective prompt size meaning this includes the number of
  tokens in the cached content", https://ai.google.dev/api/generate-content#UsageMetadata), but
  ``thoughts_token_count`` is SEPARATE from ``candidates_token_count`` and billed as output
  (https://ai.google.dev/gemini-api/docs/thinking#pricing: "response pricing is the sum of output
  tokens and thinking tokens"); ``tool_use_prompt_token_count`` is separate input as well
  (``total_token_count`` sums all four). Both the SDK's snake_case and REST's camelCase are read.
- OpenTelemetry GenAI attributes (``gen_ai.usage.*``): taken as the convention defines them.

Never raises: a count that is negative, above :data:`MAX_TOKENS`, NaN, a string or a bool, or
parts larger than their total, give :class:`NoCost` with the reason instead of a wrong figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import semconv as sc

MAX_TOKENS = 100_000_000
"""More tokens than this in one call is a bug upstream, not a bill (the largest context
windows hold a few million)."""


class Usage(NamedTuple):
    """One call's tokens; cache counts are parts of ``input_tokens``, reasoning of ``output_tokens``.
    (A named tuple: one per priced event, cheaper to build than a frozen dataclass.)"""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0


_new_usage = tuple.__new__  # Usage(*counts) without the named tuple's Python-level __new__

NO_TOKEN_COUNTS = "no token counts"


@dataclass(frozen=True, slots=True)
class NoCost:
    """Why an event gets no cost (kept for logs and tests; never sent as a property)."""

    reason: str


def make_usage(
    input_tokens: object,
    output_tokens: object,
    cache_read_input_tokens: object = None,
    cache_creation_input_tokens: object = None,
    reasoning_tokens: object = None,
) -> Usage | NoCost:
    """Checked :class:`Usage` from counts in the normalised sense; ``None`` counts as absent.

    With neither an input nor an output count there is no usage to price.
    """
    if input_tokens is None and output_tokens is None:
        return NoCost(NO_TOKEN_COUNTS)
    counted = (0 if input_tokens is None else input_tokens, 0 if output_tokens is None else output_tokens,
               0 if cache_read_input_tokens is None else cache_read_input_tokens,
               0 if cache_creation_input_tokens is None else cache_creation_input_tokens,
               0 if reasoning_tokens is None else reasoning_tokens)
    for count in counted:  # nearly always plain counts: no message to word
        if count.__class__ is not int or not 0 <= count <= MAX_TOKENS:
            break
    else:
        return _checked(_new_usage(Usage, counted))
    fields = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "reasoning_tokens": reasoning_tokens,
    }
    counts: dict[str, int] = {}
    for name, value in fields.items():
        count = _count(value)
        if isinstance(count, str):
            return NoCost(f"{name} {count}")
        counts[name] = count
    return _checked(Usage(**counts))


def _checked(usage: Usage) -> Usage | NoCost:
    input_tokens, output_tokens, cache_read, cache_creation, reasoning = usage  # one read, not six
    if cache_read + cache_creation > input_tokens:
        return NoCost("cache tokens exceed input_tokens (they are part of it)")
    if reasoning > output_tokens:
        return NoCost("reasoning_tokens exceed output_tokens (they are part of it)")
    return usage


def usage_from_properties(properties: Mapping[str, Any]) -> Usage | NoCost:
    """The :class:`Usage` an event's properties already carry in the normalised sense."""
    return make_usage(
        properties.get(sc.PROP_INPUT_TOKENS),
        properties.get(sc.PROP_OUTPUT_TOKENS),
        properties.get(sc.PROP_CACHE_READ_INPUT_TOKENS),
        properties.get(sc.PROP_CACHE_CREATION_INPUT_TOKENS),
        properties.get(sc.PROP_REASONING_TOKENS),
    )


def normalise_usage(provider: str | None, raw: object) -> Usage | NoCost:
    """A provider's usage object (a mapping or an SDK object) -> :class:`Usage`.

    The shape decides the rule where it can (Gemini's and OpenAI's key names are their own);
    ``input_tokens`` is ambiguous, and is read the Anthropic way when ``provider`` names
    Anthropic or the object carries Anthropic's ``cache_*_input_tokens`` keys.
    """
    if raw is None:
        return NoCost("no usage")
    try:
        if _has(raw, sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS,
                sc.GEN_AI_USAGE_PROMPT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS):
            return _semconv(raw)
        if _has(raw, "prompt_token_count", "promptTokenCount", "candidates_token_count",
                "candidatesTokenCount"):
            return _gemini(raw)
        if _has(raw, "prompt_tokens", "completion_tokens"):
            return _openai(raw, "prompt_tokens", "completion_tokens",
                           "prompt_tokens_details", "completion_tokens_details")
        if _is_anthropic(provider, raw):
            return _anthropic(raw)
        if _has(raw, "input_tokens", "output_tokens"):
            return _openai(raw, "input_tokens", "output_tokens",
                           "input_tokens_details", "output_tokens_details")
    except Exception as exc:  # an exotic object whose attributes raise: no cost, never a crash
        return NoCost(f"unreadable usage ({type(exc).__name__})")
    return NoCost(NO_TOKEN_COUNTS)


def _semconv(raw: object) -> Usage | NoCost:
    return make_usage(
        _first(raw, sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS),
        _first(raw, sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS),
        _get(raw, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        _get(raw, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
        _get(raw, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
    )


def _openai(raw: object, input_key: str, output_key: str, input_details: str,
            output_details: str) -> Usage | NoCost:
    prompt_details = _get(raw, input_details)
    completion_details = _get(raw, output_details)
    return make_usage(
        _get(raw, input_key),
        _get(raw, output_key),
        _get(prompt_details, "cached_tokens"),
        _get(prompt_details, "cache_write_tokens"),  # Azure's Responses API reports writes
        _get(completion_details, "reasoning_tokens"),
    )


def _anthropic(raw: object) -> Usage | NoCost:
    uncached = _get(raw, "input_tokens")
    cache_read = _get(raw, "cache_read_input_tokens")
    cache_creation = _get(raw, "cache_creation_input_tokens")
    total = _sum(uncached, cache_read, cache_creation)
    if isinstance(total, NoCost):
        return total
    return make_usage(total, _get(raw, "output_tokens"), cache_read, cache_creation)


def _gemini(raw: object) -> Usage | NoCost:
    prompt = _first(raw, "prompt_token_count", "promptTokenCount")
    tool_prompt = _first(raw, "tool_use_prompt_token_count", "toolUsePromptTokenCount")
    candidates = _first(raw, "candidates_token_count", "candidatesTokenCount")
    thoughts = _first(raw, "thoughts_token_count", "thoughtsTokenCount")
    total_input = _sum(prompt, tool_prompt)
    total_output = _sum(candidates, thoughts)
    for total in (total_input, total_output):
        if isinstance(total, NoCost):
            return total
    return make_usage(
        total_input,
        total_output,
        _first(raw, "cached_content_token_count", "cachedContentTokenCount"),
        None,  # Gemini bills context caching as storage time, not as writes per call
        thoughts,
    )


def _is_anthropic(provider: str | None, raw: object) -> bool:
    if isinstance(provider, str) and "anthropic" in provider.lower():
        return True
    return _has(raw, "cache_read_input_tokens", "cache_creation_input_tokens")


def _count(value: object) -> int | str:
    """A token count, or what is wrong with it; ``None`` (absent) counts as 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number ({type(value).__name__})"
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return f"is not a whole number ({value!r})"
        value = int(value)
    if value < 0:
        return f"is negative ({value})"
    if value > MAX_TOKENS:
        return f"is absurd ({value} > {MAX_TOKENS})"
    return value


def _sum(*values: object) -> object:
    """Sum of the present counts (``None`` when none is), or the first bad count's :class:`NoCost`."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    total = 0
    for value in present:
        count = _count(value)
        if isinstance(count, str):
            return NoCost(f"token count {count}")
        total += count
    return total


def _get(raw: object, key: str) -> object:
    if raw.__class__ is dict:  # nearly always: before the slower ABC check
        return raw.get(key)  # type: ignore[attr-defined]
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return raw.get(key)
    return getattr(raw, key, None)


def _first(raw: object, *keys: str) -> object:
    for key in keys:
        value = _get(raw, key)
        if value is not None:
            return value
    return None


def _has(raw: object, *keys: str) -> bool:
    return any(_get(raw, key) is not None for key in keys)
