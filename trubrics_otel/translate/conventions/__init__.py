"""How each span convention spells an LLM call: the one table to extend.

The encoder asks :func:`read_span` what a span is: an LLM call (:class:`LlmCall`: prompt,
generation, model, properties), a product event (:class:`SpanEvent`, e.g. a tool run), or
nothing it knows. Each :class:`Convention` in :data:`CONVENTIONS` recognises its spans and
reads them; the first that recognises a span wins. Who the event is for and which thread it
belongs to come from :data:`USER_ID_ATTRIBUTES`, :data:`THREAD_ID_ATTRIBUTES` and the
``METADATA_*`` lists, on the span or any ancestor (:mod:`trubrics_otel.translate.traces`).
Supporting another instrumentation library means adding a row (and a fixture test under
``tests/fixtures/spans``), never touching the encoder. Every event a row read carries the
row's name as ``$source``.

============================  ==========================================================
row                           recognises
============================  ==========================================================
``GOOGLE_ADK``                Google ADK's own spans (see its module)
``VERCEL_AI``                 ``ai.operationId`` ``…doGenerate`` / ``…doStream`` (its
                              outer ``ai.generateText`` etc. are wrappers: no row)
``VERCEL_AI_TOOL``            ``ai.operationId = ai.toolCall`` → product event
``LITELLM``                   ``litellm.call_id`` on a GenAI chat span: GenAI + function
                              calls + cost
``LOGFIRE``                   a GenAI chat span with ``request_data`` or ``events``: + its
                              ``request_data`` / ``response_data`` / ``events`` / ``output``
                              / ``usage``; a stream's request span is none, its log span
                              is (latency ``duration``)
``LOGFIRE_TOOL``              Logfire's ``Function: {name}`` (OpenAI Agents) → product event
``STRANDS``                   a GenAI chat span of ``strands-agents``: no provider,
                              time to first token from milliseconds
``GENAI``                     ``gen_ai.operation.name`` chat / text_completion /
                              generate_content; or, older, ``gen_ai.system`` + request
                              model. Messages from ``gen_ai.input/output.messages``, else
                              content span events (block JSON, the latest convention's
                              ``operation.details``), else OpenLLMetry's flattened
                              ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*``
``GENAI_TOOL``                ``gen_ai.operation.name = execute_tool``, or Traceloop's
                              ``traceloop.span.kind = tool`` → product event
``LANGFUSE``                  ``langfuse.observation.type = generation`` (SDK v3+)
``LANGFUSE_TOOL``             ``langfuse.observation.type = tool`` → product event
``MLFLOW``                    ``mlflow.spanType = "CHAT_MODEL"`` / ``"LLM"``
``MLFLOW_TOOL``               ``mlflow.spanType = "TOOL"`` → product event
``OPENLLMETRY_LEGACY``        ``llm.request.type`` chat / completion (OpenLLMetry <= 0.47)
``OPENINFERENCE``             ``openinference.span.kind = LLM``: ``llm.input_messages.*``,
                              ``llm.output_messages.*``, ``llm.token_count.*``, else
                              ``input.value`` / ``output.value``
``LITELLM_RAW``               ``llm.<provider>.messages`` / ``.choices``: LiteLLM's
                              ``raw_gen_ai_request`` child of its carrier span
``HAYSTACK``                  a ``*Generator`` component run, an agent's LLM step
``HAYSTACK_TOOL``             ``haystack.tool.name`` → product event
``GENERIC``                   any other span naming a model with message-shaped content
                              or token counts (never a wrapper, tool, HTTP or DB span)
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
from trubrics_otel.translate.conventions import (
    generic,
    genai,
    google_adk,
    haystack,
    langfuse,
    litellm,
    logfire,
    mlflow,
    openinference,
    openllmetry,
    strands,
    vercel_ai,
)
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
)
from trubrics_otel.translate.messages import by_shape, plain

__all__ = ["CONVENTIONS", "Convention", "LlmCall", "SpanEvent", "read_span", "read_llm_call",
           "other_span", "first_of", "call_latency", "prefixed_properties", "USER_ID_ATTRIBUTES",
           "THREAD_ID_ATTRIBUTES", "PROPERTY_PREFIXES", "METADATA_JSON_ATTRIBUTES",
           "METADATA_USER_KEYS", "METADATA_THREAD_KEYS", "WEAK_THREAD_SCOPES",
           "WRAPPER_PROMPT_ATTRIBUTES", "wrapper_reply", "is_call_view"]

# --- Who and which conversation: read on every span, inherited down the trace -----------
# Precedence within one span follows Langfuse's OTel ingestion (langfuse.* first, then the
# OpenTelemetry names, then the libraries' own). A span's own value beats an ancestor's; an
# ancestor's beats a WEAK value of the span's own (see WEAK_THREAD_SCOPES).

USER_ID_ATTRIBUTES: tuple[str, ...] = (
    sc.LANGFUSE_USER_ID,
    sc.USER_ID,
    sc.ENDUSER_ID,
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.trace.metadata.langfuse_user_id",
    sc.AI_TELEMETRY_METADATA_PREFIX + "userId",
    sc.AI_TELEMETRY_METADATA_PREFIX + "user_id",
    sc.AI_SETTINGS_CONTEXT_PREFIX + "userId",
    sc.AI_SETTINGS_CONTEXT_PREFIX + "user_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "user_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "userId",
    sc.LLM_USER,
    "metadata.user_api_key_end_user_id",  # LiteLLM proxy: the end user of a virtual key
    "gen_ai.request.user",  # OpenLIT: the OpenAI ``user`` parameter
    "user_id",  # Logfire's baggage helper (``logfire.set_baggage(user_id=...)``)
    sc.TRUBRICS_INHERITED_USER_ID,
)
"""The first present is the event's ``user_id`` (``user_context`` stamps ``user.id``)."""

