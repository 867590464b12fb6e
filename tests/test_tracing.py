"""The tracing API: traces, nested spans, generations, events, scores and @observe.

Everything is checked on what a real local Trubrics endpoint received.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import re
import subprocess
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from trubrics_otel import semconv as sc
from trubrics_otel.capture.observation import current_observation
from trubrics_otel.translate.encoder import encode_span

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.timezone.utc)


def _delivered(client, endpoint) -> tuple[dict, dict]:
    """Flush; return ``{name: event}`` for product events and for LLM events (by ``name``)."""
    assert client.flush(timeout=10) == 0
    events = {e["event"] if e["event"] != "Score" else "Score:" + e["properties"]["name"]: e
              for e in endpoint.events("publish_events")}
    llm = {e["properties"]["name"]: e for e in endpoint.events("publish_llm_events")}
    return events, llm


def _tree(event: dict) -> tuple[str, str, str | None]:
    """Pop the ids from an event's properties: (trace id, span id, parent span id)."""
    properties = event["properties"]
    trace_id, span_id = properties.pop("$trace_id"), properties.pop("$span_id")
    assert HEX32.match(trace_id) and HEX16.match(span_id)
    return trace_id, span_id, properties.pop("$parent_span_id", None)


def _duration(event: dict) -> float:
    duration = event["properties"].pop("duration")
    assert isinstance(duration, float) and duration >= 0
    return duration


