"""Every span attribute name trubrics-otel reads or writes, in one place.

OpenTelemetry semantic conventions are used where they exist (GenAI, user, session,
error); ``trubrics.*`` names cover what no convention does. Names of third-party
conventions (OpenLLMetry, OpenInference, older GenAI forms) live here too, so the rule
table in :mod:`trubrics_otel.translate.conventions` only ever refers to constants.
"""

from __future__ import annotations

from typing import Final

SCOPE_NAME: Final = "trubrics_otel"
"""Instrumentation scope of every span trubrics-otel records itself (never sampled away)."""

# --- Trubrics (no OpenTelemetry convention covers these) ------------------------------
TRUBRICS_EVENT: Final = "trubrics.event"
"""Name of a product event recorded by ``Trubrics.track``; its presence marks the span."""
TRUBRICS_PROPERTIES: Final = "trubrics.properties"
"""The event's properties as one JSON object string (OTel attributes cannot nest)."""
TRUBRICS_PROMPT_EVENT_NAME: Final = "trubrics.prompt_event_name"
TRUBRICS_GENERATION_EVENT_NAME: Final = "trubrics.generation_event_name"
TRUBRICS_LATENCY_UNKNOWN: Final = "trubrics.latency_unknown"
"""True when ``track_llm`` was given no latency: the span's duration is not a latency."""
TRUBRICS_CONTEXT_PROPERTIES: Final = "trubrics.context.properties"
"""JSON object of properties stamped from ``user_context``; the event's own win on clashes."""
TRUBRICS_OBSERVATION_TYPE: Final = "trubrics.observation.type"
"""``trace`` | ``span`` | ``generation`` | ``event`` | ``score``: written by :mod:`~trubrics_otel.capture.tracing`."""

# --- Users and conversations ------------------------------------------------------------
USER_ID: Final = "user.id"
ENDUSER_ID: Final = "enduser.id"  # deprecated in semconv, still emitted in the field
SESSION_ID: Final = "session.id"

# --- OpenTelemetry GenAI semantic conventions -------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM: Final = "gen_ai.system"  # older form of gen_ai.provider.name
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_TOTAL_TOKENS: Final = "gen_ai.usage.total_tokens"  # OpenLLMetry
GEN_AI_REQUEST_PREFIX: Final = "gen_ai.request."
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"

# Older GenAI forms, still emitted in the field
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_CONTENT_PROMPT_EVENT: Final = "gen_ai.content.prompt"  # span event, attribute gen_ai.prompt
GEN_AI_CONTENT_COMPLETION_EVENT: Final = "gen_ai.content.completion"  # attribute gen_ai.completion
GEN_AI_PROMPT: Final = "gen_ai.prompt"
GEN_AI_COMPLETION: Final = "gen_ai.completion"
GEN_AI_MESSAGE_EVENTS: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""Per-message events (span events or log records) → the message's role."""
GEN_AI_CHOICE_EVENT: Final = "gen_ai.choice"
GEN_AI_EVENT_CONTENT: Final = "gen_ai.event.content"  # JSON body of an event flattened onto a span event
GEN_AI_DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"
"""The log record carrying a call's messages when content goes to events only."""

# --- OpenLLMetry (Traceloop) -------------------------------------------------------------
LLM_REQUEST_TYPE: Final = "llm.request.type"
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
GEN_AI_PROMPT_PREFIX: Final = "gen_ai.prompt."  # gen_ai.prompt.{i}.role / .content
GEN_AI_COMPLETION_PREFIX: Final = "gen_ai.completion."  # gen_ai.completion.{i}.content / ...
TRACELOOP_ASSOCIATION_PREFIX: Final = "traceloop.association.properties."

# --- OpenInference (Arize) ---------------------------------------------------------------
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_LLM: Final = "LLM"
LLM_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages."
LLM_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages."
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_SYSTEM: Final = "llm.system"
LLM_PROVIDER: Final = "llm.provider"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
LLM_FINISH_REASON: Final = "llm.finish_reason"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"

OPERATION_CHAT: Final = "chat"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"

# --- Errors -------------------------------------------------------------------------------
ERROR_TYPE: Final = "error.type"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

# --- Properties trubrics-otel adds to every event it sends ------------------------------
PROP_TRACE_ID: Final = "$trace_id"
PROP_SPAN_ID: Final = "$span_id"
"""With ``$trace_id``, identifies the event: a retried batch carries the same pair."""
PROP_PARENT_SPAN_ID: Final = "$parent_span_id"
PROP_THREAD_ID: Final = "$thread_id"
PROP_ASSISTANT_ID: Final = "$assistant_id"
PROP_TEXT: Final = "$text"
PROP_RESPONSE_ID: Final = "$response_id"
"""A reader's find of the provider's reply id where no attribute holds it: read by
:func:`trubrics_otel.translate.duplicates.signature` (which takes it out), never sent."""

