"""Record Strands Agents fixtures: its built-in tracing, with its OpenAI model provider.

Writes ``tests/fixtures/spans/strands-agents{,-latest}/<case>.json``; the model talks to
``tests/fake_openai.py``. One mode per process::

    python -m venv /tmp/strands-venv && /tmp/strands-venv/bin/pip install \
        'strands-agents[openai]==1.62.0' openai==2.54.0 opentelemetry-sdk==1.45.1
    for mode in default latest; do
        PYTHONPATH=. /tmp/strands-venv/bin/python tests/recorders/strands_agents.py $mode; done

``latest`` sets ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` (read at import).
Strands traces on OpenTelemetry's global tracer provider (the recorder's). Its OpenAI model
always streams; every agent call is ``invoke_agent`` > ``execute_event_loop_cycle`` > ``chat``
(+ ``execute_tool``), all with ``gen_ai.*`` attributes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if len(sys.argv) > 1 and sys.argv[1] == "latest":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"

from recording import (  # noqa: E402,I001  (sys.path)
    SDK_LAYOUT,
    SECONDS,
    TOOL_GENERATION,
    Recorder,
    get_weather_result,
    llm_event,
    tool_event,
)
from fake_openai import TOOL_CALL_ID, FakeOpenAI  # noqa: E402

MODEL = "gpt-4o-mini"


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("time_to_first_token", SECONDS)
    return llm_event(prompt=prompt, generation=generation, provider=None, **kwargs)


def is_call(span: dict[str, Any]) -> bool:
    return span["attributes"].get("gen_ai.operation.name") == "chat"


def record(mode: str) -> None:
    from strands import Agent, tool
    from strands.models.openai import OpenAIModel

    recorder = Recorder("strands-agents" + ("-latest" if mode == "latest" else ""), SDK_LAYOUT)
    recorder.set_global()

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return get_weather_result(city)

    where = ("span events gen_ai.client.inference.operation.details holding "
             "gen_ai.input.messages / gen_ai.output.messages / gen_ai.system_instructions"
             if mode == "latest" else "span events gen_ai.{system,user,assistant,tool}.message "
             "(content: JSON block list '[{\"text\": ...}]') and gen_ai.choice (message: block "
             "JSON, or toolUse blocks)")
    common = (f"'chat' spans (INTERNAL, scope strands.telemetry.tracer) under invoke_agent > "
              f"execute_event_loop_cycle; content in {where}. gen_ai.system / provider.name is "
              "'strands-agents' (the framework, not the provider): no provider. Only the "
              "request model. gen_ai.server.time_to_first_token in MILLISECONDS.")

    with FakeOpenAI() as server:
        def agent(model: str = MODEL, **kwargs: Any) -> Any:
            provider = OpenAIModel(client_args={"base_url": server.url, "api_key": "sk-fake",
                                                "max_retries": 0}, model_id=model)
            return Agent(model=provider, system_prompt="You are terse.", callback_handler=None,
                         **kwargs)

        with recorder.case("chat") as case:
            with recorder.request_span():
                agent()("Say hello")
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=8, output_tokens=3)],
                llm_spans=is_call, notes=common,
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                agent(tools=[get_weather])("Weather in Paris?")
            case.expect(
                llm_events=[
                    event("Weather in Paris?", TOOL_GENERATION, input_tokens=9, output_tokens=0),
                    event("Weather in Paris?", "Tool said: Sunny, 21C", input_tokens=11,
                          output_tokens=4),
                ],
                events=[tool_event(TOOL_CALL_ID)],
                llm_spans=is_call,
                notes=common + " Tool run: 'execute_tool get_weather' (gen_ai.tool.name, "
                "gen_ai.tool.call.id). Token counts are the fake's word counts of what Strands "
                "sent (content as part lists).",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    agent(model="fail-500")("Break")
                except Exception:
                    pass
            case.expect(
                llm_events=[event("Break", None, model="fail-500", error="InternalServerError",
                                  time_to_first_token=None)],
                llm_spans=is_call,
                notes=common + " HTTP 500: status ERROR + exception event on every span.",
            )

        with recorder.case("trace_attributes") as case:
            agent(trace_attributes={"user.id": "u1", "session.id": "t-42"})("Say hi")
            case.expect(
                llm_events=[event("Say hi", "Echo: Say hi", input_tokens=8, output_tokens=3)],
                llm_spans=is_call,
                notes=common + " No app span: Agent(trace_attributes=...) puts user.id / "
                "session.id on the agent's spans.",
            )


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "default")
