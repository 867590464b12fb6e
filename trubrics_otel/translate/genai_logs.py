"""Join GenAI message content that arrives as log records back onto its span.

With ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=event_only`` the official GenAI
instrumentation keeps the prompt and reply off the span and emits them as the log record
``gen_ai.client.inference.operation.details``; older releases emitted one log record per
message (``gen_ai.user.message``, ``gen_ai.choice``…). Each record carries its span's ids
and is emitted *before* the span ends, so the join is local and exact::

    joiner = GenAIContentJoiner()
    logger_provider.add_log_record_processor(joiner)
    tracer_provider.add_span_processor(joiner.wrap(BatchSpanProcessor(TrubricsSpanExporter())))

:func:`trubrics_otel.capture.configure` does this when given ``logger_provider=``. The wrapped
processor sees each ended span with the content added as ``gen_ai.input.messages`` /
``gen_ai.output.messages`` (the span's own attributes win), so the rule table reads one
form only; a details record's ``user.id`` (Google ADK writes its Runner's user only there)
joins too. Content waits at most for ``max_spans`` spans; a record whose span never ends
here is dropped oldest first.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.genai import messages_from_events

_logger = logging.getLogger("trubrics")
_CONTENT_EVENTS = frozenset(
    {sc.GEN_AI_DETAILS_EVENT, sc.GEN_AI_CHOICE_EVENT, *sc.GEN_AI_MESSAGE_EVENTS}
)

SpanKey = tuple[int, int]


class GenAIContentJoiner(LogRecordProcessor):
    def __init__(self, max_spans: int = 10_000) -> None:
        self._max_spans = max_spans
        self._pending: collections.OrderedDict[SpanKey, list[tuple[str, Mapping[str, Any]]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    # --- LogRecordProcessor --------------------------------------------------------------

    def on_emit(self, log_record: Any) -> None:
        try:
            record = getattr(log_record, "log_record", log_record)  # SDK >= 1.35 / older LogData
            attributes = dict(record.attributes or {})
            name = getattr(record, "event_name", None) or attributes.get("event.name")
            if name not in _CONTENT_EVENTS or not record.trace_id or not record.span_id:
                return
            body = record.body if isinstance(record.body, Mapping) else {}
            content = attributes if name == sc.GEN_AI_DETAILS_EVENT else {**attributes, **body}
            key = (record.trace_id, record.span_id)
            with self._lock:
                if name == sc.GEN_AI_CHOICE_EVENT and key not in self._pending:
                    key = self._replied(key)
                self._pending.setdefault(key, []).append((name, content))
                while len(self._pending) > self._max_spans:
                    self._pending.popitem(last=False)
        except Exception:
            _logger.exception("Could not read a GenAI content log record; its content is lost.")

    def _replied(self, key: SpanKey) -> SpanKey:
        """The span a reply record belongs to. OpenLLMetry emits a stream's ``gen_ai.choice``
        while the app's span is current, not the call's (the stream is read outside it): a
        reply on a span with no request of its own is that of the one span of the trace whose
        request is waiting without a reply; with several (calls at once), of none. (Under the
        lock; only for such replies, rare.)"""
        waiting = [pending for pending, records in self._pending.items() if pending[0] == key[0]
                   and all(name != sc.GEN_AI_CHOICE_EVENT for name, _ in records)]
        return waiting[0] if len(waiting) == 1 else key

    def shutdown(self) -> None:
        with self._lock:
            self._pending.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    # --- the span side -------------------------------------------------------------------

    def wrap(self, processor: SpanProcessor) -> SpanProcessor:
        """``processor`` seeing every ended span with its logged content joined on."""
        return _Joining(self, processor)

    def join(self, span: ReadableSpan) -> ReadableSpan:
        context = span.context
        if context is None:
            return span
        with self._lock:
            records = self._pending.pop((context.trace_id, context.span_id), None)
        if not records:
            return span
        extra = _content_attributes(records)
        if not extra:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={**extra, **(span.attributes or {})},
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )


def _content_attributes(records: list[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    inputs: list[Any] = []
    outputs: list[Any] = []
    who: dict[str, str] = {}
    for name, content in records:
        if name == sc.GEN_AI_DETAILS_EVENT:
            inputs.extend(_list(content.get(sc.GEN_AI_INPUT_MESSAGES)))
            outputs.extend(_list(content.get(sc.GEN_AI_OUTPUT_MESSAGES)))
            user = content.get(sc.USER_ID)  # Google ADK puts its Runner's user only here
            if isinstance(user, str) and user:
                who[sc.USER_ID] = user
    older_inputs, older_outputs = messages_from_events(
        (name, content) for name, content in records if name != sc.GEN_AI_DETAILS_EVENT
    )
    inputs.extend(older_inputs)
    outputs.extend(older_outputs)
    extra = dict(who)
    if inputs:
        extra[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(inputs, default=str)
    if outputs:
        extra[sc.GEN_AI_OUTPUT_MESSAGES] = json.dumps(outputs, default=str)
    return extra


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else []


def _plain(value: Any) -> Any:
    """Log attribute values (mappings, tuples) → JSON-ready values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Joining(SpanProcessor):
    def __init__(self, joiner: GenAIContentJoiner, inner: SpanProcessor) -> None:
        self._joiner = joiner
        self._inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span = self._joiner.join(span)
        except Exception:
            _logger.exception("Could not join logged GenAI content onto span %r.", span.name)
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
