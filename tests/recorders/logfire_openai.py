"""Record Logfire fixtures: ``logfire.instrument_openai`` (default format and ``version=1``).

Writes ``tests/fixtures/spans/logfire-{default,v1}/<case>.json``; the ``openai`` client talks to
``tests/fake_openai.py``. One mode per process::

    python -m venv /tmp/logfire-venv && /tmp/logfire-venv/bin/pip install \
        logfire==5.4.0 openai==3.60.0 opentelemetry-sdk==1.45.2
    for mode in default v1; do
        PYTHONPATH=. /tmp/logfire-venv/bin/python tests/recorders/logfire_openai.py $mode; done

``logfire.configure(send_to_logfire=False)`` with the recorder's in-memory exporter as an extra
span processor and its counting id generator; the app's span comes from the global tracer
provider Logfire set, as it would in an app that uses Logfire. Scrubbing is on (the default).
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

from recording import (  # noqa: I001  (puts tests/ on sys.path)
    SDK_LAYOUT,
    WEATHER_RESULT,
    Recorder,
    llm_event,
    openai_tool_round,
    tool_round_events,
)
from fake_openai import FakeOpenAI  # noqa: E402

MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}


def event(prompt: str, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    kwargs.setdefault("thread", None)  # scrubbed on the app span (see SCRUBBED_SESSION)
    return llm_event(prompt=prompt, generation=generation, provider="openai", **kwargs)


SCRUBBED_SESSION = (" The app span (made through Logfire's provider) has session.id = "
                    "\"[Scrubbed due to 'session']\" (default scrubbing): no thread is known.")


def is_call(span: dict[str, Any]) -> bool:
    return span["attributes"].get("gen_ai.operation.name") == "chat"


def record(mode: str) -> None:
    import logfire
    import openai
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    recorder = Recorder(f"logfire-{mode}", SDK_LAYOUT)
    logfire.configure(send_to_logfire=False, console=False,
                      additional_span_processors=[SimpleSpanProcessor(recorder.exporter)],
                      advanced=logfire.AdvancedOptions(id_generator=SDK_LAYOUT.ids()))
    recorder.tracer = trace.get_tracer("app")
    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        logfire.instrument_openai(client, **({"version": 1} if mode == "v1" else {}))
        where = ("request_data (JSON messages) / response_data (message)" if mode == "v1"
                 else "gen_ai.input.messages / gen_ai.output.messages")

        with recorder.case("chat") as case:
            with recorder.request_span():
                client.chat.completions.create(model=MODEL, messages=[
                    SYSTEM, {"role": "user", "content": "Say hello"}])
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=is_call,
                notes=f"'Chat Completion with {{request_data[model]!r}}' (CLIENT, scope "
                f"logfire.openai): gen_ai.* model/usage/provider; content in {where}." + SCRUBBED_SESSION,
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                for _ in client.chat.completions.create(
                    model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Count to three"}],
                    stream=True, stream_options={"include_usage": True},
                ):
                    pass
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=6,
                                  output_tokens=4)],
                llm_spans=lambda s: is_call(s) and s["attributes"].get("logfire.span_type") == "log",
                notes="TWO spans for one call: the request span ends before the first chunk (no "
                "output, no tokens, response model = request model); a zero-duration sibling "
                "(logfire.span_type=log, 'streaming response from ... took {duration:.2f}s') "
                f"carries output, tokens and `duration` (s): one event, latency = duration. {where}."
                + SCRUBBED_SESSION,
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.chat.completions.create(model="fail-500", messages=[
                        {"role": "user", "content": "Break"}])
                except openai.InternalServerError:
                    pass
            case.expect(
                llm_events=[event("Break", None, model="fail-500", error="InternalServerError")],
                llm_spans=is_call,
                notes="HTTP 500: status ERROR + exception event." + SCRUBBED_SESSION,
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                openai_tool_round(partial(client.chat.completions.create, model=MODEL),
                                  lambda city: WEATHER_RESULT)
            case.expect(
                llm_events=tool_round_events(event),
                llm_spans=is_call,
                notes=f"Two calls; Logfire makes no tool span. Tool calls in {where}." + SCRUBBED_SESSION,
            )

        with recorder.case("baggage") as case:
            with logfire.set_baggage(user_id="u1", session_id="t-42"), logfire.span("handle request"):
                client.chat.completions.create(model=MODEL, messages=[
                    {"role": "user", "content": "Say hi"}])
            case.expect(
                llm_events=[event("Say hi", "Echo: Say hi", input_tokens=2, output_tokens=3,
                                  thread="t-42")],
                llm_spans=is_call,
                notes="Logfire's baggage helper: plain user_id / session_id attributes on every "
                "span. Default scrubbing replaced the app span's session_id with "
                "\"[Scrubbed due to 'session']\" (not on the call's span): never a thread id.",
            )


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "default")
