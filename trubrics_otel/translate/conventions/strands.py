"""Strands Agents' own tracing (scope ``strands.telemetry.tracer``): the GenAI row, corrected.

Strands writes the GenAI convention with three differences::

    gen_ai.system / gen_ai.provider.name = "strands-agents"   the framework, not the provider
    gen_ai.server.time_to_first_token = 565                   milliseconds, not seconds
    content in span events                                    block JSON by default; the latest
                                                              convention's details events with
                                                              OTEL_SEMCONV_STABILITY_OPT_IN

(the events are read by :func:`~trubrics_otel.translate.conventions.genai.messages_from_events`).
Its ``invoke_agent`` and ``execute_event_loop_cycle`` spans are wrappers: no row reads them.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import genai
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall

FRAMEWORK = "strands-agents"


def recognises(attributes: Attributes) -> bool:
    return (attributes.get(sc.GEN_AI_SYSTEM) == FRAMEWORK
            or attributes.get(sc.GEN_AI_PROVIDER_NAME) == FRAMEWORK) and genai.recognises(attributes)


def read(span: ReadableSpan) -> LlmCall:
    call = genai.read(span)
    properties = call.properties
    if properties.get(sc.PROP_PROVIDER) == FRAMEWORK:
        del properties[sc.PROP_PROVIDER]
    first_token = properties.get(sc.PROP_TIME_TO_FIRST_TOKEN)
    if first_token is not None:
        properties[sc.PROP_TIME_TO_FIRST_TOKEN] = first_token / 1000
    return call


STRANDS = Convention("strands-agents", recognises, read, frozenset({sc.GEN_AI_SYSTEM, sc.GEN_AI_PROVIDER_NAME}))
