"""Issue 29's sources beyond what their fixtures' ``expected`` blocks compare: latency of a
Logfire stream, a Langfuse error on an UNSET status, OpenLIT's user, tool names."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext
from span_fixtures import FIXTURES, load

from trubrics_otel.translate.encoder import encode_spans


def span(attributes: dict[str, Any], name: str = "call", span_id: int = 5) -> ReadableSpan:
    return ReadableSpan(name=name, context=SpanContext(0xBEE, span_id, is_remote=False),
                        attributes=attributes, start_time=1_000_000_000, end_time=3_000_000_000)


def test_a_logfire_stream_is_one_event_timed_by_its_duration() -> None:
    for mode in ("logfire-default", "logfire-v1"):
        spans = load(mode, "stream")
        [log] = [s for s in spans if (s.attributes or {}).get("logfire.span_type") == "log"]
        (event,) = encode_spans(spans).llm_events
        assert event["latency"] == log.attributes["duration"] > 0
        assert event["properties"]["$span_id"] == f"{log.context.span_id:016x}"


def test_a_langfuse_error_level_is_an_error_whatever_the_status() -> None:
    attributes = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "m",
                  "langfuse.observation.input": json.dumps([{"role": "user", "content": "Hi"}]),
                  "langfuse.observation.level": "ERROR",
                  "langfuse.observation.status_message": "quota exceeded"}
    (event,) = encode_spans([span(attributes)]).llm_events
    assert (event["properties"]["error.type"], event["properties"]["error.message"]) == (
        "error", "quota exceeded")
    assert event["prompt"] == "Hi"


def test_langfuse_cost_details_are_the_event_cost() -> None:
    (event,) = encode_spans(load("langfuse-sdk", "observe_generation")).llm_events
    assert abs(event["properties"]["cost_usd"] - 0.000096) < 1e-12
    assert FIXTURES.is_dir()
