"""Record OpenLLMetry's OpenAI instrumentation in its events mode: content as log records.

Writes ``tests/fixtures/spans/openllmetry-events/<case>.json`` (spans and log records); the
``openai`` client talks to ``tests/fake_openai.py``::

    python -m venv /tmp/oai-venv && /tmp/oai-venv/bin/pip install -e . openai==3.63.0 \\
        opentelemetry-instrumentation-openai==0.62.4 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/oai-venv/bin/python tests/recorders/openllmetry_events.py

``OpenAIInstrumentor(use_attributes=False)`` (formerly ``use_legacy_attributes=False``): no
prompt or reply on the span, one log record per message (``gen_ai.{system,user,assistant,tool}
.message``) and per choice (``gen_ai.choice``), joined back onto their span by
``GenAIContentJoiner`` as ``configure(logger_provider=...)`` does.
"""

from __future__ import annotations

from typing import Any

import openai
import recording as r
from fake_openai import FAIL_MODEL, FakeOpenAI
from opentelemetry.instrumentation.openai import OpenAIInstrumentor

MODEL = "gpt-4o-mini"
CACHED = 4
NOTES = (
    "OpenLLMetry (opentelemetry-instrumentation-openai 0.62.4) events mode: the `openai.chat` span "
    "(CLIENT) has model, usage (incl. cache_read) and finish reasons but no content; each message "
    "is a log record with the call's span ids: gen_ai.system/user/assistant/tool.message (body "
    "{content} or {content, tool_calls}) and gen_ai.choice (body {index, message: {content}, "
    "finish_reason} and, for a tool call, `tool_calls` BESIDE `message`, not in it)."
)


def event(prompt: str, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    return r.fake_openai_event(prompt, generation, cached=CACHED, **kwargs)


def record_cases(recorder: r.Recorder, client: openai.OpenAI) -> None:
    def create(**kwargs: Any) -> Any:
        return client.chat.completions.create(model=kwargs.pop("model", MODEL), **kwargs)

    answer = f"Echo: {r.QUESTION}"
    with recorder.case("chat") as case:
        with recorder.request_span():
            create(messages=[{"role": "system", "content": r.SYSTEM_PROMPT},
                             {"role": "user", "content": r.QUESTION}])
        case.expect(
            # system 5 + user 3 words in, 4 out
            llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4)],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES,
        )

    with recorder.case("stream") as case:
        with recorder.request_span():
            for _ in create(messages=[{"role": "user", "content": r.QUESTION}], stream=True,
                            stream_options={"include_usage": True}):
                pass
        case.expect(
            llm_events=[event(r.QUESTION, answer, input_tokens=3, output_tokens=4,
                              time_to_first_token=r.SECONDS)],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " Stream: the gen_ai.choice record is emitted while the APP's span is "
            "current (the stream is read outside the call's span): it carries the app span's "
            "id, not the call's; the call's user.message record has the call's. One reply for "
            "the one call of the trace still waiting for one.",
        )

    with recorder.case("tool_call") as case:
        with recorder.request_span():
            r.openai_tool_round(create, r.get_weather_result)
        case.expect(
            llm_events=r.tool_round_events(event),
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " Tool round: the first choice's tool call is in the body's "
            "`tool_calls`; the second call's assistant.message has it in its own `tool_calls`.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                create(model=FAIL_MODEL, messages=[{"role": "user", "content": "Break"}])
            except openai.InternalServerError as error:
                print("error case raised", type(error).__name__)
        case.expect(
            llm_events=[event("Break", None, model=FAIL_MODEL, error="openai.InternalServerError")],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " HTTP 500: status ERROR, error.type, an exception event; the "
            "user.message record, no choice.",
        )


def main() -> None:
    recorder = r.Recorder("openllmetry-events", r.SDK_LAYOUT)
    recorder.set_global()  # the events go to the global logger provider
    OpenAIInstrumentor(use_attributes=False).instrument(
        tracer_provider=recorder.provider, logger_provider=recorder.logger_provider)
    with FakeOpenAI(cached_tokens=CACHED) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        record_cases(recorder, client)


if __name__ == "__main__":
    main()
