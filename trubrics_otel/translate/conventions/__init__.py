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
(:mod:`trubrics_otel.translate.genai_logs`), so the rows only ever read spans.

Spans written by :class:`trubrics_otel.Trubrics` use the OpenTelemetry GenAI convention,
so they are read by the same row as the official GenAI instrumentation.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import genai, google_adk, openinference, openllmetry
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
)
from trubrics_otel.translate.messages import plain

__all__ = ["CONVENTIONS", "Convention", "LlmCall", "SpanEvent", "read_span", "read_llm_call",
           "other_span", "first_of", "prefixed_properties", "USER_ID_ATTRIBUTES",
           "THREAD_ID_ATTRIBUTES", "PROPERTY_PREFIXES"]

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
        key[len(prefix) :]: plain(value)
        for key, value in attributes.items()
        for prefix in PROPERTY_PREFIXES
        if key.startswith(prefix)
    }



GENAI = genai.GENAI
GENAI_TOOL = genai.GENAI_TOOL
OPENLLMETRY_LEGACY = Convention("openllmetry-legacy", openllmetry.recognises_legacy, genai.read)
OPENINFERENCE = openinference.OPENINFERENCE

CONVENTIONS: tuple[Convention, ...] = (google_adk.GOOGLE_ADK, GENAI, GENAI_TOOL, OPENLLMETRY_LEGACY, OPENINFERENCE)
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
        key: plain(value)
        for key, value in (span.attributes or {}).items()
        if not key.startswith("trubrics.")
    }
    properties[sc.PROP_SPAN_KIND] = span.kind.name.lower()
    if span.start_time is not None and span.end_time is not None:
        properties[sc.PROP_DURATION] = (span.end_time - span.start_time) / 1e9
    return SpanEvent(name=span.name, properties=properties)