THREAD_ID_ATTRIBUTES: tuple[str, ...] = (
    sc.LANGFUSE_SESSION_ID,
    sc.SESSION_ID,
    sc.GEN_AI_CONVERSATION_ID,
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.trace.metadata.langfuse_session_id",
    sc.AI_TELEMETRY_METADATA_PREFIX + "sessionId",
    sc.AI_TELEMETRY_METADATA_PREFIX + "session_id",
    sc.AI_TELEMETRY_METADATA_PREFIX + "threadId",
    sc.AI_SETTINGS_CONTEXT_PREFIX + "sessionId",
    sc.AI_SETTINGS_CONTEXT_PREFIX + "session_id",
    sc.AI_SETTINGS_CONTEXT_PREFIX + "threadId",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "session_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "sessionId",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "thread_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "conversation_id",
    sc.TRACELOOP_ASSOCIATION_PREFIX + "chat_id",
    "session_id",  # Logfire's baggage helper
    "group_id",  # the OpenAI Agents SDK's RunConfig(group_id=), on Logfire's trace span
    sc.TRUBRICS_INHERITED_THREAD_ID,
)
"""The first present is the event's thread (``user_context`` stamps ``gen_ai.conversation.id``)."""

METADATA_JSON_ATTRIBUTES: tuple[str, ...] = (sc.OPENINFERENCE_METADATA,)
"""JSON objects that may name the user and thread under :data:`METADATA_USER_KEYS` /
:data:`METADATA_THREAD_KEYS` (OpenInference's ``using_metadata``, LangChain's
``config={"metadata": ...}``, pydantic-ai's ``metadata=``). Read after the attributes above.
Langfuse reads its own metadata only flattened (``langfuse.trace.metadata.langfuse_user_id``,
listed above), so its JSON form is not read either."""
METADATA_USER_KEYS: tuple[str, ...] = ("user_id", "userId", "langfuse_user_id")
METADATA_THREAD_KEYS: tuple[str, ...] = (
    "session_id", "sessionId", "thread_id", "threadId", "conversation_id", "langfuse_session_id",
)

WEAK_THREAD_SCOPES: tuple[str, ...] = ("pydantic-ai", "pydantic_ai")
"""Scopes whose ``gen_ai.conversation.id`` is a fresh id per run unless the app passed one
(pydantic-ai): the app's thread on any ancestor beats it; used only when there is none."""

WRAPPER_PROMPT_ATTRIBUTES: tuple[str, ...] = ("pydantic_ai.all_messages", "ai.prompt")
"""A framework wrapper's record of the conversation (pydantic-ai's agent run, the Vercel AI
SDK's ``ai.generateText``): the prompt of a model call below it that recorded none (a call
that failed before pydantic-ai wrote its messages)."""

PROPERTY_PREFIXES: tuple[str, ...] = (sc.TRACELOOP_ASSOCIATION_PREFIX,)
"""Attributes under these prefixes become properties, prefix removed."""


def first_of(attributes: Attributes, names: tuple[str, ...]) -> str | None:
    """The first value present, never one a scrubber blanked (Logfire's ``[Scrubbed due to …]``)
    nor a JSON ``null`` (Logfire writes an unset ``group_id`` so)."""
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "" and value != "null":
            if value.__class__ is str and value[:1] == "[" and value.startswith(logfire.SCRUBBED):
                continue
            return str(value)
    return None


def call_latency(span: ReadableSpan) -> float | None:
    """Seconds the call took: the span's duration, unless the span was written after the
    call and says how long it took (Logfire's stream log span)."""
    attributes = span.attributes or {}
    if "duration" in attributes:  # rare: one lookup for the others
        latency = logfire.stream_latency(attributes)
        if latency is not None:
            return latency
    if span.start_time is None or span.end_time is None:
        return None
    return (span.end_time - span.start_time) / 1e9


