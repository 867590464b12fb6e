"""Record the OpenAI Agents SDK through OpenInference, Responses API and chat completions.

Install (own venv, from the repo root) and re-record::

    python3 -m venv /tmp/oai-agents && /tmp/oai-agents/bin/pip install -e . openai-agents==0.24.0 \\
        openinference-instrumentation-openai-agents==2.6.0 openai==3.57.0 \\
        opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
    /tmp/oai-agents/bin/python tests/recorders/openai_agents_fixtures.py

Writes ``tests/fixtures/spans/openai-agents-responses/`` (``OpenAIResponsesModel``, the SDK's
default) and ``openai-agents-chatcompletions/`` (``OpenAIChatCompletionsModel``). The SDK's own
trace export to OpenAI is replaced: the instrumentor installs its processor exclusively.
"""

from __future__ import annotations

import asyncio
from typing import Any

import recording as r
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
)
from fake_openai import FAIL_MODEL, TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI
from openai import AsyncOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
CACHED = 4
FLAVOURS = {"responses": OpenAIResponsesModel, "chatcompletions": OpenAIChatCompletionsModel}

NOTES_COMMON = (
    "Span tree: `Agent workflow` (AGENT, the SDK trace) > `assistant` (AGENT) > the model call "
    "(LLM: `response` for the Responses API, `generation` for chat completions), plus "
    "`get_weather` (TOOL) spans beside the model calls. Only openinference.span.kind=LLM spans "
    "become LLM events; AGENT/CHAIN/TOOL spans are wrappers or tool runs."
)


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return r.get_weather_result(city)


def agent_for(client: AsyncOpenAI, flavour: str, model: str, tools: bool) -> Agent:
    llm = FLAVOURS[flavour](model=model, openai_client=client)
    return Agent(
        name="assistant",
        instructions=r.SYSTEM_PROMPT,
        model=llm,
        tools=[get_weather] if tools else [],
        # What the SDK does by itself against api.openai.com; a base_url it doesn't recognise
        # as OpenAI's would otherwise get streams without usage.
        model_settings=ModelSettings(include_usage=True),
    )


async def drain(agent: Agent, prompt: str) -> None:
    result = Runner.run_streamed(agent, prompt)
    async for _ in result.stream_events():
        pass


