"""Record the OpenAI Agents SDK under OTel contrib's ``opentelemetry-instrumentation-openai-agents-v2``.

Writes ``tests/fixtures/spans/openai-agents-v2-{responses,chatcompletions}/<case>.json``; the
agent's model talks to ``tests/fake_openai.py``::

    python -m venv /tmp/agv2-venv && /tmp/agv2-venv/bin/pip install -e . openai-agents==0.24.0 \\
        opentelemetry-instrumentation-openai-agents-v2==0.1.0 opentelemetry-util-genai==1.3b0 \\
        openai==3.63.0 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/agv2-venv/bin/python tests/recorders/openai_agents_otel.py
    /tmp/agv2-venv/bin/pip install opentelemetry-instrumentation-openai==0.62.4  # then:
    PYTHONPATH=. /tmp/agv2-venv/bin/python tests/recorders/openai_agents_otel.py with-openllmetry

``with-openllmetry`` (``openai-agents-v2-with-openllmetry/``, chat completions) adds OpenLLMetry's
OpenAI instrumentation: its ``openai.chat`` span is a child of the agent's ``chat`` span, the
same call twice.

The instrumentor adds a processor to the Agents SDK's own tracing, beside the SDK's exporter to
OpenAI (removed here: ``set_trace_processors([])``, as no key is set), and turns each SDK span
into an OpenTelemetry span with ``gen_ai.*`` attributes. Message content is captured unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says otherwise.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import recording as r
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)
from agents.tracing import set_trace_processors
from fake_openai import FAIL_MODEL, FakeOpenAI
from openai import AsyncOpenAI
from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

MODEL = "gpt-4o-mini"
FLAVOURS = {"responses": OpenAIResponsesModel, "chatcompletions": OpenAIChatCompletionsModel}
NOTES = (
    "opentelemetry-instrumentation-openai-agents-v2 0.1.0: `Agent workflow` (SERVER) > "
    "`invoke_agent assistant` (CLIENT, gen_ai.operation.name=invoke_agent, with the run's input "
    "and output messages: a wrapper) > `chat <model>` (CLIENT, gen_ai.operation.name=chat: the "
    "model call, the LLM event) and `execute_tool get_weather`; `unknown` INTERNAL spans "
    "(gen_ai.operation.name=unknown) for the SDK's other spans. Content in "
    "gen_ai.input.messages / gen_ai.output.messages; tokens gen_ai.usage.input_tokens / "
    "output_tokens only (no cached or reasoning count); server.address is api.openai.com "
    "whatever the client's base URL. A reply that is not plain text is written as a Python repr "
    "in a text part: a chat completions tool call as the message's dict repr, a Responses tool "
    "call as `ResponseFunctionToolCall(...)`, a chat completions stream as the whole response's "
    "dict repr: the generation is read from it."
)


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return r.get_weather_result(city)


def is_model_call(span: r.SpanDict) -> bool:
    """A ``chat`` span; with OpenLLMetry too, of the call's two the one that knows more: its
    ``openai.chat`` (response model, cached count), but the agent's when the call failed."""
    if span["attributes"].get("gen_ai.operation.name") != "chat":
        return False
    if not WITH_OPENLLMETRY:
        return True
    return (span["name"] == "openai.chat") == (span["status"]["code"] != "ERROR")


async def drain(agent: Agent, prompt: str) -> None:
    result = Runner.run_streamed(agent, prompt)
    async for _ in result.stream_events():
        pass


