"""Every passing fixture through a real bridge, its spans split over two OTLP requests.

The bridge (127.0.0.1, protobuf over HTTP) forwards to a local Trubrics endpoint. The spans of
one fixture arrive in two requests, so what makes one event per model call and gives a call the
user of its request span has to work across requests, in the bridge's trace memory:

* ancestors first (spans in start order, split in half): the events must match the fixture's
  spec exactly as they do in one batch;
* as an SDK exports them (end order: a parent after its children, split in half): still exactly
  one LLM event per model call. A child sent before its ancestor cannot inherit the ancestor's
  user (the bridge acknowledges a request only once Trubrics accepted its events, so it does not
  hold one back to wait for a parent): the users are not compared there.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from conftest import API_KEY
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as to_otlp,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext
from span_fixtures import load
from test_fixture_expectations import CASES, PENDING, assert_matches_spec, expected_of
from trubrics_endpoint import TrubricsEndpoint

from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.translate.encoder import Encoded, encode_spans

READY = [(source, case) for source, case in CASES if source not in PENDING]
CARRIER_BEFORE_ITS_CALLS = {("litellm-otel", "tool_call_app_span")}
WHY_CARRIER_FIRST_FAILS = (
    "LiteLLM wrote two calls over one app span: that span is recognised as no event only once "
    "its per-call children are seen. Exporters send children first; ancestors first, it cannot be."
)


@pytest.fixture(scope="module")
def bridged() -> Any:
    """One endpoint and one bridge for the module: each case gets traces of its own."""
    with TrubricsEndpoint(api_key=API_KEY) as endpoint, Bridge(
        host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", timeout=5.0
    ) as bridge:
        yield endpoint, bridge


_RUNS = iter(range(1, 1 << 30))


def own_traces(spans: list[Any]) -> list[Any]:
    """The fixture's spans in trace ids no other case uses (fixtures count ids from 1)."""
    offset = next(_RUNS) << 64

    def moved(context: SpanContext | None) -> SpanContext | None:
        if context is None:
            return None
        return SpanContext(context.trace_id + offset, context.span_id, context.is_remote,
                           context.trace_flags)

    return [ReadableSpan(name=s.name, context=moved(s.context), parent=moved(s.parent),
                         resource=s.resource, attributes=s.attributes, events=s.events,
                         links=s.links, kind=s.kind, status=s.status, start_time=s.start_time,
                         end_time=s.end_time, instrumentation_scope=s.instrumentation_scope)
            for s in spans]


def through_bridge(bridged: Any, first: list[Any], second: list[Any]) -> tuple[Encoded, int]:
    """The events of these spans' traces, and how many duplicates the bridge merged."""
    endpoint, bridge = bridged
    merged_before = bridge.stats().get("merged_duplicates", 0)
    for spans in (first, second):
        if spans:
            answer = requests.post(
                f"{bridge.url}/v1/traces", data=to_otlp(spans).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"}, timeout=10,
            )
            assert answer.status_code == 200, answer.text
    traces = {f"{s.context.trace_id:032x}" for s in first + second}
    mine = lambda path: [e for e in endpoint.events(path) if e["properties"]["$trace_id"] in traces]  # noqa: E731
    merged = bridge.stats().get("merged_duplicates", 0) - merged_before
    return Encoded(events=mine("publish_events"), llm_events=mine("publish_llm_events")), merged


def halves(spans: list[Any]) -> tuple[list[Any], list[Any]]:
    middle = len(spans) // 2
    return spans[:middle], spans[middle:]

SPLIT_ACROSS_REQUESTS = {  # known limits of a receiver that cannot hold spans back (docs/guide/instrumentation.md)
    ("llama-index-openinference", "tool_call"):
        "a tool run that records no call id is matched to its reply within one request only",
    ("google-adk-legacy", "tool_call"):
        "the poorer view of a call went out in the first request; its richer twin is dropped, not merged",
    ("langchain-anthropic-openllmetry", "agent_stream"):
        "the LangChain view of a stream (alias model, 0 input tokens) went out in the first "
        "request; the SDK's span (dated model, its counts) is dropped, not merged",
    **{("anthropic-openllmetry-events", case):
       "the model-less root view went out in the first request; the SDK's root is dropped, not merged"
       for case in ("chat", "two_calls")},
}


@pytest.mark.parametrize("source, case", READY, ids=[f"{s}/{c}" for s, c in READY])
def test_ancestors_first_in_two_requests_give_the_spec(bridged: Any, source: str, case: str) -> None:
    if (source, case) in CARRIER_BEFORE_ITS_CALLS:
        pytest.skip(WHY_CARRIER_FIRST_FAILS)
    if (source, case) in SPLIT_ACROSS_REQUESTS:
        pytest.xfail(SPLIT_ACROSS_REQUESTS[source, case])
    spans = sorted(own_traces(load(source, case)), key=lambda s: (s.start_time, s.context.span_id))
    received, merged = through_bridge(bridged, *halves(spans))
    assert_matches_spec(received, expected_of(source, case))
    assert merged == encode_spans(spans).merged_duplicates


@pytest.mark.parametrize("source, case", READY, ids=[f"{s}/{c}" for s, c in READY])
def test_export_order_in_two_requests_gives_one_event_per_call(bridged: Any, source: str, case: str) -> None:
    spans = sorted(own_traces(load(source, case)), key=lambda s: (s.end_time, s.context.span_id))
    received, merged = through_bridge(bridged, *halves(spans))
    expected = expected_of(source, case)
    assert len(received.llm_events) == len(expected["llm_events"])
    assert sorted(e["event"] for e in received.events) == sorted(e["event"] for e in expected["events"])
    # a duplicate in the second request is dropped where one batch would have merged it
    assert merged == encode_spans(spans).merged_duplicates
