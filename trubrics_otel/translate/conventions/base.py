"""The shared vocabulary of the convention rows: what a row reads a span into.

::

    Convention("my-library", recognises=lambda attributes: ..., read=lambda span: LlmCall(...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


USAGE = {
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
"""Usage attribute → property name, every spelling the rows meet."""


def usage_properties(attributes: Attributes) -> dict[str, Any]:
    """Token counts under their property names; the first spelling present wins."""
    properties: dict[str, Any] = {}
    for attribute, prop in USAGE.items():
        if attribute in attributes and prop not in properties:
            properties[prop] = attributes[attribute]
    return properties