async def record_cases(recorder: r.Recorder, client: AsyncOpenAI, flavour: str) -> None:
    llm_span = r.is_openinference_llm
    responses = flavour == "responses"
    # instructions (5 words) + user (3) = 8 input tokens, 4 cached; the reply 4 words.
    # The chat completions `generation` span knows neither the response model nor the cached
    # and reasoning counts (except in a stream's output.value): those are left out.
    known = {"cache_read": 4, "cache_creation": 0, "reasoning": 0} if responses else {}
    model = RESPONSE_MODEL if responses else MODEL
    counts: dict[str, Any] = {"input_tokens": 8, "output_tokens": 4, **known}
    answer = f"Echo: {r.QUESTION}"
    chat = r.llm_event(prompt=r.QUESTION, generation=answer, model=model, **counts)

    with recorder.case("chat") as case:
        with recorder.request_span():
            await Runner.run(agent_for(client, flavour, MODEL, tools=False), r.QUESTION)
        case.expect(llm_events=[chat], llm_spans=llm_span, notes=NOTES_COMMON)

    with recorder.case("stream") as case:
        with recorder.request_span():
            await drain(agent_for(client, flavour, MODEL, tools=False), r.QUESTION)
        stream_notes = (
            " Streamed: the Responses API span is the same as without streaming (the SDK keeps "
            "the final `response.completed` object)."
            if responses
            else " Streamed chat completions: no llm.output_messages; the text is only in "
            "output.value, a JSON list holding one Responses-API-shaped object the SDK built "
            "(output[0].content[0].text, model = request model, usage with "
            "input_tokens_details.cached_tokens=4 and output_tokens_details.reasoning_tokens=0 "
            "- the only place the chat completions flavour shows cached tokens)."
        )
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.QUESTION,
                    generation=answer,
                    model=model,
                    time_to_first_token=r.NOT_RECORDED,
                    **{**counts, "cache_read": 4, "cache_creation": 0, "reasoning": 0},
                )
            ],
            llm_spans=llm_span,
            notes=NOTES_COMMON + stream_notes + " No time to first token is recorded.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                await Runner.run(agent_for(client, flavour, FAIL_MODEL, tools=False), r.QUESTION)
            except Exception as exc:  # the app sees openai.InternalServerError
                print("error case raised", type(exc).__name__)
        # No exception event: the only error text is the status description.
        error = (
            "Error getting response: {'error': 'Error code: 500 - The server had an error "
            "while processing your request.'}"
        )
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=None if responses else r.QUESTION,
                    generation=None,
                    model=None if responses else FAIL_MODEL,
                    error=error,
                )
            ],
            llm_spans=llm_span,
            notes=NOTES_COMMON
            + (
                " HTTP 500 on the Responses API: the `response` span keeps only llm.system and its "
                "ERROR status - no model, no input, no exception event - so prompt and model "
                "cannot be known; the `assistant` AGENT span is ERROR too (not a second event)."
                if responses
                else " HTTP 500: the `generation` span has status ERROR, the request model and the "
                "input messages, no exception event; the `assistant` AGENT span is ERROR too."
            )
            + " The error is the status description (the app saw openai.InternalServerError).",
        )

    # The second call's input: Responses counts the function_call item's arguments (2 words)
    # and the function_call_output (2); chat completions counts the tool message only (2).
    second_input = 14 if responses else 12
    with recorder.case("tool_call") as case:
        with recorder.request_span():
            await Runner.run(agent_for(client, flavour, MODEL, tools=True), r.WEATHER_QUESTION)
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"tool_call: get_weather({TOOL_ARGUMENTS})",
                    model=model,
                    input_tokens=10,
                    output_tokens=0,
                    **known,
                ),
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"Tool said: {r.WEATHER_RESULT}",
                    model=model,
                    input_tokens=second_input,
                    output_tokens=4,
                    **known,
                ),
            ],
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=llm_span,
            notes=NOTES_COMMON + " The tool span `get_weather` (TOOL) has no tool call id: it is "
            "only in the first LLM span's output tool call and the second one's input "
            "(role `tool` message with tool_call_id): match by tool name and order. The "
            "tool-call reply's output tokens (0) are "
            + (
                "written as llm.token_count.completion=0."
                if responses
                else "left out (no llm.token_count.completion): 0, not unknown."
            ),
        )

    with recorder.case("using_attributes") as case:
        # OpenInference's own mechanism, no request span.
        with using_attributes(user_id=r.USER_ID, session_id=r.THREAD_ID):
            await Runner.run(agent_for(client, flavour, MODEL, tools=False), r.QUESTION)
        case.expect(
            llm_events=[chat],
            llm_spans=llm_span,
            notes="No app span: `using_attributes(user_id=, session_id=)` puts user.id and "
            "session.id on every OpenInference span.",
        )

    with recorder.case("group_id") as case:
        # The SDK's own mechanism, no request span: RunConfig(group_id=, trace_metadata=).
        config = RunConfig(group_id=r.THREAD_ID, trace_metadata={"user_id": r.USER_ID})
        await Runner.run(
            agent_for(client, flavour, MODEL, tools=False), r.QUESTION, run_config=config
        )
        case.expect(
            llm_events=[{**chat, "user_id": None, "thread_id": None}],
            llm_spans=llm_span,
            notes="No app span: the SDK's RunConfig(group_id='t-42', trace_metadata={'user_id': "
            "'u1'}) is dropped by OpenInference (its trace-start span has only the kind), so "
            "neither user nor thread can be known from these spans.",
        )


async def record(flavour: str) -> None:
    recorder = r.Recorder(f"openai-agents-{flavour}")
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=recorder.provider)
    try:
        with FakeOpenAI(cached_tokens=CACHED) as server:
            async with AsyncOpenAI(base_url=server.url, api_key="sk-fake", max_retries=0) as client:
                await record_cases(recorder, client, flavour)
    finally:
        instrumentor.uninstrument()


if __name__ == "__main__":
    for flavour in FLAVOURS:
        asyncio.run(record(flavour))
