"""MLflow tracing (``mlflow.openai.autolog()`` and ``@mlflow.trace``) in its default format.

Every ``mlflow.*`` value is JSON text (a string arrives quoted)::

    mlflow.spanType = "CHAT_MODEL" (or "LLM")    a model call; "TOOL": a tool run
    mlflow.spanInputs / mlflow.spanOutputs       the request ({"messages": ...}) / the response
    mlflow.chat.tokenUsage                       {"input_tokens", "output_tokens", ...}
    mlflow.llm.model                             the response model; else the raw ``model``
    mlflow.chunk.item.N events                   a stream's chunks: the first is the first token

A failure has an empty status description and the error only in its exception event (the
encoder reads it there). With ``MLFLOW_ENABLE_OTEL_GENAI_SEMCONV=true`` MLflow writes
``gen_ai.*`` instead, read by the GenAI row.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import (
    Attributes,
    Convention,
    LlmCall,
    SpanEvent,
    tool_event,
)
from trubrics_otel.translate.conventions.generic import parsed, prompt_text, reply_text, usage_of
from trubrics_otel.translate.messages import text_or_none

SPAN_TYPE = "mlflow.spanType"
_CALLS = frozenset({'"CHAT_MODEL"', '"LLM"', "CHAT_MODEL", "LLM"})
_TOOLS = frozenset({'"TOOL"', "TOOL"})
_FIRST_CHUNK = "mlflow.chunk.item.0"


def recognises(attributes: Attributes) -> bool:
    return attributes.get(SPAN_TYPE) in _CALLS


def read(span: ReadableSpan) -> LlmCall:
    attributes = span.attributes or {}
    inputs = parsed(attributes.get("mlflow.spanInputs"))
    properties = usage_of(attributes.get("mlflow.chat.tokenUsage"))
    if span.start_time is not None:
        for event in span.events:
            if event.name == _FIRST_CHUNK and event.timestamp is not None:
                properties[sc.PROP_TIME_TO_FIRST_TOKEN] = max(0, event.timestamp - span.start_time) / 1e9
                break
    model = (text_or_none(parsed(attributes.get("mlflow.llm.model")))
             or text_or_none(parsed(attributes.get("model")))
             or (text_or_none(inputs.get("model")) if isinstance(inputs, Mapping) else None))
    return LlmCall(
        prompt=prompt_text(inputs),
        generation=reply_text(parsed(attributes.get("mlflow.spanOutputs"))),
        model=model,
        properties=properties,
    )


MLFLOW = Convention("mlflow", recognises, read, frozenset({SPAN_TYPE}))


def _tool_recognises(attributes: Attributes) -> bool:
    return attributes.get(SPAN_TYPE) in _TOOLS


def _tool_read(span: ReadableSpan) -> SpanEvent:
    attributes = span.attributes or {}
    return tool_event(text_or_none(parsed(attributes.get("mlflow.spanFunctionName"))) or span.name)


MLFLOW_TOOL = Convention("mlflow-tool", _tool_recognises, _tool_read, frozenset({SPAN_TYPE}))
