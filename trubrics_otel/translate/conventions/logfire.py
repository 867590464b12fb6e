"""Logfire's ``instrument_openai`` (scope ``logfire.openai``): GenAI attributes, and more.

Read by the GenAI row, plus what only Logfire writes::

    request_data = {"model", "messages", ...}    version=1: the prompt is only here (JSON)
    response_data = {"message": {...}, "usage"}  version=1: the reply is only here
    logfire.span_type = "log", duration = 0.016  a stream's output, tokens and length, on a
                                                 zero-duration span written after the stream

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
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall
from trubrics_otel.translate.conventions.generic import parsed, prompt_text, reply_text

REQUEST_DATA = "request_data"
SCRUBBED = "[Scrubbed due to "


def recognises(attributes: Attributes) -> bool:
    return REQUEST_DATA in attributes and genai.recognises(attributes)


def read(span: ReadableSpan) -> LlmCall | None:
    if is_stream_request(span):
        return None
    call = genai.read(span)
    if call.prompt and call.generation:
        return call
    attributes = span.attributes or {}
    return call._replace(
        prompt=call.prompt or prompt_text(parsed(attributes.get(REQUEST_DATA))),
        generation=call.generation or reply_text(parsed(attributes.get("response_data"))),
    )


def is_stream_request(span: ReadableSpan) -> bool:
    """The request span of a stream: it ended before the first chunk, so it holds no reply,
    usage or response id (a call that answered has them; one that failed has its error)."""
    attributes = span.attributes or {}
    return (attributes.get("logfire.span_type") == "span"
            and span.status.status_code is not StatusCode.ERROR
            and not _ANSWERED.intersection(attributes))


_ANSWERED = frozenset({sc.GEN_AI_RESPONSE_ID, sc.GEN_AI_OUTPUT_MESSAGES, "response_data",
                       sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_RESPONSE_FINISH_REASONS})

LOGFIRE = Convention("logfire", recognises, read, frozenset({REQUEST_DATA}))


def stream_latency(attributes: Attributes) -> float | None:
    """Seconds a streamed call took, from the log span Logfire writes at its end."""
    if attributes.get("logfire.span_type") != "log":
        return None
    duration = attributes.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
        return float(duration)
    return None
