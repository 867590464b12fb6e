"""Record OpenLIT fixtures: ``openlit.init()`` instrumenting the ``openai`` client.

Writes ``tests/fixtures/spans/openlit/<case>.json``; the client talks to ``tests/fake_openai.py``::

    python -m venv /tmp/openlit-venv && /tmp/openlit-venv/bin/pip install \
        openlit==1.45.0 openai==2.54.0 opentelemetry-sdk==1.45.1
    PYTHONPATH=. /tmp/openlit-venv/bin/python tests/recorders/openlit_openai.py

OpenLIT uses OpenTelemetry's global tracer provider when one is set (the recorder's). At init it
fetches its price table from the internet; here it reads a local one (``pricing_json``, the
same format) with gpt-4o-mini at $0.15 / $0.60 per million tokens, as a user online gets: its
spans carry ``gen_ai.usage.cost``. It also instruments ``httpx``: each call has a ``POST`` child.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from typing import Any

from recording import (  # noqa: I001  (sys.path)
    SDK_LAYOUT,
    SECONDS,
    WEATHER_RESULT,
    Recorder,
    llm_event,
    openai_tool_round,
    tool_round_events,
)
from fake_openai import FakeOpenAI  # noqa: E402

MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}
PRICES = {"chat": {MODEL: {"promptPrice": 0.00015, "completionPrice": 0.0006}}}  # per 1K tokens


def cost(input_tokens: int, output_tokens: int) -> float:
    return input_tokens / 1000 * 0.00015 + output_tokens / 1000 * 0.0006


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    found = llm_event(prompt=prompt, generation=generation, provider="openai", **kwargs)
    if kwargs.get("input_tokens") is not None:
        found["properties"]["cost_usd"] = cost(kwargs["input_tokens"], kwargs["output_tokens"])
    return found


def is_call(span: dict[str, Any]) -> bool:
    return span["scope"] == "openlit.instrumentation.openai"


def record() -> None:
    recorder = Recorder("openlit", SDK_LAYOUT)
    recorder.set_global()
    import openai
    import openlit

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as prices:
        json.dump(PRICES, prices)
    openlit.init(disable_metrics=True, disable_batch=True, pricing_json=prices.name)
    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)

        with recorder.case("chat") as case:
            with recorder.request_span():
                client.chat.completions.create(model=MODEL, messages=[
                    SYSTEM, {"role": "user", "content": "Say hello"}])
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=is_call,
                notes="'chat gpt-4o-mini' (CLIENT, scope openlit.instrumentation.openai): the "
                "GenAI convention (messages, usage, provider) + gen_ai.usage.cost (USD), "
                "gen_ai.server.time_to_first_token even when not streamed (the whole call), "
                "gen_ai.request.stream. A 'POST' httpx child span: not an event.",
            )

        with recorder.case("user_param") as case:
            client.chat.completions.create(model=MODEL, user="u1", messages=[
                {"role": "user", "content": "Say hi"}])
            case.expect(
                llm_events=[event("Say hi", "Echo: Say hi", input_tokens=2, output_tokens=3,
                                  thread=None)],
                llm_spans=is_call,
                notes="No app span: the OpenAI 'user' parameter is gen_ai.request.user.",
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
                                  output_tokens=4, time_to_first_token=SECONDS)],
                llm_spans=is_call,
                notes="Streamed: gen_ai.server.time_to_first_token (seconds).",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.chat.completions.create(model="fail-500", messages=[
                        {"role": "user", "content": "Break"}])
                except openai.InternalServerError:
                    pass
            case.expect(
                llm_events=[event(None, None, model="fail-500", error="InternalServerError")],
                llm_spans=is_call,
                notes="HTTP 500: status ERROR, error.type, exception event; no messages at all "
                "(OpenLIT writes them only with the response): the prompt is unknown.",
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                openai_tool_round(partial(client.chat.completions.create, model=MODEL),
                                  lambda city: WEATHER_RESULT)
            case.expect(
                llm_events=tool_round_events(event),
                llm_spans=is_call,
                notes="Two calls, no tool span (the app ran the tool without one).",
            )


if __name__ == "__main__":
    record()
