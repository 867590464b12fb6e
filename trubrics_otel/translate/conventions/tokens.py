"""Token counts as event properties, one meaning whatever the source: via :mod:`..usage`.

::

    token_properties("anthropic", {"input_tokens": 6, "cache_read_input_tokens": 1200,
                                   "output_tokens": 4})
    # {"input_tokens": 1206, "output_tokens": 4, "cache_read_input_tokens": 1200,
    #  "cache_creation_input_tokens": 0, "reasoning_tokens": 0}

``input_tokens`` is ALL input (cache reads and writes are parts of it), ``output_tokens``
ALL output (reasoning is part of it). A usage that breaks those rules (cache larger than the
input, a negative count…) gives no token properties rather than wrong ones.
"""

from __future__ import annotations

from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.translate.usage import NoCost, Usage, normalise_usage

TIME_TO_FIRST_TOKEN = sc.PROP_TIME_TO_FIRST_TOKEN
"""Seconds from the request to the first streamed chunk (a property; absent when unknown)."""


def usage_properties_of(usage: Usage) -> dict[str, Any]:
    return {
        sc.PROP_INPUT_TOKENS: usage.input_tokens,
        sc.PROP_OUTPUT_TOKENS: usage.output_tokens,
        sc.PROP_CACHE_READ_INPUT_TOKENS: usage.cache_read_input_tokens,
        sc.PROP_CACHE_CREATION_INPUT_TOKENS: usage.cache_creation_input_tokens,
        sc.PROP_REASONING_TOKENS: usage.reasoning_tokens,
    }


def token_properties(provider: str | None, raw: object) -> dict[str, Any]:
    """A provider's usage object, or ``gen_ai.usage.*`` attributes, as the five properties."""
    usage = normalise_usage(provider, raw)
    return {} if isinstance(usage, NoCost) else usage_properties_of(usage)


def genai_usage_properties(attributes: Any) -> dict[str, Any]:
    """``gen_ai.usage.*`` (the GenAI convention: cache and reasoning are parts of the totals)."""
    names = (
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    )
    raw = {name: as_count(attributes[name]) for name in names if attributes.get(name) is not None}
    return token_properties(None, raw) if raw else {}


def as_count(value: Any) -> Any:
    """Counts some SDKs write as text (``'5'``) → numbers; anything else is left to be refused."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value
