"""What every recorder shares: span capture, the app's request span, and fixture files.

A recorder (``tests/recorders/<library>*.py``) runs a real library against a local fake
provider and saves each case with the Trubrics events a user expects from it::

    recorder = Recorder("pydantic-ai")
    with FakeOpenAI(cached_tokens=CACHED) as server, recorder.case("chat") as case:
        with recorder.request_span():
            agent.run_sync("Hello")
        case.expect(  # resolved against the spans when the case ends
            llm_events=[
                llm_event(prompt="Hello", generation="Echo: Hello", model="gpt-4o-mini-2024-07-18",
                          input_tokens=3, output_tokens=2, cache_read=2, cache_creation=0)
            ],
            llm_spans=lambda s: s["name"].startswith("chat "),
            notes="...",
        )

The expectations are written by hand in each recorder from what the fake server answered;
only ``span_for_llm_event`` is filled in from the recording, by a hand-written rule that picks
the spans which must become LLM events. Span and trace ids come from a counter, so a
re-recording differs only where the library's output changed.

Two fixture layouts exist and each recorder keeps its own, so that a re-recording diffs cleanly:
``FRAMEWORK_LAYOUT`` (the agent frameworks, the default) and ``SDK_LAYOUT`` (the provider-SDK
recorders: other id counters, sorted keys, indent 2).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from instrumented_app import WEATHER_TOOL, log_json, span_json  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

FIXTURES = TESTS / "fixtures" / "spans"
USER_ID = "u1"
THREAD_ID = "t-42"
SYSTEM_PROMPT = "You are a terse assistant."
QUESTION = "What is OpenTelemetry?"
WEATHER_QUESTION = "What's the weather in Paris?"
WEATHER_RESULT = "Sunny, 21C"
TOOL_EVENT = "execute_tool get_weather"
TOOL_QUESTION = "Weather in Paris?"  # what ``openai_tool_round`` asks
TOOL_GENERATION = 'tool_call: get_weather({"city": "Paris"})'
NOT_RECORDED = "not recorded"  # a stream whose spans do not know the time to first token
SECONDS = "<seconds>"  # a stream's time to first token, a number that differs per run

SpanDict = dict[str, Any]


class CountingIds(IdGenerator):
    """Trace and span ids from one counter, not random: re-recordings diff cleanly."""

    def __init__(self, span_base: int, trace_base: int) -> None:
        self._next = 0
        self._span_base, self._trace_base = span_base, trace_base

    def _bump(self) -> int:
        self._next += 1
        return self._next

    def generate_span_id(self) -> int:
        return self._span_base + self._bump()

    def generate_trace_id(self) -> int:
        return self._trace_base + self._bump()


@dataclass(frozen=True)
class Layout:
    """How a family of fixtures is numbered and written; kept per family so re-recordings diff."""

    span_base: int
    trace_base: int
    indent: int
    sort_keys: bool

    def ids(self) -> CountingIds:
        return CountingIds(self.span_base, self.trace_base)

    def dumps(self, fixture: dict[str, Any]) -> str:
        return json.dumps(fixture, indent=self.indent, sort_keys=self.sort_keys) + "\n"


FRAMEWORK_LAYOUT = Layout(span_base=0x1000, trace_base=0xABC0_0000, indent=1, sort_keys=False)
SDK_LAYOUT = Layout(span_base=0x2000, trace_base=0xC0DE_0000, indent=2, sort_keys=True)


def get_weather_result(city: str) -> str:
    """What every recorder's ``get_weather`` tool returns."""
    return WEATHER_RESULT if city == "Paris" else "unknown"


def llm_event(
    *,
    prompt: str | None,
    generation: str | None,
    model: str | None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read: int | None = None,
    cache_creation: int | None = None,
    reasoning: int | None = None,
    error: str | None = None,
    time_to_first_token: Measured | str | None = None,
    user: str | None = USER_ID,
    thread: str | None = THREAD_ID,
    provider: str | None = "openai",
) -> dict[str, Any]:
    """One expected LLM event; a token count passed as ``None`` is one the spans cannot know.

    ``time_to_first_token`` stays ``None`` (JSON null) unless a stream's spans record it: then
    pass a function that reads it from the chosen span, e.g. ``attribute("...")``, ``SECONDS``
    for "some number of seconds" (written as is), or ``NOT_RECORDED`` when a stream's spans
    cannot tell it (the property is then left out).
    """
    properties: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
        "reasoning_tokens": reasoning,
    }
    properties = {k: v for k, v in properties.items() if v is not None}
    # None outside streams; on a stream, a function reading the measured time off the span.
    if time_to_first_token != NOT_RECORDED:
        properties["time_to_first_token"] = time_to_first_token
    properties["provider"] = provider
    return {
        "user_id": user,
        "thread_id": thread,
        "prompt": prompt,
        "generation": generation,
        "assistant_id": model,
        "error": error,
        "properties": properties,
    }