# --- Normalised property names the rule table writes, whatever the source convention -----
PROP_INPUT_TOKENS: Final = "input_tokens"
PROP_OUTPUT_TOKENS: Final = "output_tokens"
PROP_TOTAL_TOKENS: Final = "total_tokens"
PROP_PROVIDER: Final = "provider"
PROP_FINISH_REASON: Final = "finish_reason"
PROP_REQUEST_MODEL: Final = "request_model"
PROP_ERROR_TYPE: Final = "error.type"
PROP_ERROR_MESSAGE: Final = "error.message"
PROP_SOURCE: Final = "$source"
"""Which row of the convention table read the event (``opentelemetry-genai``, ``generic``…)."""
PROP_TOOL_NAME: Final = "tool_name"
PROP_TOOL_CALL_ID: Final = "tool_call_id"
PROP_SPAN_KIND: Final = "span_kind"
PROP_DURATION: Final = "duration"

# --- Properties of tracing observations (see trubrics_otel.capture.tracing) -----------------------
PROP_OBSERVATION_TYPE: Final = "observation_type"
PROP_DURATION: Final = "duration"
"""Seconds between a trace's or span's start and end."""
PROP_INPUT: Final = "input"
PROP_OUTPUT: Final = "output"
PROP_NAME: Final = "name"
PROP_SCORE_VALUE: Final = "value"
PROP_SCORE_TRACE_ID: Final = "trace_id"
PROP_SCORE_OBSERVATION_ID: Final = "observation_id"
PROP_SCORE_COMMENT: Final = "comment"

ANONYMOUS_USER_ID: Final = "anonymous"
"""``user_id`` of an event whose span carries no user anywhere."""

# --- Usage details and cost (see trubrics_otel.translate.usage / .cost) --------------------
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"  # OpenLIT: total USD of the call
GEN_AI_COST_TOTAL: Final = "gen_ai.cost.total_cost"  # LiteLLM's OTel callback
LLM_COST_TOTAL: Final = "llm.cost.total"  # OpenInference (and LiteLLM's Arize callback)
LLM_COST_PROMPT: Final = "llm.cost.prompt"  # OpenInference
LLM_COST_COMPLETION: Final = "llm.cost.completion"  # OpenInference
LLM_RESPONSE_COST: Final = "llm.response.cost"  # LiteLLM, legacy
OPERATION_COST: Final = "operation.cost"  # pydantic-ai (genai-prices), USD
PROP_CACHE_READ_INPUT_TOKENS: Final = "cache_read_input_tokens"
"""Input tokens served from the provider's cache; part of ``input_tokens``."""
PROP_CACHE_CREATION_INPUT_TOKENS: Final = "cache_creation_input_tokens"
"""Input tokens written to the provider's cache; part of ``input_tokens``."""
PROP_REASONING_TOKENS: Final = "reasoning_tokens"
"""Reasoning ("thinking") tokens; part of ``output_tokens``."""
PROP_COST_USD: Final = "cost_usd"
PROP_INPUT_COST_USD: Final = "input_cost_usd"
PROP_OUTPUT_COST_USD: Final = "output_cost_usd"
PROP_COST_SOURCE: Final = "cost_source"
"""Which table priced the event (``genai-prices 0.2.3``), ``custom``, or ``span``."""

# --- Identity inherited from ancestor spans (see trubrics_otel.translate.traces) -----------
TRUBRICS_INHERITED_USER_ID: Final = "trubrics.inherited.user_id"
"""The user an ancestor span named, stamped at span start by ``UserContextSpanProcessor``."""
TRUBRICS_INHERITED_THREAD_ID: Final = "trubrics.inherited.thread_id"
TRUBRICS_INHERITED_WEAK_THREAD_ID: Final = "trubrics.inherited.weak_thread_id"
"""An ancestor's thread that any explicit thread beats (pydantic-ai's per-run id)."""
LANGFUSE_USER_ID: Final = "langfuse.user.id"
LANGFUSE_SESSION_ID: Final = "langfuse.session.id"
AI_TELEMETRY_METADATA_PREFIX: Final = "ai.telemetry.metadata."  # Vercel AI SDK
AI_SETTINGS_CONTEXT_PREFIX: Final = "ai.settings.context."  # AI SDK 7: included runtimeContext
OPENINFERENCE_METADATA: Final = "metadata"  # JSON object (OpenInference, pydantic-ai agent runs)
LLM_USER: Final = "llm.user"  # LiteLLM: the OpenAI ``user`` parameter
PROP_TIME_TO_FIRST_TOKEN: Final = "time_to_first_token"
"""Seconds from the request to the first streamed token; only where the span measured it."""