def prefixed_properties(attributes: Attributes) -> dict[str, Any]:
    """The attributes under :data:`PROPERTY_PREFIXES`, prefix removed (read on every event:
    which keys those are is found once per spelling of a span's keys)."""
    named = by_shape(_PREFIXED, PROPERTY_PREFIXES, tuple(attributes), _prefixed_keys)
    return {name: plain(attributes[key]) for key, name in named} if named else {}


def _prefixed_keys(keys: tuple[str, ...], prefixes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((key, key[len(prefix) :]) for prefix in prefixes for key in keys if key.startswith(prefix))


_PREFIXED: dict[tuple[str, ...], dict[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}



GENAI = genai.GENAI
GENAI_TOOL = genai.GENAI_TOOL
OPENLLMETRY_LEGACY = Convention("openllmetry-legacy", openllmetry.recognises_legacy, genai.read,
                                frozenset({sc.LLM_REQUEST_TYPE}))
OPENINFERENCE = openinference.OPENINFERENCE

def _vercel_read(span: ReadableSpan) -> LlmCall:
    """The ``ai.*`` attributes; if an exporter rewrote them into GenAI ones (Traceloop's JS SDK
    does), the GenAI reader on the same span."""
    call = vercel_ai.read(span)
    if call.prompt or call.generation:
        return call
    rewritten = genai.read(span)
    if not (rewritten.prompt or rewritten.generation):
        return call
    return LlmCall(rewritten.prompt, rewritten.generation, call.model or rewritten.model,
                   {**rewritten.properties, **call.properties})


VERCEL_AI = Convention("vercel-ai", vercel_ai.recognises, _vercel_read, vercel_ai.VERCEL_AI.needs)
VERCEL_AI_TOOL = vercel_ai.VERCEL_AI_TOOL

LITELLM = litellm.LITELLM
LITELLM_RAW = litellm.LITELLM_RAW

GOOGLE_ADK = google_adk.GOOGLE_ADK

LANGFUSE = langfuse.LANGFUSE
LANGFUSE_TOOL = langfuse.LANGFUSE_TOOL
MLFLOW = mlflow.MLFLOW
MLFLOW_TOOL = mlflow.MLFLOW_TOOL
LOGFIRE = logfire.LOGFIRE
LOGFIRE_TOOL = logfire.LOGFIRE_TOOL
STRANDS = strands.STRANDS
HAYSTACK = haystack.HAYSTACK
HAYSTACK_TOOL = haystack.HAYSTACK_TOOL
GENERIC = generic.GENERIC

CONVENTIONS: tuple[Convention, ...] = (
    GOOGLE_ADK, VERCEL_AI, VERCEL_AI_TOOL, LITELLM, LOGFIRE, LOGFIRE_TOOL, STRANDS, GENAI, GENAI_TOOL,
    LANGFUSE, LANGFUSE_TOOL, MLFLOW, MLFLOW_TOOL, OPENLLMETRY_LEGACY, OPENINFERENCE, LITELLM_RAW,
    HAYSTACK, HAYSTACK_TOOL, GENERIC,
)
"""Tried in order; the first convention that recognises a span reads it. The generic
reader is last: it only sees spans no row above knew."""
_NEEDED = frozenset().union(*(convention.needs or () for convention in CONVENTIONS))
_ROWS: dict[frozenset[str], tuple[Convention, ...]] = {}
"""The rows a span may be, by which of the ``needs`` attributes it has: few combinations."""


is_call_view = litellm.is_raw_request
"""``is_call_view(span)``: a per-call child that repeats its parent's call (LiteLLM's
``raw_gen_ai_request``). A parent with two or more of them carries several calls' mixed
attributes: not an event. (The function itself, not a call to it: asked of every span.)"""


def wrapper_reply(attributes: Attributes) -> LlmCall | None:
    """The reply a framework's span recorded for the one model call below it, for a call
    whose own span left it out (LangGraph's ``execute_task model`` through OpenLLMetry)."""
    if attributes.get("traceloop.span.kind") != "task":
        return None
    return openllmetry.task_reply(attributes)


def read_span(span: ReadableSpan) -> LlmCall | SpanEvent | None:
    """What the first row that recognises the span reads, its properties marked with the
    row's name (``$source``) so a team can see how its telemetry was understood; not on the
    spans trubrics-otel wrote itself."""
    attributes = span.attributes or {}
    present = _NEEDED.intersection(attributes)  # one pass over the span's keys, in C
    rows = _ROWS.get(present)
    if rows is None:
        if len(_ROWS) > 1024:  # spans of many libraries mixed: start again
            _ROWS.clear()
        rows = _ROWS[present] = tuple(convention for convention in CONVENTIONS
                                      if convention.needs is None or not convention.needs.isdisjoint(present))
    for convention in rows:
        if convention.recognises(attributes):
            found = convention.read(span)
            scope = span.instrumentation_scope
            if found is not None and (scope is None or scope.name != sc.SCOPE_NAME):
                found.properties[sc.PROP_SOURCE] = convention.name
            return found
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
