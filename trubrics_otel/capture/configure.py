"""``configure``: send an app's existing OpenTelemetry spans to Trubrics, in one call.

::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from trubrics_otel import configure, user_context

    provider = TracerProvider()
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    configure(tracer_provider=provider, api_key="...")

    with user_context(user_id="u1", thread_id="t-42"):
        client.chat.completions.create(...)   # → one Trubrics LLM event for u1 in t-42

It adds two span processors to the provider: :class:`UserContextSpanProcessor` (stamps the
user context at span start) and a :class:`~trubrics_otel.deliver.processor.SpoolingSpanProcessor`
(batching as the SDK's ``BatchSpanProcessor`` does, overflow spooled instead of dropped) around a
:class:`TrubricsSpanExporter`. It never creates or replaces the global provider: without
``tracer_provider`` it uses the global one only if the app already installed an SDK
``TracerProvider`` there, and refuses otherwise.

Under ``opentelemetry-instrument`` with ``OTEL_TRACES_EXPORTER=trubrics`` the exporter is
already installed; add only the stamping processor there::

    trace.get_tracer_provider().add_span_processor(UserContextSpanProcessor())
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from trubrics_otel import settings
from trubrics_otel.capture.context import UserContextSpanProcessor
from trubrics_otel.deliver.exporter import TrubricsSpanExporter
from trubrics_otel.deliver.processor import SpoolingSpanProcessor
from trubrics_otel.translate.genai_logs import GenAIContentJoiner

DEFAULT_SCHEDULE_DELAY_S = 5.0

_CONFIGURED: weakref.WeakKeyDictionary[TracerProvider, TrubricsSpanExporter] = (
    weakref.WeakKeyDictionary()
)


def configure(
    tracer_provider: TracerProvider | None = None,
    api_key: str | None = None,
    host: str | None = None,
    *,
    logger_provider: LoggerProvider | None = None,
    schedule_delay_millis: float | None = None,
    sample_rate: float | None = None,
    **exporter_options: Any,
) -> TrubricsSpanExporter:
    """Add user-context stamping and Trubrics export to ``tracer_provider``.

    ``logger_provider``: the SDK ``LoggerProvider`` the GenAI instrumentation logs message
    content to (``..._CAPTURE_MESSAGE_CONTENT=event_only``); that content is joined back
    onto its span. ``exporter_options`` go to :class:`TrubricsSpanExporter` (``timeout``,
    ``retry_timeout``, ``all_spans``…); ``schedule_delay_millis`` to the
    batch processor (default: ``OTEL_BSP_SCHEDULE_DELAY``, else 5 s). Returns the
    exporter, for its ``stats()``.

    ``sample_rate`` keeps that share of the instrumentation's traces, whole (decided by trace
    id; default: ``OTEL_TRACES_SAMPLER``/``_ARG`` when set, else everything). Events from our
    own ``Trubrics`` client and tracing API are never sampled away here.
    """
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        raise TypeError(
            "configure() needs an OpenTelemetry SDK TracerProvider: pass tracer_provider=, "
            f"or install one globally first (the global provider is {type(provider).__name__})."
        )
    if provider in _CONFIGURED:  # a second exporter would send every event twice
        logging.getLogger("trubrics").warning(
            "configure() was already called for this TracerProvider; keeping the first setup."
        )
        return _CONFIGURED[provider]
    exporter = TrubricsSpanExporter(
        api_key=api_key, host=host, sample_rate=sample_rate, **exporter_options
    )
    _CONFIGURED[provider] = exporter
    export: SpanProcessor = SpoolingSpanProcessor(
        exporter,
        max_queue_size=settings.read(settings.MAX_QUEUE_SIZE),
        schedule_delay=(schedule_delay_millis / 1000 if schedule_delay_millis
                        else settings.read(settings.SCHEDULE_DELAY) or DEFAULT_SCHEDULE_DELAY_S),
        max_export_batch_size=512,
    )
    if logger_provider is not None:
        joiner = GenAIContentJoiner()
        logger_provider.add_log_record_processor(joiner)
        export = joiner.wrap(export)
    provider.add_span_processor(UserContextSpanProcessor())
    provider.add_span_processor(export)
    return exporter