Measured = Callable[[SpanDict, list[SpanDict]], Any]


def attribute(key: str) -> Measured:
    """Reads one attribute of the chosen span: for values measured while recording."""
    return lambda span, _spans: span["attributes"][key]


def first_event_delay(event_name: str, on: Callable[[SpanDict], bool] | None = None) -> Measured:
    """Seconds from span start to its first ``event_name`` event (a first-chunk event).

    ``on`` picks another span of the case to read it from (a duplicate of the chosen span
    that alone records chunks); the one starting last before the chosen span ends is used.
    """

    def delay(span: SpanDict, spans: list[SpanDict]) -> float:
        if on is not None:
            span = [s for s in spans if on(s) and s["start_time"] <= span["end_time"]][-1]
        stamp = next(e["timestamp"] for e in span["events"] if e["name"] == event_name)
        return (stamp - span["start_time"]) / 1e9

    return delay


def tool_event(tool_call_id: str | None, user: str | None = USER_ID) -> dict[str, Any]:
    """The expected event of one ``get_weather`` tool span."""
    properties: dict[str, Any] = {"tool_name": "get_weather"}
    if tool_call_id:
        properties["tool_call_id"] = tool_call_id
    return {"event": TOOL_EVENT, "user_id": user, "properties": properties}


def openai_tool_round(create: Callable[..., Any], run_tool: Callable[[str], str]) -> None:
    """Ask with the weather tool, run it (``run_tool``), then answer from its result: what an
    agent loop does, with ``create`` an OpenAI client's ``chat.completions.create`` (model set)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": TOOL_QUESTION}]
    first = create(messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    result = run_tool("Paris")
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    create(messages=messages)


def is_openllmetry_chat(span: SpanDict) -> bool:
    """OpenLLMetry's span of one chat completions call."""
    return span["name"] == "openai.chat"


def is_openinference_llm(span: SpanDict) -> bool:
    """An OpenInference span of one model call (``openinference.span.kind`` LLM)."""
    return span["attributes"].get("openinference.span.kind") == "LLM"


def fake_openai_event(prompt: str | None, generation: str | None, *, cached: int = 0,
                      **kwargs: Any) -> dict[str, Any]:
    """An expected event of a ``gpt-4o-mini`` call answered by ``tests/fake_openai.py``: the dated
    response model; with token counts, no reasoning and up to ``cached`` of the input cached."""
    kwargs.setdefault("model", "gpt-4o-mini-2024-07-18")
    if "output_tokens" in kwargs:
        kwargs.setdefault("reasoning", 0)
        kwargs.setdefault("cache_read", min(cached, kwargs["input_tokens"]))
    return llm_event(prompt=prompt, generation=generation, **kwargs)


def fake_openai_answers(requests: list[dict[str, Any]], cached_tokens: int, *, usage: bool = True,
                        **event: Any) -> list[dict[str, Any]]:
    """The LLM events of chat completions requests ``tests/fake_openai.py`` answered (its
    ``requests[since:]``), worked out by its own rules: for frameworks that write their own
    prompts around the app's question (DSPy, CrewAI). ``usage=False``: spans without counts."""
    import fake_openai

    events = []
    for request in requests:
        messages = request.get("messages") or []
        result = fake_openai.tool_result(messages)
        calls = bool(request.get("tools")) and result is None
        text = "" if calls else (fake_openai.reply_text(messages) if result is None
                                 else f"Tool said: {result}")
        counts = fake_openai.usage(messages, text, cached_tokens)
        prompt = fake_openai.reply_text(messages).removeprefix("Echo: ")
        tokens = {"input_tokens": counts["prompt_tokens"], "output_tokens": counts["completion_tokens"],
                  "cache_read": min(cached_tokens, counts["prompt_tokens"])} if usage else {}
        events.append(llm_event(prompt=prompt or None, generation=TOOL_GENERATION if calls else text,
                                **tokens, **event))
    return events


