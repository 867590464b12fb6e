"""Record the ``google-genai`` client under OTel contrib's ``opentelemetry-instrumentation-google-genai``.

Writes ``tests/fixtures/spans/google-genai{,-content}/<case>.json``; the client talks to
``tests/fake_gemini.py`` (``HttpOptions(base_url=...)``). One mode per process::

    python -m venv /tmp/genai-venv && /tmp/genai-venv/bin/pip install -e . 'google-genai==2.34.0' \\
        opentelemetry-instrumentation-google-genai==1.3b0 opentelemetry-util-genai==1.3b0 \\
        opentelemetry-sdk==1.45.2
    for mode in default content; do
        PYTHONPATH=. /tmp/genai-venv/bin/python tests/recorders/google_genai.py $mode; done

The instrumentor 1.3b0 instruments ``google-genai>=1.32,<3`` only: beside google-genai 3.x (what
pip picks) it logs a warning and records nothing. ``content`` sets
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT`` with
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` (both are needed for content on the
span). It wraps ``Models.generate_content`` / ``generate_content_stream``: one span per method
call, whatever happens inside it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MODES = {
    "default": {},
    "content": {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
    },
}
MODE = sys.argv[1] if len(sys.argv) > 1 else "default"
os.environ.update(MODES[MODE])

import fake_gemini as fake  # noqa: E402
from recording import (  # noqa: E402
    SDK_LAYOUT,
    SECONDS,
    WEATHER_QUESTION,
    Recorder,
    SpanDict,
    get_weather_result,
    llm_event,
)

MODEL = "gemini-2.5-flash"
INSTRUCTION = "You are terse."
NOTES = (
    "opentelemetry-instrumentation-google-genai 1.3b0 on the google-genai client alone: one CLIENT "
    "span 'generate_content <model>' per generate_content / generate_content_stream call (scope "
    "opentelemetry.instrumentation.google_genai), gen_ai.provider.name=gemini, request and "
    "response model (modelVersion), usage normalised (input_tokens = promptTokenCount incl. "
    "cached, output_tokens = candidates + thoughts, cache_read / reasoning counts), streams "
    "gen_ai.response.time_to_first_chunk. One 'gen_ai.client.inference.operation.details' log "
    "record per call. User and thread only from the app's span."
)
CONTENT_NOTES = {
    "default": " No message content (capture off).",
    "content": " Content: gen_ai.input.messages / gen_ai.output.messages / "
    "gen_ai.system_instructions (and gen_ai.tool.definitions) on the span and its log record.",
}


def is_llm_span(span: SpanDict) -> bool:
    return span["name"].startswith("generate_content ")


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    """Gemini usage: prompt includes the cached 64; output = candidates + 7 thoughts."""
    if MODE == "default":
        prompt = generation = None
    if "output_tokens" in kwargs:
        kwargs.update(cache_read=fake.CACHED, reasoning=fake.THOUGHTS)
    kwargs.setdefault("model", f"{MODEL}-001")
    return llm_event(prompt=prompt, generation=generation, provider="gemini", **kwargs)


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return get_weather_result(city)


def record() -> None:
    from google import genai
    from google.genai import types
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

    recorder = Recorder("google-genai" + ("" if MODE == "default" else f"-{MODE}"), SDK_LAYOUT)
    recorder.set_global()
    GoogleGenAiSdkInstrumentor().instrument()
    notes = NOTES + CONTENT_NOTES[MODE]
    terse = types.GenerateContentConfig(system_instruction=INSTRUCTION)
    with fake.FakeGemini() as server:
        client = genai.Client(api_key="fake-gemini-key",
                              http_options=types.HttpOptions(base_url=server.url))
        with recorder.case("chat") as case:
            with recorder.request_span():
                client.models.generate_content(model=MODEL, contents="Say hello", config=terse)
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=102, output_tokens=10)],
                llm_spans=is_llm_span,
                notes=notes,
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                for _ in client.models.generate_content_stream(
                    model=MODEL, contents="Count to three", config=terse
                ):
                    pass
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=103,
                                  output_tokens=11, time_to_first_token=SECONDS)],
                llm_spans=is_llm_span,
                notes="streamGenerateContent, one word per chunk, usage on the last chunk; "
                "gen_ai.request.stream=true, time to first token from "
                "gen_ai.response.time_to_first_chunk. " + notes,
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                client.models.generate_content(
                    model=MODEL, contents=WEATHER_QUESTION,
                    config=types.GenerateContentConfig(tools=[get_weather]),
                )
            case.expect(
                # two model calls, one span: what it says is the call's request and the LAST reply
                llm_events=[event(WEATHER_QUESTION, fake.TOOL_ANSWER, input_tokens=105,
                                  output_tokens=12)],
                events=[{"event": "execute_tool get_weather", "user_id": "u1",
                         "properties": {"tool_name": "get_weather"}}],
                llm_spans=is_llm_span,
                notes="Automatic function calling (a Python function in tools): the client asks the "
                "model (functionCall get_weather), runs the function ('execute_tool get_weather' "
                "child span: gen_ai.tool.name, content mode also gen_ai.tool.call.arguments / "
                ".result; no call id, Gemini gives none) and asks again with the functionResponse, "
                "all inside ONE generate_content span: its messages are the caller's request and "
                "the final reply, its usage the LAST call's. The first call is not visible in the "
                "telemetry (a limit of the instrumentation): one LLM event. " + notes,
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.models.generate_content(model=fake.FAIL_MODEL, contents="Break")
                except Exception as error:  # google.genai.errors.ServerError
                    print(f"error case raised {type(error).__name__}")
            case.expect(
                # the span's error.type is the HTTP status: no exception event says the class
                llm_events=[event("Break", None, model=fake.FAIL_MODEL, error="500")],
                llm_spans=is_llm_span,
                notes="HTTP 500 INTERNAL: the app sees google.genai.errors.ServerError; the span has "
                "status ERROR (description '500 INTERNAL. {...}'), error.type '500' (the HTTP "
                "status) and no exception event. " + notes,
            )


if __name__ == "__main__":
    record()
