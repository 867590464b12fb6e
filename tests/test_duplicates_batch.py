"""The search for two views of one call inside a batch is skipped only when no two calls of
the batch can be one: whatever :func:`same_call` would merge, ``_may_repeat`` looks for."""

from __future__ import annotations

import itertools

from trubrics_otel.translate.duplicates import CallSignature, _may_repeat, same_call


def call(span_id, *, trace_id=1, parent_id=0, scope="openinference.instrumentation.openai", start=10,
         end=20, models=("gpt-4o",), response_id=None, prompt=0):
    return CallSignature(trace_id=trace_id, span_id=span_id, parent_id=parent_id, start=start, end=end,
                         scope=scope, models=models, response_id=response_id, prompt=prompt, richness=2)


CALLS = [
    call(1), call(1),                                   # one span sent twice in one request
    call(2, start=30, end=40), call(3, start=50, end=60),  # an agent's calls: siblings, one library
    call(4, scope=""), call(5, scope="", start=12, end=18),  # no scope name: any two may be one
    call(6, scope="opentelemetry.instrumentation.openai_v2", start=11, end=19),  # another library
    call(7, parent_id=3, start=51, end=59),              # a child of 3, same library
    call(8, trace_id=2, response_id="r1"), call(9, trace_id=3, response_id="r1"),
    call(10, trace_id=4, prompt=42), call(11, trace_id=5, prompt=42, scope="other", start=12, end=18),
]


def test_no_batch_skips_a_pair_that_same_call_would_merge():
    pairs = list(itertools.combinations(CALLS, 2))
    merged = [(a, b) for a, b in pairs if same_call(a, b)]
    assert len(merged) >= 5  # the cases above do reach every branch that says "one call"
    for a, b in merged:
        assert _may_repeat([(a, {}), (b, {})]), (a, b)


def test_an_agents_calls_through_one_library_skip_the_search():
    assert not _may_repeat([(call(2, start=30, end=40), {}), (call(3, start=50, end=60), {})])


def test_a_calls_models_are_read_alike_whether_or_not_seen_before():
    """The model keys of a call are kept by its three names; a name that is an equal ``str``
    subclass (a ``str`` enum) is not a model name, as it never was, even once its text was seen."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext

    from trubrics_otel.translate.duplicates import signature

    class Model(str):
        pass

    def models(request_model, event_model=None):
        span = ReadableSpan(name="chat", context=SpanContext(1, 2, False),
                            attributes={"gen_ai.request.model": request_model}, start_time=1, end_time=2)
        return signature(span, {"assistant_id": event_model, "properties": {}}).models

    assert models("openai/GPT-4o", "gpt-4o-2024-08-06") == ("gpt-4o", "gpt-4o-2024-08-06")
    assert models("openai/GPT-4o", "gpt-4o-2024-08-06") == ("gpt-4o", "gpt-4o-2024-08-06")  # kept
    assert models(Model("openai/GPT-4o"), "gpt-4o-2024-08-06") == ("gpt-4o-2024-08-06",)
    assert models("gpt-4o") == ("gpt-4o",)
    assert models(Model("gpt-4o")) == ()


def test_a_batchs_events_leave_in_the_order_their_calls_started_merged_or_not():
    """The first call's second view comes after another call started: the two views merge, and
    the batch's events still leave first call first."""
    from trubrics_otel.translate.duplicates import one_event_per_call
    from trubrics_otel.translate.traces import TraceMemory

    views = [call(1, start=10, end=50, prompt=7), call(2, start=20, end=30, prompt=8),
             call(3, scope="opentelemetry.instrumentation.openai_v2", start=40, end=45, prompt=7)]
    events, merged = one_event_per_call([(view, {"span": view.span_id}) for view in views], TraceMemory())
    assert merged == 1
    assert [event["span"] for event in events] == [1, 2]
    events, merged = one_event_per_call([(call(span_id, trace_id=9, start=start, end=start + 1),
                                          {"span": span_id}) for span_id, start in ((5, 30), (4, 10))],
                                        TraceMemory())
    assert (merged, [event["span"] for event in events]) == (0, [4, 5])
