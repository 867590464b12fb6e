"""Span capture and fixture files for the provider-SDK recorders (anthropic, litellm, adk, bedrock).

A recorder runs a real library against a local fake provider and saves each case with the
Trubrics events a user expects, written by hand from what the fake answered::

    recorder = Recorder("anthropic-native")
    with recorder.case("chat") as case:
        with recorder.request_span():
            client.messages.create(...)
        case.expect(llm_events=[llm_event(prompt="Say hello", ...)],
                    llm_spans=lambda s: s["name"] == "anthropic.messages.create", notes="...")

Only ``span_for_llm_event`` is filled in from the recording, by the hand-written ``llm_spans``
rule. Span and trace ids come from a counter, so a re-recording diffs only where the library's
output changed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
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
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

FIXTURES = TESTS / "fixtures" / "spans"
USER_ID, THREAD_ID = "u1", "t-42"
TOOL_EVENT = "execute_tool get_weather"
SpanDict = dict[str, Any]


class CountingIds(IdGenerator):
    """Trace and span ids from a counter, so re-recordings diff cleanly."""

    def __init__(self) -> None:
        self._next = 0

    def _bump(self) -> int:
        self._next += 1
        return self._next

    def generate_span_id(self) -> int:
        return 0x2000 + self._bump()

    def generate_trace_id(self) -> int:
        return 0xC0DE_0000 + self._bump()


def llm_event(
    *,
    prompt: str | None,
    generation: str | None,
    model: str | None,
    provider: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read: int | None = None,
    cache_creation: int | None = None,
    reasoning: int | None = None,
    time_to_first_token: bool = False,
    error: str | None = None,
    user: str | None = USER_ID,
    thread: str | None = THREAD_ID,
) -> dict[str, Any]:
    """One expected LLM event. A count passed as ``None`` is one the telemetry cannot know: omitted.

    ``time_to_first_token=True`` means "a number of seconds" (streams): written as ``"<seconds>"``
    since its value differs per run; otherwise it is ``None``.
    """
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
        "reasoning_tokens": reasoning,
    }
    properties: dict[str, Any] = {k: v for k, v in counts.items() if v is not None}
    properties["time_to_first_token"] = "<seconds>" if time_to_first_token else None
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


def tool_event(tool_call_id: str | None, user: str | None = USER_ID) -> dict[str, Any]:
    properties: dict[str, Any] = {"tool_name": "get_weather"}
    if tool_call_id:
        properties["tool_call_id"] = tool_call_id
    return {"event": TOOL_EVENT, "user_id": user, "properties": properties}


def openai_tool_round(create: Callable[..., Any], run_tool: Callable[[str], str]) -> None:
    """Ask with the weather tool, run it (``run_tool``), then answer from its result: what an
    agent loop does, with ``create`` an OpenAI client's ``chat.completions.create`` (model set)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = create(messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    result = run_tool("Paris")
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    create(messages=messages)


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
        events = wanted["events"]
        return {
            "llm_events": wanted["llm_events"],
            "events": events(ordered) if callable(events) else events,
            "span_for_llm_event": chosen,
            "notes": wanted["notes"],
        }


class Recorder:
    """Captures raw library spans (no trubrics processor) into ``FIXTURES/<source_dir>/``."""

    def __init__(self, source_dir: str, out: Path = FIXTURES) -> None:
        self.directory = out / source_dir
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(id_generator=CountingIds())
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
        """Records what runs inside; the body calls ``case.expect(...)`` once."""
        self.provider.force_flush()
        self.exporter.clear()
        self.log_exporter.clear()
        case = Case()
        yield case
        self.provider.force_flush()
        # spans the body set itself (received over OTLP) win over the in-memory ones
        case.spans = case.spans or [span_json(s) for s in self.exporter.get_finished_spans()]
        logs = [log_json(r) for r in self.log_exporter.get_finished_logs()]
        self.exporter.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        fixture = {"spans": case.spans, "logs": logs, "expected": case.expected()}
        path = self.directory / f"{name}.json"
        path.write_text(json.dumps(fixture, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path} ({len(case.spans)} spans)")
