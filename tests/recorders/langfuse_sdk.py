"""Record Langfuse SDK fixtures: its ``langfuse.openai`` drop-in and ``@observe``.

Writes ``tests/fixtures/spans/langfuse-sdk/<case>.json``; the drop-in ``OpenAI`` client talks to
``tests/fake_openai.py``::

    python -m venv /tmp/langfuse-venv && /tmp/langfuse-venv/bin/pip install \
        langfuse==5.2.0 openai==3.60.0 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/langfuse-venv/bin/python tests/recorders/langfuse_sdk.py

The SDK (v3 and later) is built on OpenTelemetry: ``Langfuse(tracer_provider=...)`` adds its own
exporting processor to the given provider (here the recorder's; it exports to the fake, which
answers 404, quietly). Every observation is a span with ``langfuse.observation.*`` attributes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from recording import (  # noqa: I001  (puts tests/ on sys.path)
    SDK_LAYOUT,
    SECONDS,
    Recorder,
    get_weather_result,
    llm_event,
    openai_tool_round,
    tool_event,
    tool_round_events,
)
from fake_openai import FakeOpenAI  # noqa: E402

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    kwargs.setdefault("provider", None)
    return llm_event(prompt=prompt, generation=generation, **kwargs)


def generation(span: dict[str, Any]) -> bool:
    return span["attributes"].get("langfuse.observation.type") == "generation"


def record() -> None:
    from langfuse import Langfuse, observe, propagate_attributes

    recorder = Recorder("langfuse-sdk", SDK_LAYOUT)
    with FakeOpenAI() as server:
        Langfuse(public_key="pk-lf-test", secret_key="sk-lf-test", base_url=server.base_url,
                 tracer_provider=recorder.provider)
        from langfuse.openai import OpenAI

        client = OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)

        with recorder.case("chat") as case:
            with recorder.request_span():
                client.chat.completions.create(
                    model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Say hello"}]
                )
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=generation,
                notes="'OpenAI-generation' span (langfuse.observation.type=generation, scope "
                "langfuse-sdk): input/output JSON, model.name (response model), usage_details "
                "(OpenAI keys). No provider attribute. User/session from the app span.",
            )

        with recorder.case("propagate_attributes") as case:
            with propagate_attributes(user_id="u1", session_id="t-42"):
                client.chat.completions.create(
                    model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Say hi"}]
                )
            case.expect(
                llm_events=[event("Say hi", "Echo: Say hi", input_tokens=5, output_tokens=3)],
                llm_spans=generation,
                notes="Langfuse's own mechanism, no app span: propagate_attributes puts user.id / "
                "session.id on the generation span.",
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                for _ in client.chat.completions.create(
                    model=MODEL,
                    messages=[SYSTEM, {"role": "user", "content": "Count to three"}],
                    stream=True,
                    stream_options={"include_usage": True},
                ):
                    pass
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=6,
                                  output_tokens=4, time_to_first_token=SECONDS)],
                llm_spans=generation,
                notes="Streamed with include_usage: langfuse.observation.completion_start_time "
                "(ISO text) marks the first chunk.",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.chat.completions.create(
                        model="fail-500", messages=[{"role": "user", "content": "Break"}]
                    )
                except Exception:
                    pass
            case.expect(
                llm_events=[event("Break", None, model="fail-500", error="Error code: 500")],
                llm_spans=generation,
                notes="HTTP 500: status ERROR with the message, langfuse.observation.level=ERROR "
                "and .status_message; no exception class anywhere, no output, no usage; "
                "cost_details all 0.",
            )

        @observe(as_type="tool", name="get_weather")
        def get_weather(city: str) -> str:
            return get_weather_result(city)

        @observe(name="weather-agent")
        def agent() -> None:
            openai_tool_round(partial(client.chat.completions.create, model=MODEL), get_weather)

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                agent()
            case.expect(
                llm_events=tool_round_events(event),
                events=[tool_event(None)],
                llm_spans=generation,
                notes="@observe agent span (type span) wraps two generations and an @observe "
                "tool (langfuse.observation.type=tool, name get_weather): a tool event.",
            )

        @observe(as_type="generation", name="my-llm")
        def manual(question: str) -> str:
            from langfuse import get_client

            answer = "Paris is the capital."
            get_client().update_current_generation(
                model="claude-sonnet-4-6", usage_details={"input": 7, "output": 5},
                cost_details={"input": 0.000021, "output": 0.000075},
            )
            return answer

        with recorder.case("observe_generation") as case:
            with propagate_attributes(user_id="u1", session_id="t-42"):
                manual("What is the capital of France?")
            case.expect(
                llm_events=[{
                    **event("What is the capital of France?", "Paris is the capital.",
                            model="claude-sonnet-4-6", input_tokens=7, output_tokens=5),
                    "properties": {"input_tokens": 7, "output_tokens": 5, "cost_usd": 0.000096,
                                   "provider": None},
                }],
                llm_spans=generation,
                notes="A hand-made @observe(as_type='generation'): input is the function's "
                "arguments ({'args': [...], 'kwargs': {}}), output its return value; "
                "usage_details with Langfuse's own keys input/output, cost_details in USD.",
            )


if __name__ == "__main__":
    record()
