"""Users and threads from anywhere up the trace, and one LLM event per model call.

Spans are made by the real OpenTelemetry SDK (a ``TracerProvider`` with an in-memory
exporter); the encoder gets them in the batches a test chooses, with one ``TraceMemory`` held
across batches as the exporter, the bridge and the local server each hold theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trubrics_otel import user_context
from trubrics_otel.capture.context import UserContextSpanProcessor
from trubrics_otel.translate.encoder import encode_spans
from trubrics_otel.translate.traces import TraceMemory


def chat(question: str = "Hi", **extra: Any) -> dict[str, Any]:
    """A GenAI chat span's attributes, as the official OpenAI instrumentation writes them."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}]),
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 1,
        **extra,
    }


@pytest.fixture
def recorded() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)


@pytest.mark.parametrize("attributes, user, thread", [
    ({"user.id": "u1", "session.id": "t-42"}, "u1", "t-42"),
    ({"langfuse.user.id": "u1", "langfuse.session.id": "t-42", "user.id": "other"}, "u1", "t-42"),
    ({"ai.telemetry.metadata.userId": "u1", "ai.telemetry.metadata.sessionId": "t-42"}, "u1", "t-42"),
    ({"metadata": json.dumps({"user_id": "u1", "session_id": "t-42"})}, "u1", "t-42"),
    ({"traceloop.association.properties.user_id": "u1",
      "traceloop.association.properties.session_id": "t-42"}, "u1", "t-42"),
    ({"llm.user": "u1"}, "u1", None),
])
def test_a_grandparent_names_the_user_and_thread_in_any_convention(recorded, attributes, user, thread) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request", attributes=attributes):
        with tracer.start_as_current_span("agent run"):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat()):
                pass
    (event,) = encode_spans(exporter.get_finished_spans()).llm_events  # children come first
    assert (event["user_id"], event["thread_id"]) == (user, thread)


def test_an_ancestor_seen_in_an_earlier_batch_is_remembered(recorded) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("session", attributes={"user.id": "u1", "session.id": "t-42"}):
        pass
    memory = TraceMemory()
    encode_spans(exporter.get_finished_spans(), memory=memory)
    session = exporter.get_finished_spans()[0]
    exporter.clear()
    with trace.use_span(trace.NonRecordingSpan(session.context)):
        with provider.get_tracer("lib").start_as_current_span("chat", attributes=chat()):
            pass
    (alone,) = encode_spans(exporter.get_finished_spans()).llm_events
    (remembered,) = encode_spans(exporter.get_finished_spans(), memory=memory).llm_events
    assert alone["user_id"] == "anonymous"
    assert (remembered["user_id"], remembered["thread_id"]) == ("u1", "t-42")


def test_the_span_itself_beats_its_ancestor(recorded) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request", attributes={"user.id": "u1"}):
        with tracer.start_as_current_span("chat", attributes=chat(**{"user.id": "u2"})):
            pass
    (event,) = encode_spans(exporter.get_finished_spans()).llm_events
    assert event["user_id"] == "u2"


def test_a_per_run_conversation_id_does_not_beat_the_apps_session(recorded) -> None:
    """pydantic-ai's gen_ai.conversation.id is a fresh UUID per run unless the app passes one."""
    provider, exporter = recorded
    with provider.get_tracer("app").start_as_current_span("handle request", attributes={"session.id": "t-42"}):
        with provider.get_tracer("pydantic-ai").start_as_current_span(
            "chat", attributes=chat(**{"gen_ai.conversation.id": "0199-run-uuid"})
        ):
            pass
    with provider.get_tracer("pydantic-ai").start_as_current_span(
        "chat", attributes=chat(**{"gen_ai.conversation.id": "t-7"})
    ):
        pass
    threads = [e["thread_id"] for e in encode_spans(exporter.get_finished_spans()).llm_events]
    assert sorted(threads) == ["t-42", "t-7"]  # without an app thread, the library's own is used


def test_memory_is_bounded_by_traces(recorded) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("app")
    for i in range(5):
        with tracer.start_as_current_span("session", attributes={"user.id": f"u{i}"}):
            pass
    memory = TraceMemory(max_traces=3)
    memory.remember(exporter.get_finished_spans())
    assert len(memory) == 3


def test_user_context_processor_stamps_the_parents_user_at_start(recorded) -> None:
    """In-process, the child learns its ancestors' user when it starts, so it is right even
    when exported in a batch without them."""
    provider, exporter = recorded
    provider.add_span_processor(UserContextSpanProcessor())
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request", attributes={"enduser.id": "u1", "session.id": "t-42"}):
        with tracer.start_as_current_span("agent run"):
            with provider.get_tracer("pydantic-ai").start_as_current_span(
                "chat", attributes=chat(**{"gen_ai.conversation.id": "run-uuid"})
            ):
                pass
    child = by_name(exporter.get_finished_spans(), "chat")
    (event,) = encode_spans([child]).llm_events
    assert (event["user_id"], event["thread_id"]) == ("u1", "t-42")


def test_user_context_thread_beats_a_per_run_conversation_id(recorded) -> None:
    provider, exporter = recorded
    provider.add_span_processor(UserContextSpanProcessor())
    with user_context(user_id="u1", thread_id="t-42"):
        with provider.get_tracer("pydantic-ai").start_as_current_span(
            "chat", attributes=chat(**{"gen_ai.conversation.id": "run-uuid"})
        ):
            pass
    (event,) = encode_spans(exporter.get_finished_spans()).llm_events
    assert (event["user_id"], event["thread_id"]) == ("u1", "t-42")