def test_the_issue_example_reaches_trubrics_exactly(make_client, endpoint):
    client = make_client()
    q = "What is Trubrics?"
    with client.trace("chat-completion", user_id="u1", thread_id="t-42", metadata={"env": "prod"}) as trace:
        with client.span("retrieve-docs", input={"q": q}) as span:
            span.update(output={"n": 2}, metadata={"index": "v2"})
        with client.generation("answer", model="gpt-4o", model_parameters={"temperature": 0.2},
                               prompt=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": q}]) as gen:
            gen.update(completion="An analytics platform.",
                       usage={"prompt_tokens": 512, "completion_tokens": 49})
        client.event("cache-miss", metadata={"key": "k1"})
    client.score(trace_id=trace.id, name="user-explicit-feedback", value=1, observation_id=gen.id)
    events, llm = _delivered(client, endpoint)
    assert sorted(events) == ["Score:user-explicit-feedback", "cache-miss", "chat-completion", "retrieve-docs"]

    root = events["chat-completion"]
    trace_id, root_id, root_parent = _tree(root)
    assert (trace_id, root_parent) == (trace.id, None)
    assert root_id == trace.span_id
    root_duration = _duration(root)
    assert root == {"user_id": "u1", "event": "chat-completion", "timestamp": root["timestamp"],
                    "properties": {"observation_type": "trace", "$thread_id": "t-42", "env": "prod"}}

    retrieve = events["retrieve-docs"]
    assert _tree(retrieve) == (trace.id, span.id, root_id)
    assert _duration(retrieve) <= root_duration
    assert retrieve == {"user_id": "u1", "event": "retrieve-docs", "timestamp": retrieve["timestamp"],
                        "properties": {"observation_type": "span", "$thread_id": "t-42", "index": "v2",
                                       "input": {"q": q}, "output": {"n": 2}}}

    answer = llm["answer"]
    assert _tree(answer) == (trace.id, gen.id, root_id)
    assert isinstance(answer.pop("latency"), float)
    assert answer == {
        "user_id": "u1", "prompt": q, "generation": "An analytics platform.",
        "prompt_event_name": "Prompt", "generation_event_name": "Generation",
        "assistant_id": "gpt-4o", "thread_id": "t-42", "timestamp": answer["timestamp"],
        "properties": {"name": "answer", "input_tokens": 512, "output_tokens": 49, "temperature": 0.2,
                       # gpt-4o: $2.50 in, $10 out per million tokens (genai-prices)
                       "input_cost_usd": 0.00128, "output_cost_usd": 0.00049, "cost_usd": 0.00177,
                       "cost_source": f"genai-prices {version('genai-prices')}"},
    }

    cache = events["cache-miss"]
    assert _tree(cache)[::2] == (trace.id, root_id)
    assert cache == {"user_id": "u1", "event": "cache-miss", "timestamp": cache["timestamp"],
                     "properties": {"observation_type": "event", "$thread_id": "t-42", "key": "k1"}}

    score = events["Score:user-explicit-feedback"]
    assert _tree(score)[::2] == (trace.id, gen.id)  # recorded inside the trace, under the generation
    assert score == {"user_id": "u1", "event": "Score", "timestamp": score["timestamp"],
                     "properties": {"observation_type": "score", "$thread_id": "t-42",
                                    "name": "user-explicit-feedback", "value": 1, "trace_id": trace.id,
                                    "observation_id": gen.id, "comment": None}}
    # the order of the events in time follows the code
    stamps = [dt.datetime.fromisoformat(e["timestamp"]) for e in (retrieve, answer, cache, root, score)]
    assert stamps == sorted(stamps)


def test_explicit_times_and_one_shot_observations(make_client, endpoint):
    client = make_client()
    with client.trace("batch", user_id="u1", start_time=T0, end_time=T0 + dt.timedelta(seconds=10)) as trace:
        pass
    # end_time at creation records the observation at once: a log of finished work
    client.span("step", start_time=T0 + dt.timedelta(seconds=1), end_time="2026-11-23T09:00:03.5Z",
                parent=trace, output="ok")
    client.generation("llm", model="m", prompt="hi", completion="yo", parent=trace,
                      start_time=(T0 + dt.timedelta(seconds=4)).timestamp(),
                      end_time=T0 + dt.timedelta(seconds=5, milliseconds=250))
    client.event("tick", start_time=T0 + dt.timedelta(seconds=6), parent=trace)
    events, llm = _delivered(client, endpoint)
    assert events["batch"]["timestamp"] == "2026-11-23T09:00:10+00:00"
    assert events["batch"]["properties"]["duration"] == 10.0
    assert events["step"]["timestamp"] == "2026-11-23T09:00:03.500000+00:00"
    assert events["step"]["properties"]["duration"] == 2.5
    assert events["step"]["properties"]["output"] == "ok"
    assert (llm["llm"]["latency"], llm["llm"]["timestamp"]) == (1.25, "2026-11-23T09:00:05.250000+00:00")
    assert events["tick"]["timestamp"] == "2026-11-23T09:00:06+00:00"
    assert "duration" not in events["tick"]["properties"]
    assert {_tree(e)[2] for e in (events["step"], llm["llm"], events["tick"])} == {trace.span_id}


def test_update_merges_until_the_end_then_warns_and_changes_nothing(make_client, endpoint, caplog):
    client = make_client()
    metadata = {"a": 1}
    with client.trace("t", user_id="u") as trace:
        span = client.span("work", input="first", metadata=metadata)
        metadata["a"] = 99  # snapshotted when given
        span.update(input="second", metadata={"b": 2})
        span.update(metadata={"a": 3}, output=None)  # an explicit None output is recorded as null
        span.end()
        with caplog.at_level(logging.WARNING, logger="trubrics"):
            span.update(output="too late")
            span.end()  # a second end does nothing
    trace.update(output="late")  # the trace ended with the block
    assert "after it ended is ignored" in caplog.text
    events, _ = _delivered(client, endpoint)
    assert len(endpoint.events()) == 2
    _tree(events["work"]), _duration(events["work"])
    assert events["work"]["properties"] == {"observation_type": "span", "a": 3, "b": 2,
                                           "input": "second", "output": None}
    assert "output" not in events["t"]["properties"]


def test_user_and_thread_reach_asyncio_tasks(make_client, endpoint):
    client = make_client()

    async def worker(i: int) -> None:
        await asyncio.sleep(0.01 * (2 - i))
        with client.span(f"task-{i}"):
            await asyncio.sleep(0.01)
            client.event(f"inner-{i}")

    async def main() -> str:
        with client.trace("fan-out", user_id="u7", thread_id="th") as trace:
            await asyncio.gather(worker(0), worker(1), worker(2))
        return trace.span_id

    root = asyncio.run(main())
    events, _ = _delivered(client, endpoint)
    ids = {name: _tree(e) for name, e in events.items()}
    for i in range(3):
        assert ids[f"task-{i}"][2] == root
        assert ids[f"inner-{i}"][2] == ids[f"task-{i}"][1]
        for name in (f"task-{i}", f"inner-{i}"):
            assert (events[name]["user_id"], events[name]["properties"]["$thread_id"]) == ("u7", "th")


def test_threads_need_the_context_or_an_explicit_parent(make_client, endpoint):
    client = make_client()

    def work(name: str, **parent) -> None:
        with client.span(name, **parent):
            pass

    with client.trace("request", user_id="u1") as trace:
        threads = [
            threading.Thread(target=work, args=("bare",)),  # a new thread starts with an empty context
            threading.Thread(target=contextvars.copy_context().run, args=(work, "copied")),
            threading.Thread(target=work, args=("by-parent",), kwargs={"parent": trace}),
            threading.Thread(target=work, args=("by-ids",),
                             kwargs={"trace_id": trace.trace_id, "parent_observation_id": trace.span_id}),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    events, _ = _delivered(client, endpoint)
    trees = {name: _tree(e) for name, e in events.items()}
    for name in ("copied", "by-parent", "by-ids"):
        assert trees[name][::2] == (trace.id, trace.span_id), name
        assert events[name]["user_id"] == "u1", name
    assert trees["bare"][0] != trace.id and trees["bare"][2] is None
    assert events["bare"]["user_id"] == "anonymous"


def test_explicit_ids_attach_to_a_trace_from_elsewhere(make_client, endpoint, caplog):
    client = make_client()
    with client.trace("local", user_id="u1", thread_id="t1") as trace:
        pass
    remote_trace, remote_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    # the trace ended, but this process remembers its root, user and thread
    client.span("late-child", trace_id=trace.id, end_time=dt.datetime.now(dt.timezone.utc))
    with client.generation("remote-gen", trace_id=remote_trace, parent_observation_id=remote_span,
                           prompt="p", completion="c"):
        with client.span("grandchild"):
            pass
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        client.event("unknown-trace", trace_id="ab" * 16)
        client.event("bad-ids", trace_id="not-hex", parent_observation_id="xyz")
    assert "not started by this process" in caplog.text
    assert "32 lowercase hex digits" in caplog.text
    events, llm = _delivered(client, endpoint)
    assert _tree(events["late-child"])[::2] == (trace.id, trace.span_id)
    assert (events["late-child"]["user_id"], events["late-child"]["properties"]["$thread_id"]) == ("u1", "t1")
    gen_trace, gen_id, gen_parent = _tree(llm["remote-gen"])
    assert (gen_trace, gen_parent) == (remote_trace, remote_span)
    assert llm["remote-gen"]["user_id"] == "anonymous"
    assert _tree(events["grandchild"])[::2] == (remote_trace, gen_id)
    for name in ("unknown-trace", "bad-ids"):  # recorded all the same, outside that trace
        assert _tree(events[name])[2] is None


def test_scores_on_a_trace_and_on_an_observation(make_client, endpoint, caplog):
    client = make_client()
    with client.trace("t", user_id="u1", thread_id="th") as trace:
        with client.span("s") as span:
            pass
    client.score(trace.id, "quality", 0.75, comment="good enough")
    client.score(trace_id=trace.id, name="thumbs", value=True, observation_id=span.id, user_id="reviewer")
    client.score(trace_id="cd" * 16, name="remote", value="bad", observation_id="ef" * 8)
    client.score(trace_id=trace.id, name="self", value=2, observation_id=trace.id)  # the trace itself
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client.score(trace_id=trace.id, name="", value=1)
        client.score(trace_id=trace.id, name="no-value", value=None)
    assert "name must be a non-empty string" in caplog.text and "value is required" in caplog.text
    events, _ = _delivered(client, endpoint)
    assert len(endpoint.events()) == 6

    quality = events["Score:quality"]
    assert _tree(quality)[::2] == (trace.id, trace.span_id)  # on the trace: under its root span
    assert quality["user_id"] == "u1"
    assert quality["properties"] == {"observation_type": "score", "$thread_id": "th", "name": "quality",
                                     "value": 0.75, "trace_id": trace.id, "observation_id": None,
                                     "comment": "good enough"}
    thumbs = events["Score:thumbs"]
    assert _tree(thumbs)[::2] == (trace.id, span.id)
    assert (thumbs["user_id"], thumbs["properties"]["value"]) == ("reviewer", True)
    remote = events["Score:remote"]
    assert _tree(remote)[::2] == ("cd" * 16, "ef" * 8)
    assert remote["user_id"] == "anonymous"
    assert _tree(events["Score:self"])[2] == trace.span_id


def test_exceptions_are_recorded_and_reraised_unchanged(make_client, endpoint):
    client = make_client()
    error = ValueError("no documents")
    with pytest.raises(ValueError) as raised:
        with client.trace("t", user_id="u"):
            with client.span("retrieve"):
                raise error
    assert raised.value is error
    with pytest.raises(TimeoutError):
        with client.generation("answer", model="m", prompt="q"):
            raise TimeoutError("model too slow")
    events, llm = _delivered(client, endpoint)
    for name in ("retrieve", "t"):
        properties = events[name]["properties"]
        assert (properties["error.type"], properties["error.message"]) == ("ValueError", "no documents")
    assert llm["answer"]["properties"]["error.type"] == "TimeoutError"
    assert llm["answer"]["generation"] == ""


def test_observe_sync_async_and_generators(make_client, endpoint):
    client = make_client()

    @client.observe()
    def plan(task: str, steps: int = 2) -> list[str]:
        return [f"{task}-{i}" for i in range(steps)]

    @client.observe(name="fetch")
    async def fetch(url: str) -> dict:
        await asyncio.sleep(0)
        return {"url": url, "ok": True}

    @client.observe
    def stream(n: int):
        for i in range(n):
            client.event(f"chunk-{i}")
            yield f"tok{i} "

    @client.observe()
    async def astream(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @client.observe(as_type="generation")
    def call_llm(messages: list) -> str:
        current_observation().update(model="gpt-4o-mini", usage={"input_tokens": 9, "output_tokens": 3})
        return "Paris."

    class Agent:
        @client.observe()
        def act(self, goal: str) -> str:
            return goal[::-1]

    async def collect() -> list:
        return [i async for i in astream(3)]

    with client.trace("agent", user_id="u1") as trace:
        assert plan("x") == ["x-0", "x-1"]
        assert asyncio.run(fetch("http://example.test")) == {"url": "http://example.test", "ok": True}
        tokens = []
        for token in stream(2):  # between items the consumer is back in its own context
            assert current_observation() is trace
            tokens.append(token)
        assert tokens == ["tok0 ", "tok1 "]
        assert asyncio.run(collect()) == [0, 1, 2]
        assert call_llm([{"role": "user", "content": "Capital of France?"}]) == "Paris."
        assert Agent().act("abc") == "cba"
    assert plan.__name__ == "plan" and current_observation() is None

    events, llm = _delivered(client, endpoint)
    trees = {name: _tree(e) for name, e in events.items()}
    for name in ("plan", "fetch", "stream", "astream", "act"):
        assert trees[name][::2] == (trace.id, trace.span_id), name
        _duration(events[name])
        assert events[name]["user_id"] == "u1"
    assert events["plan"]["properties"] == {"observation_type": "span", "input": {"task": "x"},
                                           "output": ["x-0", "x-1"]}
    assert events["fetch"]["properties"]["input"] == {"url": "http://example.test"}
    assert events["stream"]["properties"]["output"] == "tok0 tok1 "  # text chunks are joined
    assert events["astream"]["properties"]["output"] == [0, 1, 2]
    assert events["act"]["properties"]["input"] == {"goal": "abc"}  # self is left out
    # the generator's body ran inside its span, the consumer did not
    assert trees["chunk-0"][2] == trees["chunk-1"][2] == trees["stream"][1]
    gen = llm["call_llm"]
    assert _tree(gen)[2] == trace.span_id
    assert (gen["prompt"], gen["generation"], gen["assistant_id"]) == ("Capital of France?", "Paris.", "gpt-4o-mini")
    assert gen["properties"] == {"name": "call_llm", "input_tokens": 9, "output_tokens": 3,  # gpt-4o-mini
                                 "input_cost_usd": 1.35e-06, "output_cost_usd": 1.8e-06, "cost_usd": 3.15e-06,
                                 "cost_source": f"genai-prices {version('genai-prices')}"}


def test_observe_exceptions_and_abandoned_generators(make_client, endpoint):
    client = make_client()

    @client.observe()
    def broken() -> None:
        raise KeyError("missing")

    @client.observe()
    async def abroken() -> None:
        raise RuntimeError("async boom")

    @client.observe()
    def numbers():
        yield 1
        raise OSError("disk gone")

    @client.observe()
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with pytest.raises(KeyError):
        broken()
    with pytest.raises(RuntimeError, match="async boom"):
        asyncio.run(abroken())
    with pytest.raises(OSError):
        list(numbers())
    @client.observe(name="aendless")
    async def aendless():
        i = 0
        while True:
            yield i
            i += 1

    async def consume() -> None:
        stream = aendless()
        assert [await stream.__anext__(), await stream.__anext__()] == [0, 1]
        await stream.aclose()  # stopped early: not an error

    generator = endless()
    assert [next(generator), next(generator)] == [0, 1]
    generator.close()  # the consumer stops early: not an error
    asyncio.run(consume())
    events, _ = _delivered(client, endpoint)
    assert events["broken"]["properties"]["error.type"] == "KeyError"
    assert events["abroken"]["properties"]["error.message"] == "async boom"
    assert events["numbers"]["properties"]["error.type"] == "OSError"
    assert events["numbers"]["properties"]["output"] == [1]
    for name in ("endless", "aendless"):
        assert "error.type" not in events[name]["properties"]
        assert events[name]["properties"]["output"] == [0, 1]


def test_nests_with_the_apps_own_spans(make_client, endpoint):
    """Private provider: an app span around and inside a trace keeps one OTel trace."""
    app_exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    app = app_provider.get_tracer("app")
    client = make_client()
    with app.start_as_current_span("http request") as request:
        with client.trace("chat", user_id="u1") as trace:
            with app.start_as_current_span("db query"):
                with client.span("inside-db"):
                    client.track(user_id="u1", event="Clicked")  # the fast path nests too
    events, _ = _delivered(client, endpoint)
    request_id = request.get_span_context()
    assert _tree(events["chat"])[::2] == (f"{request_id.trace_id:032x}", f"{request_id.span_id:016x}")
    [db] = [s for s in app_exporter.get_finished_spans() if s.name == "db query"]
    assert db.parent.span_id == int(trace.span_id, 16)
    inside = _tree(events["inside-db"])
    assert inside[2] == f"{db.context.span_id:016x}"
    assert _tree(events["Clicked"])[::2] == (inside[0], inside[1])
    assert {n for n in events} == {"chat", "inside-db", "Clicked"}  # the app's spans are not shipped


def test_app_sampling_does_not_drop_observations(make_client, endpoint):
    app = TracerProvider(sampler=ALWAYS_OFF).get_tracer("app")
    client = make_client()
    with app.start_as_current_span("unsampled request"):
        with client.trace("chat", user_id="u1"):
            client.event("e")
    events, _ = _delivered(client, endpoint)
    assert set(events) == {"chat", "e"}


def test_into_the_apps_provider(make_client, endpoint):
    """tracer_provider=: observations are the app's spans too (its processors see them)."""
    app_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    client = make_client(tracer_provider=provider)
    with client.trace("chat", user_id="u1") as trace:
        with provider.get_tracer("app").start_as_current_span("http call"):
            with client.generation("answer", model="m", prompt="q", completion="a"):
                pass
    events, llm = _delivered(client, endpoint)
    names = {s.name for s in app_exporter.get_finished_spans()}
    assert names == {"chat", "http call", "answer"}
    assert _tree(llm["answer"])[0] == trace.id
    assert llm["answer"]["user_id"] == "u1"
    provider.shutdown()


def test_generation_inputs_in_every_common_shape(make_client, endpoint):
    class Usage:  # like the OpenAI client's CompletionUsage
        def model_dump(self) -> dict:
            return {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cached_tokens": None}

    client = make_client()
    with client.trace("t", user_id="u"):
        client.generation("text", prompt="plain", completion="answer", end_time=T0, start_time=T0)
        client.generation("parts", end_time=T0, start_time=T0,
                          prompt={"role": "user", "content": [{"type": "text", "text": "look"},
                                                              {"type": "image_url", "image_url": {"url": "u"}}]},
                          completion={"role": "assistant", "content": None, "tool_calls": [
                              {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
                          usage=Usage(), model_parameters={"maxTokens": 100, "topP": None, "stop": ["\n"],
                                                           "response_format": {"type": "json"}})
        client.generation("json", prompt={"question": "q"}, completion={"answer": 42},
                          start_time=T0, end_time=T0)
    _, llm = _delivered(client, endpoint)
    assert (llm["text"]["prompt"], llm["text"]["generation"]) == ("plain", "answer")
    assert llm["parts"]["prompt"] == "look"
    assert llm["parts"]["generation"] == 'tool_call: get_weather({"city":"Paris"})'
    properties = llm["parts"]["properties"]
    _tree(llm["parts"])
    assert properties == {"name": "parts", "input_tokens": 5, "output_tokens": 2, "total_tokens": 7,
                          "max_tokens": 100, "stop": ["\n"], "response_format": '{"type":"json"}'}
    assert (llm["json"]["prompt"], llm["json"]["generation"]) == ('{"question":"q"}', '{"answer":42}')


def test_bad_input_and_after_close_never_raise(make_client, endpoint, caplog):
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        with client.trace(None, user_id=object(), metadata="not a mapping") as trace:  # type: ignore[arg-type]
            with client.span("s", parent="not an observation"):  # type: ignore[arg-type]
                pass
            client.span("s2").update(model="gpt").end()  # a span has no model: warned, ignored
        client.observe(as_type="tool")(lambda: 1)()
    assert "apply to generations only" in caplog.text
    assert "expected 'span' or 'generation'" in caplog.text
    assert "trace name must be a non-empty string" in caplog.text
    assert "user_id must be a non-empty string, got object" in caplog.text
    assert "metadata of 'trace' must be a mapping" in caplog.text
    assert "parent= must be an Observation" in caplog.text
    events, _ = _delivered(client, endpoint)
    assert events["trace"]["user_id"] == "anonymous"
    assert _tree(events["s"])[2] == trace.span_id
    client.close(timeout=5)
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        with client.trace("late") as late:
            late.update(output=1)
        client.score(trace_id=trace.id, name="late", value=1)
    assert "after close()" in caplog.text
    assert late.id == "0" * 32


def test_encoder_reads_observation_spans():
    """The pure encoder branch: type, duration, thread and error on a product-event span."""
    context = SpanContext(0xAB, 0xCD, False, TraceFlags(1))
    span = ReadableSpan(
        "step", context, SpanContext(0xAB, 0xEF, False, TraceFlags(1)),
        attributes={sc.TRUBRICS_EVENT: "step", sc.TRUBRICS_OBSERVATION_TYPE: "span",
                    sc.SESSION_ID: "s-1", sc.USER_ID: "u", sc.TRUBRICS_PROPERTIES: '{"duration": "mine"}'},
        status=Status(StatusCode.ERROR, "boom"), start_time=1_000_000_000, end_time=3_500_000_000,
    )
    kind, event = encode_span(span)
    assert kind == "event"
    assert event["properties"] == {
        "observation_type": "span", "$thread_id": "s-1", "duration": "mine",  # the span's own win
        "error.type": "error", "error.message": "boom",
        "$trace_id": f"{0xAB:032x}", "$span_id": f"{0xCD:016x}", "$parent_span_id": f"{0xEF:016x}",
    }
    plain = ReadableSpan("e", context, None, attributes={sc.TRUBRICS_EVENT: "e"}, start_time=1, end_time=1)
    assert encode_span(plain)[1]["properties"] == {"$trace_id": f"{0xAB:032x}", "$span_id": f"{0xCD:016x}"}
    score = ReadableSpan("s", context, None, start_time=5, end_time=9,
                         attributes={sc.TRUBRICS_EVENT: "Score", sc.TRUBRICS_OBSERVATION_TYPE: "score"})
    assert "duration" not in encode_span(score)[1]["properties"]


def test_the_example_runs_end_to_end():
    """examples/tracing.py against its own local endpoint: every kind arrives, in one tree."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tracing.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "9 events received:"
    assert lines[1].startswith("- [user-1] chat-completion ")
    children = [line for line in lines[2:] if line.startswith("  - [user-1] ")]
    assert len(children) == 8  # everything, even the other thread's event, nests under the trace
    assert any("LLM stub-llm-1: 'What is Trubrics?'" in line for line in children)
    assert any("Score " in line and "'user-explicit-feedback'" in line for line in children)
