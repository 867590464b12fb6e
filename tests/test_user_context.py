"""``user_context`` stamps user, thread and properties on spans started inside it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trubrics_otel import UserContextSpanProcessor, configure, user_context
from trubrics_otel.capture.context import current_user_context


@pytest.fixture
def spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(UserContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider.get_tracer("test"), memory
    provider.shutdown()


def stamped(memory: InMemorySpanExporter) -> dict[str, tuple[Any, Any, Any]]:
    """span name → (user.id, gen_ai.conversation.id, context properties)."""
    out = {}
    for span in memory.get_finished_spans():
        a = span.attributes or {}
        props = a.get("trubrics.context.properties")
        out[span.name] = (
            a.get("user.id"),
            a.get("gen_ai.conversation.id"),
            json.loads(props) if props else None,
        )
    return out


def test_stamps_spans_inside_and_nothing_outside(spans: Any) -> None:
    tracer, memory = spans
    with user_context(user_id="u1", thread_id="t-42", properties={"plan": "pro"}):
        with tracer.start_as_current_span("inside"):
            pass
    with tracer.start_as_current_span("outside"):
        pass
    assert stamped(memory) == {
        "inside": ("u1", "t-42", {"plan": "pro"}),
        "outside": (None, None, None),
    }


def test_nested_scopes_override_and_merge_then_restore(spans: Any) -> None:
    tracer, memory = spans
    with user_context(user_id="u1", thread_id="t-1", properties={"plan": "pro", "app": "web"}):
        with user_context(user_id="u2", properties={"plan": "free"}):
            with tracer.start_as_current_span("inner"):
                pass
        with tracer.start_as_current_span("outer again"):
            pass
    assert current_user_context() is None
    assert stamped(memory) == {
        "inner": ("u2", "t-1", {"plan": "free", "app": "web"}),
        "outer again": ("u1", "t-1", {"plan": "pro", "app": "web"}),
    }


def test_a_span_keeps_the_user_and_session_it_sets_itself(spans: Any) -> None:
    tracer, memory = spans
    with user_context(user_id="u1", thread_id="t-1"):
        with tracer.start_as_current_span("own", attributes={"user.id": "me", "session.id": "s"}):
            pass
    (span,) = memory.get_finished_spans()
    assert span.attributes["user.id"] == "me"
    assert "gen_ai.conversation.id" not in span.attributes


def test_decorator_on_sync_and_async_functions(spans: Any) -> None:
    tracer, memory = spans

    @user_context(user_id="sync-user")
    def work() -> str:
        with tracer.start_as_current_span("sync"):
            return "done"

    @user_context(user_id="async-user", thread_id="t-a")
    async def awork() -> str:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("async"):
            return "done"

    assert work() == "done"
    assert asyncio.run(awork()) == "done"
    assert current_user_context() is None
    assert stamped(memory) == {
        "sync": ("sync-user", None, None),
        "async": ("async-user", "t-a", None),
    }


def test_threads_do_not_see_each_others_user(spans: Any) -> None:
    tracer, memory = spans
    barrier = threading.Barrier(4)

    def handle(user: str) -> None:
        with user_context(user_id=user, thread_id=f"t-{user}"):
            barrier.wait(timeout=10)  # all four scopes open at once
            with tracer.start_as_current_span(f"request {user}"):
                barrier.wait(timeout=10)

    threads = [threading.Thread(target=handle, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert stamped(memory) == {f"request u{i}": (f"u{i}", f"t-u{i}", None) for i in range(4)}


def test_one_shared_instance_entered_by_many_threads_and_reentered(spans: Any) -> None:
    tracer, memory = spans
    shared = user_context(user_id="shared", properties={"n": 1})
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def handle(i: int) -> None:
        try:
            with shared:
                barrier.wait(timeout=10)  # all three inside the same instance at once
                with shared:  # re-entered while already inside
                    with tracer.start_as_current_span(f"request {i}"):
                        pass
                barrier.wait(timeout=10)
            assert current_user_context() is None
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert stamped(memory) == {f"request {i}": ("shared", None, {"n": 1}) for i in range(3)}


def test_asyncio_tasks_do_not_see_each_others_user(spans: Any) -> None:
    tracer, memory = spans

    async def handle(user: str, gate: asyncio.Event) -> None:
        with user_context(user_id=user):
            await gate.wait()  # every task is inside its scope before any span starts
            with tracer.start_as_current_span(f"request {user}"):
                await asyncio.sleep(0)

    async def main() -> None:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(handle(f"u{i}", gate)) for i in range(5)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert stamped(memory) == {f"request u{i}": (f"u{i}", None, None) for i in range(5)}


def test_configure_never_installs_or_uses_a_non_sdk_global_provider() -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        pytest.skip("a test before this one installed a global SDK provider")
    with pytest.raises(TypeError, match="SDK TracerProvider"):
        configure(api_key="k", host="http://127.0.0.1:9")
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


def test_track_takes_the_user_from_the_context(tmp_path, caplog) -> None:
    """Inside ``user_context(user_id=...)`` the user may be left out; the official positional
    call still works, an explicit user still wins, and outside any context it is a logged skip."""
    from trubrics_endpoint import TrubricsEndpoint

    from trubrics_otel import Trubrics

    with TrubricsEndpoint() as endpoint:
        client = Trubrics(api_key="k", host=endpoint.url, spool=tmp_path / "spool")
        with user_context(user_id="u1", thread_id="t-1"):
            client.track(event="Sign up")
            client.track_llm(prompt="Hi?", generation="Hello.")
            client.track("u2", "Explicit")  # the official positional signature
            assert client.track_sync(event="Synced").delivered
        client.track(event="Orphan")  # no user anywhere: skipped, logged, not raised
        client.flush(timeout=10)
        client.close()
        events = [(e["user_id"], e["event"]) for e in endpoint.events("publish_events")]
        llm = [(e["user_id"], e["prompt"]) for e in endpoint.events("publish_llm_events")]
    assert sorted(events) == [("u1", "Sign up"), ("u1", "Synced"), ("u2", "Explicit")]
    assert llm == [("u1", "Hi?")]
    assert "user_context(user_id=...)" in caplog.text