def test_two_instrumentations_of_one_call_make_one_event_with_the_best_of_both(recorded) -> None:
    provider, exporter = recorded
    with provider.get_tracer("app").start_as_current_span("handle request", attributes={"user.id": "u1"}):
        with provider.get_tracer("framework").start_as_current_span("ChatOpenAI", attributes=chat("Why?")):
            with provider.get_tracer("provider-sdk").start_as_current_span("openai.chat", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 2, "gen_ai.usage.cache_read.input_tokens": 4,
            }):
                pass
    encoded = encode_spans(exporter.get_finished_spans())
    (event,) = encoded.llm_events
    assert encoded.merged_duplicates == 1
    assert (event["prompt"], event["generation"], event["user_id"]) == ("Why?", "Hello", "u1")
    # the inner span saw the provider's own counts; the outer one's identity is kept
    assert event["properties"]["cache_read_input_tokens"] == 4
    assert event["properties"]["input_tokens"] == 5
    assert event["properties"]["$span_id"] == f"{by_name(exporter.get_finished_spans(), 'ChatOpenAI').context.span_id:016x}"


def test_a_duplicate_in_a_later_batch_is_dropped_but_a_resent_span_is_not(recorded) -> None:
    provider, exporter = recorded
    with provider.get_tracer("framework").start_as_current_span("ChatOpenAI", attributes=chat("Why?")):
        with provider.get_tracer("provider-sdk").start_as_current_span("openai.chat", attributes=chat("Why?")):
            pass
    inner, outer = exporter.get_finished_spans()
    memory = TraceMemory()
    assert len(encode_spans([inner], memory=memory).llm_events) == 1
    later = encode_spans([outer], memory=memory)
    assert (later.llm_events, later.merged_duplicates) == ([], 1)
    assert len(encode_spans([inner], memory=memory).llm_events) == 1  # a retried request


def test_two_views_in_different_traces_of_one_batch_are_one_call(recorded) -> None:
    """A provider SDK that starts its own trace (the anthropic SDK's spans) and a framework's
    span of the same call share only the prompt; other calls in the batch stay as they are."""
    from opentelemetry.context import Context

    provider, exporter = recorded
    for question in ("first?", "second?"):
        with provider.get_tracer("framework").start_as_current_span("other", attributes=chat(question)):
            pass
    with provider.get_tracer("framework").start_as_current_span("ChatOpenAI", attributes=chat("Why?")):
        with provider.get_tracer("provider-sdk").start_as_current_span(
            "openai.chat", context=Context(), attributes=chat("Why?")
        ):
            pass
    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 4
    encoded = encode_spans(spans)
    assert encoded.merged_duplicates == 1
    assert sorted(event["prompt"] for event in encoded.llm_events) == ["Why?", "first?", "second?"]


def test_two_calls_of_one_library_with_one_question_stay_two_events(recorded) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("lib")
    with tracer.start_as_current_span("agent"):
        for n in range(2):  # one library, one question, two calls (a retry, a tool round)
            with tracer.start_as_current_span("chat", attributes=chat("Why?", **{"gen_ai.response.id": f"r{n}"})):
                pass
    assert len(encode_spans(exporter.get_finished_spans()).llm_events) == 2


def test_a_wrapper_never_becomes_an_llm_event(recorded) -> None:
    provider, exporter = recorded
    tracer = provider.get_tracer("pydantic-ai")
    with tracer.start_as_current_span("invoke_agent agent", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 30,
    }):
        with tracer.start_as_current_span("chat", attributes=chat()):
            pass
    assert len(encode_spans(exporter.get_finished_spans()).llm_events) == 1


def test_calls_sent_long_ago_are_forgotten(recorded) -> None:
    """The memory of sent calls is bounded: past it, a late duplicate is sent (not lost)."""
    provider, exporter = recorded
    with provider.get_tracer("framework").start_as_current_span("ChatOpenAI", attributes=chat("Why?")):
        with provider.get_tracer("provider-sdk").start_as_current_span("openai.chat", attributes=chat("Why?")):
            pass
    for n in range(2):
        with provider.get_tracer("other").start_as_current_span("chat", attributes=chat(f"other {n}")):
            pass
    inner, outer, *others = exporter.get_finished_spans()
    memory = TraceMemory(max_sent_calls=2)
    encode_spans([inner], memory=memory)
    encode_spans(others, memory=memory)  # two later calls push the first out
    assert len(encode_spans([outer], memory=memory).llm_events) == 1


def test_a_popular_prompt_costs_a_bounded_number_of_comparisons():
    """Thousands of users saying "hi": the sent-calls index must not make every new "hi"
    compare against all of them (it would cost milliseconds per event)."""
    from trubrics_otel.translate.duplicates import MAX_CANDIDATES_PER_KEY, CallIndex, CallSignature

    index = CallIndex(limit=2048)
    for i in range(2000):
        index.add(CallSignature(trace_id=i + 1, span_id=1, parent_id=0, start=i, end=i + 1, scope="s",
                                models=("gpt-4o",), response_id=None, prompt=hash("hi"), richness=4))
    new = CallSignature(trace_id=99_999, span_id=1, parent_id=0, start=5000, end=5001, scope="s",
                        models=("gpt-4o",), response_id=None, prompt=hash("hi"), richness=4)
    assert len(index.candidates(new)) == MAX_CANDIDATES_PER_KEY
