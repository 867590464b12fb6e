"""Recorded spans (``tests/fixtures/spans/<library>/<case>.json``) back into ``ReadableSpan``.

The fixtures were written by ``tests/instrumented_app.py --dump`` from real instrumentation
libraries, so rule-table tests run on what those libraries really emit, without them.
Log records in a fixture are replayed through :class:`GenAIContentJoiner` first, as
``configure(logger_provider=...)`` would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from trubrics_otel.translate.genai_logs import GenAIContentJoiner

FIXTURES = Path(__file__).parent / "fixtures" / "spans"


def load(library: str, case: str) -> list[ReadableSpan]:
    data = json.loads((FIXTURES / library / f"{case}.json").read_text())
    spans = [to_span(s) for s in data["spans"]]
    if not data.get("logs"):
        return spans
    joiner = GenAIContentJoiner()
    for log in data["logs"]:
        joiner.on_emit(to_log_record(log))
    return [joiner.join(s) for s in spans]


def to_span(s: dict[str, Any]) -> ReadableSpan:
    def context(span_id: str) -> SpanContext:
        return SpanContext(
            int(s["trace_id"], 16),
            int(span_id, 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )

    return ReadableSpan(
        name=s["name"],
        context=context(s["span_id"]),
        parent=context(s["parent_span_id"]) if s.get("parent_span_id") else None,
        attributes={k: tuple(v) if isinstance(v, list) else v for k, v in s["attributes"].items()},
        events=[
            Event(e["name"], e.get("attributes") or {}, e.get("timestamp")) for e in s["events"]
        ],
        kind=SpanKind[s["kind"]],
        status=Status(StatusCode[s["status"]["code"]], s["status"].get("description")),
        start_time=s["start_time"],
        end_time=s["end_time"],
        resource=Resource(s.get("resource") or {}),
        instrumentation_scope=InstrumentationScope(s["scope"]) if s.get("scope") else None,
    )


def to_log_record(log: dict[str, Any]) -> LogRecord:
    record = LogRecord(
        attributes=log["attributes"], body=log.get("body"), event_name=log.get("event_name")
    )
    record.trace_id = int(log["trace_id"], 16) if log["trace_id"] else 0  # some carry none
    record.span_id = int(log["span_id"], 16) if log["span_id"] else 0
    return record
