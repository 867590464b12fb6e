"""Record LiteLLM fixtures: its OpenTelemetry callback (``litellm.callbacks = ["otel"]``).

Writes ``tests/fixtures/spans/litellm-otel/<case>.json``; ``litellm.completion`` talks to
``tests/fake_openai.py`` through ``api_base``::

    python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install \
        litellm==1.110.2 openai==3.63.0 opentelemetry-sdk==1.45.2
    /tmp/litellm-venv/bin/python tests/recorders/litellm_otel.py

The callback uses OpenTelemetry's global tracer (and logger) provider when it is an SDK one,
else makes its own. It runs after the call, on a background thread: with an app span current
it writes the call onto THAT span (while it still records), so the recorder keeps the app span
open until the callback has written. ``USE_OTEL_LITELLM_REQUEST_SPAN=true`` (read per call)
gives a ``litellm_request`` child span instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

os.environ.setdefault(
    "LITELLM_LOCAL_MODEL_COST_MAP", "True"
)  # it fetches the map from the internet otherwise

from recording import (  # noqa: E402,I001  (puts tests/ on sys.path)
    SDK_LAYOUT,
    TOOL_EVENT,
    Recorder,
    get_weather_result,
    llm_event,
    openai_tool_round,
    tool_event,
    tool_round_events,
)
from fake_openai import TOOL_CALL_ID, FakeOpenAI  # noqa: E402

MODEL = "openai/gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}
RAW_SPAN, REQUEST_SPAN = "raw_gen_ai_request", "litellm_request"


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    return llm_event(prompt=prompt, generation=generation, provider="openai", **kwargs)


def named(name: str) -> Any:
    return lambda span: span["name"] == name


class LiteLLMRecorder(Recorder):
    """Waits for LiteLLM's background callback before a case's spans are read."""

    def settle(self, span: Any = None) -> None:
        """Until the finished spans (and ``span``'s attributes) stop changing for half a second."""

        def snapshot() -> tuple[int, int]:
            return len(self.exporter.get_finished_spans()), len(
                span.attributes
            ) if span is not None else 0

        last, stable_since, deadline = snapshot(), time.monotonic(), time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = snapshot()
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 0.5:
                return

    @contextlib.contextmanager
    def app_span(self) -> Iterator[None]:
        """The app's request span, held open until LiteLLM has written onto it."""
        with self.request_span():
            from opentelemetry import trace

            yield
            self.settle(trace.get_current_span())


@contextlib.contextmanager
def request_span_mode(enabled: bool) -> Iterator[None]:
    os.environ["USE_OTEL_LITELLM_REQUEST_SPAN"] = "true" if enabled else "false"
    try:
        yield
    finally:
        os.environ.pop("USE_OTEL_LITELLM_REQUEST_SPAN", None)


def record() -> None:
    import litellm

    recorder = LiteLLMRecorder("litellm-otel", SDK_LAYOUT)
    recorder.set_global()
    litellm.callbacks = ["otel"]
    with FakeOpenAI() as server:

        def complete(**kwargs: Any) -> Any:
            return litellm.completion(api_base=server.url, api_key="sk-fake", **kwargs)

        with recorder.case("chat") as case:
            with recorder.app_span():
                complete(
                    model=MODEL,
                    messages=[SYSTEM, {"role": "user", "content": "Say hello"}],
                    temperature=0.2,
                )
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=named("handle request"),
                notes=(
                    "App span current, default: LiteLLM writes the call's gen_ai.* / litellm.* / "
                    "gen_ai.cost.* attributes onto the APP's 'handle request' span (and sets its status OK), "
                    "so that span (which also has user.id/session.id) is the LLM event. Its child "
                    "'raw_gen_ai_request' (llm.openai.* = provider request/response as Python-repr strings, "
                    "not JSON) duplicates the same call: merge/ignore. Cost: gen_ai.cost.total_cost "
                    "(+ input_cost/output_cost, hidden_params.response_cost)."
                ),
            )

        with request_span_mode(True), recorder.case("chat_request_span") as case:
            with recorder.app_span():
                complete(
                    model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Say hello again"}]
                )
            case.expect(
                llm_events=[
                    event(
                        "Say hello again", "Echo: Say hello again", input_tokens=6, output_tokens=4
                    )
                ],
                llm_spans=named(REQUEST_SPAN),
                notes=(
                    "USE_OTEL_LITELLM_REQUEST_SPAN=true: a 'litellm_request' child of the app span carries "
                    "the call (gen_ai.*, cost); its child 'raw_gen_ai_request' duplicates the same call "
                    "(must be merged, not a 2nd event). user/thread on the app span."
                ),
            )

        with recorder.case("user_param") as case:
            complete(model=MODEL, messages=[{"role": "user", "content": "Say hi"}], user="u1")
            recorder.settle()
            case.expect(
                llm_events=[
                    event("Say hi", "Echo: Say hi", input_tokens=2, output_tokens=3, thread=None)
                ],
                llm_spans=named(REQUEST_SPAN),
                notes=(
                    "No app span: 'litellm_request' is a root span. LiteLLM's own user mechanism, the "
                    "OpenAI 'user' param, lands in llm.user (and llm.openai.user on the raw span). "
                    "No session/thread mechanism on this path: thread unknown."
                ),
            )

        with recorder.case("stream") as case:
            with recorder.app_span():
                for _ in complete(
                    model=MODEL,
                    messages=[SYSTEM, {"role": "user", "content": "Count to three"}],
                    stream=True,
                    stream_options={"include_usage": True},
                ):
                    pass
            case.expect(
                llm_events=[
                    event(
                        "Count to three",
                        "Echo: Count to three",
                        input_tokens=6,
                        output_tokens=4,
                        model="gpt-4o-mini",
                        user=None,
                        thread=None,
                    )
                ],
                llm_spans=named(REQUEST_SPAN),
                notes=(
                    "Streamed (include_usage), app span current: the callback runs after the stream without "
                    "the caller's context, so 'litellm_request' is a ROOT span in its own trace, the app span "
                    "gets nothing: user/thread are LOST (a user would expect u1/t-42). llm.is_streaming=True; "
                    "gen_ai.response.model is the request model 'gpt-4o-mini' (the chunks said "
                    "gpt-4o-mini-2024-07-18); no time-to-first-token attribute; the child "
                    "'raw_gen_ai_request' is empty."
                ),
            )

        with request_span_mode(True), recorder.case("tool_call") as case:
            with recorder.app_span():
                tool_round(complete, recorder)
            case.expect(
                llm_events=tool_round_events(event),
                events=[tool_event(TOOL_CALL_ID)],
                llm_spans=named(REQUEST_SPAN),
                notes=(
                    "USE_OTEL_LITELLM_REQUEST_SPAN=true, two completions + the app's 'execute_tool "
                    "get_weather' span. The tool call is NOT in gen_ai.output.messages (parts: [], "
                    "finish_reason tool_calls) but in the legacy gen_ai.completion.0.function_call.name / "
                    ".arguments (no call id; the id is only in the raw span's llm.openai.choices repr)."
                ),
            )

        with recorder.case("tool_call_app_span") as case:
            with recorder.app_span():
                tool_round(complete, recorder)
            case.expect(
                llm_events=tool_round_events(event),
                events=[tool_event(TOOL_CALL_ID)],
                llm_spans=named(RAW_SPAN),
                notes=(
                    "Default mode, two calls under ONE app span: LiteLLM writes both calls onto the same app "
                    "span, the second overwriting the first, and the first's "
                    "gen_ai.completion.0.function_call.* stay beside the second's output (mixed data). Only "
                    "the per-call 'raw_gen_ai_request' children keep each call apart (llm.openai.messages / "
                    "choices / usage / model, Python-repr strings): the LLM events come from them; the app "
                    "span must then NOT become a third event."
                ),
            )

        with recorder.case("error") as case:
            with recorder.app_span():
                try:
                    complete(
                        model="openai/fail-500", messages=[{"role": "user", "content": "Break"}]
                    )
                except litellm.InternalServerError:
                    pass
            case.expect(
                llm_events=[event("Break", None, model="fail-500", error="InternalServerError")],
                llm_spans=named("handle request"),
                notes="HTTP 500. No LiteLLM span at all: the failure callback writes onto the app span "
                "(status ERROR, error.type InternalServerError, error.code 500, error.message, exception "
                "event, gen_ai.request.model fail-500, gen_ai.input.messages), which is the LLM event.",
            )


def tool_round(complete: Any, recorder: Recorder) -> None:
    """:func:`openai_tool_round`, the tool run in the app's own tool span."""

    def run_tool(city: str) -> str:
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                      "gen_ai.tool.call.id": TOOL_CALL_ID}  # the fake's call id
        with recorder.tracer.start_as_current_span(TOOL_EVENT, attributes=attributes):
            return get_weather_result(city)

    openai_tool_round(partial(complete, model=MODEL), run_tool)


if __name__ == "__main__":
    record()