async def record_cases(recorder: r.Recorder, client: AsyncOpenAI, flavour: str) -> None:
    def agent(model: str = MODEL, tools: bool = False) -> Agent:
        return Agent(
            name="assistant",
            instructions=r.SYSTEM_PROMPT,
            model=FLAVOURS[flavour](model=model, openai_client=client),
            tools=[get_weather] if tools else [],
            model_settings=ModelSettings(include_usage=True),
        )

    responses = flavour == "responses"
    # the Responses span names the response model, the chat completions one the request model;
    # OpenLLMetry's span of the same call adds the response model and the cached count
    model = f"{MODEL}-2024-07-18" if responses or WITH_OPENLLMETRY else MODEL
    known = {"cache_read": 4, "reasoning": 0} if WITH_OPENLLMETRY else {}

    def event(prompt: str, generation: str, **tokens: Any) -> dict[str, Any]:
        if "output_tokens" in tokens:
            tokens.update(known)
        return r.llm_event(prompt=prompt, generation=generation, model=model, **tokens)

    # instructions (5 words) + question (3): 8 in, 4 out
    chat = event(r.QUESTION, f"Echo: {r.QUESTION}", input_tokens=8, output_tokens=4)
    with recorder.case("chat") as case:
        with recorder.request_span():
            await Runner.run(agent(), r.QUESTION)
        case.expect(llm_events=[chat], llm_spans=is_model_call, notes=NOTES)

    with recorder.case("stream") as case:
        with recorder.request_span():
            await drain(agent(), r.QUESTION)
        case.expect(
            llm_events=[event(r.QUESTION, f"Echo: {r.QUESTION}", input_tokens=8, output_tokens=4,
                              time_to_first_token=r.NOT_RECORDED)],
            llm_spans=is_model_call,
            notes=NOTES + " Runner.run_streamed: no first-token time recorded."
            + ("" if responses else " Chat completions: the reply is the streamed response's "
               "dict repr."),
        )

    with recorder.case("tool_call") as case:
        with recorder.request_span():
            await Runner.run(agent(tools=True), r.WEATHER_QUESTION)
        # Responses input counts the function call item's words too: 14 in the 2nd call, not 12
        case.expect(
            llm_events=[
                event(r.WEATHER_QUESTION, r.TOOL_GENERATION, input_tokens=10, output_tokens=0),
                event(r.WEATHER_QUESTION, f"Tool said: {r.WEATHER_RESULT}",
                      input_tokens=14 if responses else 12, output_tokens=4),
            ],
            events=[r.tool_event(None)],
            llm_spans=is_model_call,
            notes=NOTES + " The tool call reply is a repr ("
            + ("`ResponseFunctionToolCall(...)`" if responses else "the message's dict") + "); "
            "`execute_tool get_weather` has gen_ai.tool.name, .call.arguments and .call.result, "
            "no call id.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                await Runner.run(agent(model=FAIL_MODEL), r.QUESTION)
            except Exception as error:  # openai.InternalServerError
                print("error case raised", type(error).__name__)
        case.expect(
            # the agent's span names no error class (OpenLLMetry's does); the Responses span has
            # no request either
            llm_events=[r.llm_event(prompt=None if responses else r.QUESTION, generation=None,
                                    model=None if responses else FAIL_MODEL,
                                    error="openai.InternalServerError" if WITH_OPENLLMETRY
                                    else "error")],
            llm_spans=is_model_call,
            notes=NOTES + " HTTP 500: the `chat` span has status ERROR ('Error getting response: "
            "{...}'), no error.type nor exception event; with chat completions it keeps the "
            "request (messages, request model), with the Responses API nothing of the call. "
            "`invoke_agent` is ERROR too (a wrapper).",
        )


WITH_OPENLLMETRY = sys.argv[1:] == ["with-openllmetry"]


def main() -> None:
    set_trace_processors([])  # the SDK's own exporter to OpenAI
    for flavour in ["chatcompletions"] if WITH_OPENLLMETRY else FLAVOURS:
        recorder = r.Recorder("openai-agents-v2-with-openllmetry" if WITH_OPENLLMETRY
                              else f"openai-agents-v2-{flavour}")
        instrumentor = OpenAIAgentsInstrumentor()
        instrumentor.instrument(tracer_provider=recorder.provider)
        if WITH_OPENLLMETRY:
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument(tracer_provider=recorder.provider)
        with FakeOpenAI(cached_tokens=4) as server:
            client = AsyncOpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
            asyncio.run(record_cases(recorder, client, flavour))
        instrumentor.uninstrument()


if __name__ == "__main__":
    main()
