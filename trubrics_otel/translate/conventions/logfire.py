"""Logfire's ``instrument_openai`` and ``instrument_openai_agents``: GenAI attributes, and more.

Read by the GenAI row, plus what only Logfire writes::

    request_data = {"model", "messages", ...}    version=1: the prompt is only here (JSON)
    response_data = {"message": {...}, "usage"}  version=1: the reply is only here
    logfire.span_type = "log", duration = 0.016  a stream's output, tokens and length, on a
                                                 zero-duration span written after the stream
    events = [{"role": "user", ...}, ...]        OpenAI Agents, Responses API: the conversation,
                                                 then the reply (the trailing assistant ones)
    output = [{"role": "assistant", ...}]        OpenAI Agents, chat completions: the reply
    usage = {"input_tokens_details": ...}        OpenAI Agents: the call's usage, cache included
    `Function: {name}` span (name, input, output) OpenAI Agents: a tool run (LOGFIRE_TOOL)

A stream is two spans: the request span ends before the first chunk, with no output, usage or
response id (:func:`is_stream_request`: not an event); the log span carries the rest and is the
event, its latency its ``duration`` (:func:`stream_latency`).
Logfire's baggage helper writes plain ``user_id`` / ``session_id`` attributes, read with the
other identity attributes; its scrubbing's ``[Scrubbed due to '…']`` never counts as a value.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import genai
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall, tool_event
from trubrics_otel.translate.conventions.generic import parsed, prompt_text, reply_text, usage_of

REQUEST_DATA = "request_data"
EVENTS = "events"
SCRUBBED = "[Scrubbed due to "
MSG_TEMPLATE = "logfire.msg_template"
TOOL_TEMPLATE = "Function: {name}"


def recognises(attributes: Attributes) -> bool:
    return (REQUEST_DATA in attributes or EVENTS in attributes) and genai.recognises(attributes)


def read(span: ReadableSpan) -> LlmCall | None:
    if is_stream_request(span):
        return None
    call = genai.read(span)
    attributes = span.attributes or {}
    usage = _json(attributes, "usage")  # OpenAI Agents: one call's (``requests`` 1)
    if isinstance(usage, dict) and usage.get("requests", 1) == 1:
        call.properties.update(usage_of(usage, call.properties.get(sc.PROP_PROVIDER)))
    if call.prompt and call.generation:
        return call
    events = _json(attributes, EVENTS)
    return call._replace(
        prompt=call.prompt or prompt_text(_json(attributes, REQUEST_DATA)) or prompt_text(events),
        generation=call.generation or reply_text(_json(attributes, "response_data"))
        or reply_text(_json(attributes, "output")) or reply_text(_trailing_replies(events)),
    )


def _json(attributes: Attributes, key: str) -> object:
    """An attribute Logfire wrote as JSON, parsed; its ``null`` (a failed call's output) is None."""
    value = parsed(attributes.get(key))
    return None if value == "null" else value


def _trailing_replies(events: object) -> list[object]:
    """The reply in a list of message events that ends with it: its last assistant messages."""
    if not isinstance(events, list):
        return []
    start = len(events)
    while start and isinstance(events[start - 1], dict) and events[start - 1].get("role") == "assistant":
        start -= 1
    return events[start:]


def is_stream_request(span: ReadableSpan) -> bool:
    """The request span of a stream: it ended before the first chunk, so it holds no reply,
    usage or response id (a call that answered has them; one that failed has its error)."""
    attributes = span.attributes or {}
    return (attributes.get("logfire.span_type") == "span"
            and span.status.status_code is not StatusCode.ERROR
            and not _ANSWERED.intersection(attributes))


_ANSWERED = frozenset({sc.GEN_AI_RESPONSE_ID, sc.GEN_AI_OUTPUT_MESSAGES, "response_data",
                       sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_RESPONSE_FINISH_REASONS, "output"})

LOGFIRE = Convention("logfire", recognises, read, frozenset({REQUEST_DATA, EVENTS}))
LOGFIRE_TOOL = Convention(
    "logfire-tool", lambda attributes: attributes.get(MSG_TEMPLATE) == TOOL_TEMPLATE,
    lambda span: tool_event(str((span.attributes or {}).get("name") or span.name)),
    frozenset({MSG_TEMPLATE}))


def stream_latency(attributes: Attributes) -> float | None:
    """Seconds a streamed call took, from the log span Logfire writes at its end."""
    if attributes.get("logfire.span_type") != "log":
        return None
    duration = attributes.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
        return float(duration)
    return None
