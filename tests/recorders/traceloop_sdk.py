"""Record the Traceloop SDK (OpenLLMetry's ``Traceloop.init``, decorators, association properties).

Writes ``tests/fixtures/spans/traceloop-sdk/<case>.json``; the ``openai`` client talks to
``tests/fake_openai.py``::

    python -m venv /tmp/traceloop-venv && /tmp/traceloop-venv/bin/pip install -e . \\
        traceloop-sdk==0.62.4 openai==3.63.0 httpx opentelemetry-sdk==1.45.1
    PYTHONPATH=. /tmp/traceloop-venv/bin/python tests/recorders/traceloop_sdk.py

(traceloop-sdk 0.62.4 imports ``httpx`` without declaring it; openai 3.x no longer brings it.)
``Traceloop.init`` adds its processor to the global tracer provider when one is set (the
recorder's, made global first) and instruments ``openai``; a throw-away exporter takes what it
would send to Traceloop. Users and sessions are the SDK's own mechanism:
``Traceloop.set_association_properties({"user_id": ..., "session_id": ...})`` inside a
``@workflow``, copied onto every later span of the trace as
``traceloop.association.properties.*``. No app span.
"""

from __future__ import annotations

import os
from typing import Any

os.environ["TRACELOOP_TELEMETRY"] = "false"

import openai  # noqa: E402
import recording as r  # noqa: E402
from fake_openai import FAIL_MODEL, FakeOpenAI  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from traceloop.sdk import Traceloop  # noqa: E402
from traceloop.sdk.decorators import agent, tool, workflow  # noqa: E402
from traceloop.sdk.instruments import Instruments  # noqa: E402

MODEL = "gpt-4o-mini"
NOTES = (
    "traceloop-sdk 0.62.4 (OpenLLMetry's SDK, opentelemetry-instrumentation-openai 0.62.4 inside): "
    "`handle_request.workflow` (@workflow, traceloop.span.kind=workflow) > `openai.chat` (CLIENT, "
    "the LLM event: gen_ai.input/output.messages, usage incl. cache_read) and, in the agent "
    "case, `weather_agent.agent` (@agent) > `get_weather.tool` (@tool: traceloop.span.kind=tool, "
    "traceloop.entity.name and gen_ai.tool.name get_weather, traceloop.entity.input/output; NO "
    "gen_ai.operation.name: a tool event all the same). User and session: "
    "traceloop.association.properties.user_id / .session_id on the workflow span and every "
    "span started after Traceloop.set_association_properties."
)


def event(prompt: str, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    return r.fake_openai_event(prompt, generation, cached=4, **kwargs)


def record_cases(recorder: r.Recorder, client: openai.OpenAI) -> None:
    def create(**kwargs: Any) -> Any:
        return client.chat.completions.create(model=kwargs.pop("model", MODEL), **kwargs)

    def ask(**kwargs: Any) -> Any:
        return create(messages=[{"role": "user", "content": r.QUESTION}], **kwargs)

    @tool(name="get_weather")
    def get_weather(city: str) -> str:
        return r.get_weather_result(city)

    @agent(name="weather_agent")
    def weather_agent() -> None:
        r.openai_tool_round(create, get_weather)

    @workflow(name="handle_request")
    def handle_request(work: Any) -> None:
        Traceloop.set_association_properties({"user_id": r.USER_ID, "session_id": r.THREAD_ID})
        work()

    answer = f"Echo: {r.QUESTION}"
    with recorder.case("chat") as case:
        handle_request(ask)
        case.expect(
            # "What is OpenTelemetry?": 3 words in, all 3 cached (the fake caches up to 4); 4 out
            llm_events=[event(r.QUESTION, answer, input_tokens=3, output_tokens=4)],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES,
        )

    with recorder.case("stream") as case:
        handle_request(lambda: list(ask(stream=True, stream_options={"include_usage": True})))
        case.expect(
            llm_events=[event(r.QUESTION, answer, input_tokens=3, output_tokens=4,
                              time_to_first_token=r.NOT_RECORDED)],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " Stream with include_usage: the usage chunk's counts.",
        )

    with recorder.case("tool_call") as case:
        handle_request(weather_agent)
        case.expect(
            llm_events=r.tool_round_events(event),
            events=[r.tool_event(None)],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " An @agent running an OpenAI tool round with a @tool function.",
        )

    with recorder.case("error") as case:
        def fail() -> None:
            try:
                ask(model=FAIL_MODEL)
            except openai.InternalServerError as error:
                print("error case raised", type(error).__name__)

        handle_request(fail)
        case.expect(
            llm_events=[event(r.QUESTION, None, model=FAIL_MODEL,
                              error="openai.InternalServerError")],
            llm_spans=r.is_openllmetry_chat,
            notes=NOTES + " HTTP 500: status ERROR, error.type, an exception event; the request "
            "messages present.",
        )


def main() -> None:
    recorder = r.Recorder("traceloop-sdk")
    recorder.set_global()
    Traceloop.init(app_name="weather_app", exporter=InMemorySpanExporter(), disable_batch=True,
                   instruments={Instruments.OPENAI}, telemetry_enabled=False)
    with FakeOpenAI(cached_tokens=4) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        record_cases(recorder, client)


if __name__ == "__main__":
    main()
