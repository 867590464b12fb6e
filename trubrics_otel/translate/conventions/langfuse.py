"""The Langfuse SDK (v3 and later, built on OpenTelemetry): ``langfuse.observation.*``.

A model call is an observation of type ``generation`` (its ``langfuse.openai`` drop-in, or
``@observe(as_type="generation")``)::

    langfuse.observation.type = "generation"
    langfuse.observation.input / .output        JSON: messages, a message, text, or @observe's
                                                {"args": [...], "kwargs": {...}}
    langfuse.observation.model.name             the model
    langfuse.observation.usage_details          JSON, OpenAI keys or Langfuse's input / output
    langfuse.observation.cost_details           JSON, USD: total, else the sum of the parts
    langfuse.observation.completion_start_time  ISO time of the first streamed chunk
    langfuse.observation.level = ERROR          + .status_message: a failure (status may be UNSET)

An observation of type ``tool`` is a tool event named after the observation. Users and
sessions come as ``user.id`` / ``session.id`` (``propagate_attributes``), read with the others.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    UNKNOWN_ERROR_TYPE,
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    tool_event,
)
from trubrics_otel.translate.conventions.generic import parsed, prompt_text, reply_text, usage_of
from trubrics_otel.translate.messages import text_or_none

TYPE = "langfuse.observation.type"
_PREFIX = "langfuse.observation."


def recognises(attributes: Attributes) -> bool:
    return attributes.get(TYPE) == "generation"


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    properties = usage_of(attributes.get(_PREFIX + "usage_details"))
    cost = cost_usd(attributes.get(_PREFIX + "cost_details"))
    if cost is not None and (cost or properties):
        properties[sc.PROP_COST_USD] = cost
    first_chunk = _iso_ns(attributes.get(_PREFIX + "completion_start_time"))
    if first_chunk is not None and span.start_time is not None:
        properties[sc.PROP_TIME_TO_FIRST_TOKEN] = max(0, first_chunk - span.start_time) / 1e9
    finish = attributes.get(_PREFIX + "metadata.finish_reason")
    if finish:
        properties[sc.PROP_FINISH_REASON] = finish
    if attributes.get(_PREFIX + "level") == "ERROR" and span.status.status_code is not StatusCode.ERROR:
        properties[sc.PROP_ERROR_TYPE] = UNKNOWN_ERROR_TYPE
        properties[sc.PROP_ERROR_MESSAGE] = str(attributes.get(_PREFIX + "status_message") or "")
    return LlmCall(
        prompt=prompt_text(parsed(attributes.get(_PREFIX + "input"))),
        generation=reply_text(parsed(attributes.get(_PREFIX + "output"))),
        model=text_or_none(attributes.get(_PREFIX + "model.name")),
        properties=properties,
    )


def cost_usd(details: Any) -> float | None:
    """``cost_details`` in USD: its ``total``, else the sum of its parts."""
    details = parsed(details)
    if not isinstance(details, dict):
        return None
    total = details.get("total")
    parts = [v for v in details.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        return float(total)
    return float(sum(parts)) if parts else None


def _iso_ns(text: Any) -> int | None:
    """Nanoseconds since the epoch of an ISO time (Langfuse writes ``"...Z"``)."""
    if not isinstance(text, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.strip().strip('"').replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


LANGFUSE = Convention("langfuse", recognises, read, frozenset({TYPE}))


def _tool_recognises(attributes: Attributes) -> bool:
    return attributes.get(TYPE) == "tool"


def _tool_read(span: ReadableSpan) -> SpanEvent:
    return tool_event(span.name)


LANGFUSE_TOOL = Convention("langfuse-tool", _tool_recognises, _tool_read, frozenset({TYPE}))