def tool_round_events(event: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The two LLM events of ``openai_tool_round`` against ``tests/fake_openai.py``: the call that
    asks for the tool (3 words in, none out), then the answer from its result (5 in, 4 out).
    ``event(prompt, generation, **counts)`` is the recorder's own LLM event maker."""
    return [
        event(TOOL_QUESTION, TOOL_GENERATION, input_tokens=3, output_tokens=0),
        event(TOOL_QUESTION, f"Tool said: {WEATHER_RESULT}", input_tokens=5, output_tokens=4),
    ]


class Case:
    """The spans of one case, and what they should become."""

    def __init__(self) -> None:
        self.spans: list[SpanDict] = []
        self._expectation: dict[str, Any] | None = None

    def expect(
        self,
        *,
        llm_events: list[dict[str, Any]],
        llm_spans: Callable[[SpanDict], bool],
        events: list[dict[str, Any]]
        | Callable[[list[SpanDict]], list[dict[str, Any]]]
        | None = None,
        notes: str = "",
    ) -> None:
        """``events`` may be a function of the case's spans (ids the library invents)."""
        self._expectation = {
            "llm_events": llm_events,
            "events": events or [],
            "llm_spans": llm_spans,
            "notes": notes,
        }

    def expected(self) -> dict[str, Any]:
        """The ``expected`` block, with the chosen spans' ids (in start order) filled in."""
        if self._expectation is None:
            raise AssertionError("case recorded without expectations")
        wanted = self._expectation
        ordered = sorted(self.spans, key=lambda s: s["start_time"])
        chosen = [s["span_id"] for s in ordered if wanted["llm_spans"](s)]
        if len(chosen) != len(wanted["llm_events"]):
            names = [s["name"] for s in ordered]
            raise AssertionError(
                f"{len(chosen)} LLM spans for {len(wanted['llm_events'])} events: {names}"
            )
        by_id = {s["span_id"]: s for s in ordered}
        events = [
            {**event, "properties": _measured(event["properties"], by_id[span_id], ordered)}
            for event, span_id in zip(wanted["llm_events"], chosen, strict=True)
        ]
        other = wanted["events"]
        return {
            "llm_events": events,
            "events": other(ordered) if callable(other) else list(other),
            "span_for_llm_event": chosen,
            "notes": wanted["notes"],
        }


def _measured(properties: dict[str, Any], span: SpanDict, spans: list[SpanDict]) -> dict[str, Any]:
    """Properties whose value is a function of the span (a measured time) read from it."""
    return {k: v(span, spans) if callable(v) else v for k, v in properties.items()}


class Recorder:
    """Captures raw library spans (no trubrics processor) into ``FIXTURES/<source_dir>/``."""

    def __init__(
        self, source_dir: str, layout: Layout = FRAMEWORK_LAYOUT, out: Path = FIXTURES
    ) -> None:
        self.directory = out / source_dir
        self.layout = layout
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(id_generator=layout.ids())
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("app")
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    def set_global(self) -> None:
        """Make the recorder's providers OpenTelemetry's global ones, as an app's are."""
        from opentelemetry import _logs, trace

        trace.set_tracer_provider(self.provider)
        _logs.set_logger_provider(self.logger_provider)

    @contextlib.contextmanager
    def request_span(self) -> Iterator[None]:
        """The app's own request span, carrying user and session the way a web app would."""
        attributes = {"user.id": USER_ID, "session.id": THREAD_ID}
        with self.tracer.start_as_current_span(
            "handle request", kind=SpanKind.SERVER, attributes=attributes
        ):
            yield

    @contextlib.contextmanager
    def case(self, name: str) -> Iterator[Case]:
        """Records what runs inside; the body must call ``case.expect(...)`` once it is done.

        A body that received its spans itself (over OTLP) sets ``case.spans``: those win."""
        self.provider.force_flush()
        self.exporter.clear()
        self.log_exporter.clear()
        case = Case()
        yield case
        self.provider.force_flush()
        case.spans = case.spans or [span_json(s) for s in self.exporter.get_finished_spans()]
        logs = [log_json(r) for r in self.log_exporter.get_finished_logs()]
        self.exporter.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        fixture = {"spans": case.spans, "logs": logs, "expected": case.expected()}
        path = self.directory / f"{name}.json"
        path.write_text(self.layout.dumps(fixture))
        print(f"wrote {path} ({len(case.spans)} spans)")
