"""Record pydantic-ai's own instrumentation, every format version, against the local fake.

Install (own venv, from the repo root) and re-record::

    python3 -m venv /tmp/pai && /tmp/pai/bin/pip install -e . 'pydantic-ai-slim[openai]==2.68.0' \\
        openai==3.57.0 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
    /tmp/pai/bin/python tests/recorders/pydantic_ai_fixtures.py

Writes ``tests/fixtures/spans/pydantic-ai/`` (the default format, version 5, switched on with
``Agent.instrument_all()``) and ``pydantic-ai-v<N>/`` for every other version
``InstrumentationSettings(version=N)`` accepts (2, 3, 4, 6).
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import recording as r
from fake_openai import FAIL_MODEL, TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI
from openai import AsyncOpenAI
from pydantic_ai import Agent, InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

DEFAULT_VERSION = 5
VERSIONS = (2, 3, 4, 5, 6)
MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
CACHED = 4  # the fake reports up to this many prompt tokens as cached

NOTES_COMMON = (
    "Framework wrapper spans: the agent run span (`invoke_agent agent` / `agent run`, "
    "gen_ai.operation.name=invoke_agent) sums usage over the run (gen_ai.aggregated_usage.*) and "
    "must not become an LLM event; `execute_tool get_weather` (`running tool` in v2) spans are "
    "tool runs. Every span carries "
    "gen_ai.conversation.id, a fresh UUID7 per run unless conversation_id= is passed: it is NOT "
    "the app's thread here, which is session.id on the enclosing `handle request` span."
)


def agent_for(client: AsyncOpenAI, model: str, tools: bool) -> Agent:
    chat_model = OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client))
    agent = Agent(chat_model, instructions=r.SYSTEM_PROMPT, name="agent")
    if tools:

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """The current weather in a city."""
            return r.get_weather_result(city)

    return agent


async def stream(agent: Agent, prompt: str) -> str:
    async with agent.run_stream(prompt) as run:
        return await run.get_output()


async def record(recorder: r.Recorder, server: FakeOpenAI, version: int) -> None:
    async with AsyncOpenAI(base_url=server.url, api_key="sk-fake", max_retries=0) as client:
        await record_cases(recorder, client, version)


async def record_cases(recorder: r.Recorder, client: AsyncOpenAI, version: int) -> None:
    chat_span = lambda s: s["name"].startswith("chat ")  # noqa: E731
    # system "You are a terse assistant." (5 words) + user (3) = 8 prompt tokens, 4 of them
    # cached; "Echo: What is OpenTelemetry?" = 4.
    counts = {
        "input_tokens": 8, "output_tokens": 4, "cache_read": 4, "cache_creation": 0, "reasoning": 0
    }
    answer = f"Echo: {r.QUESTION}"
    chat = r.llm_event(prompt=r.QUESTION, generation=answer, model=RESPONSE_MODEL, **counts)

    with recorder.case("chat") as case:
        with recorder.request_span():
            await agent_for(client, MODEL, tools=False).run(r.QUESTION)
        case.expect(llm_events=[chat], llm_spans=chat_span, notes=NOTES_COMMON)

    with recorder.case("stream") as case:
        with recorder.request_span():
            await stream(agent_for(client, MODEL, tools=False), r.QUESTION)
        ttft = r.attribute("gen_ai.client.operation.time_to_first_chunk")
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.QUESTION,
                    generation=answer,
                    model=RESPONSE_MODEL,
                    time_to_first_token=ttft,
                    **counts,
                )
            ],
            llm_spans=chat_span,
            notes=NOTES_COMMON + " The stream's chat span records gen_ai.client.operation."
            "time_to_first_chunk (seconds) and full usage (pydantic-ai asks for include_usage).",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                await agent_for(client, FAIL_MODEL, tools=False).run(r.QUESTION)
            except Exception as exc:  # the app sees ModelServerError (a ModelHTTPError)
                print("error case raised", type(exc).__name__)
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.QUESTION,
                    generation=None,
                    model=FAIL_MODEL,
                    error="pydantic_ai.exceptions.ModelServerError",
                )
            ],
            llm_spans=chat_span,
            notes=NOTES_COMMON + " The failed chat span has status ERROR and an `exception` event "
            "(exception.type pydantic_ai.exceptions.ModelServerError, HTTP 500) but no input "
            "messages: the prompt is only on its parent, the agent run span "
            "(`pydantic_ai.all_messages`). No tokens are known.",
        )

    tool_role = "tool" if version >= 6 else "user"
    with recorder.case("tool_call") as case:
        with recorder.request_span():
            await agent_for(client, MODEL, tools=True).run(r.WEATHER_QUESTION)
        case.expect(
            llm_events=[
                # system 5 + user 5 = 10 prompt tokens; a tool call has no text (0 words).
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"tool_call: get_weather({TOOL_ARGUMENTS})",
                    model=RESPONSE_MODEL,
                    input_tokens=10,
                    output_tokens=0,
                    cache_read=4,
                    cache_creation=0,
                    reasoning=0,
                ),
                # + the tool result "Sunny, 21C" (2) = 12; "Tool said: Sunny, 21C" = 4.
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"Tool said: {r.WEATHER_RESULT}",
                    model=RESPONSE_MODEL,
                    input_tokens=12,
                    output_tokens=4,
                    cache_read=4,
                    cache_creation=0,
                    reasoning=0,
                ),
            ],
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=chat_span,
            notes=NOTES_COMMON + f" The second chat call's last input message is the tool result "
            f"(role `{tool_role}` in this format version, a `tool_call_response` part): the prompt "
            "is the last user TEXT. pydantic-ai leaves gen_ai.usage.output_tokens out when it is 0 "
            "(the tool-call reply): 0, not unknown. The tool-call arguments in the output message "
            "are the provider's string ('{\"city\": \"Paris\"}'), the execute_tool span's "
            'gen_ai.tool.call.arguments is re-serialised (\'{"city":"Paris"}\').',
        )

    with recorder.case("conversation_id") as case:
        # pydantic-ai's own mechanism, no request span: conversation_id= and run metadata.
        await agent_for(client, MODEL, tools=False).run(
            r.QUESTION, conversation_id=r.THREAD_ID, metadata={"user_id": r.USER_ID}
        )
        case.expect(
            llm_events=[chat],
            llm_spans=chat_span,
            notes="No app span: thread from gen_ai.conversation.id (on every span, and in "
            "baggage); "
            'user only inside the agent run span\'s `metadata` JSON attribute ({"user_id": "u1"}), '
            "which the chat span does not repeat: read it from the ancestor agent span.",
        )


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)  # versions 2-4 are deprecated formats
    for version in VERSIONS:
        name = "pydantic-ai" if version == DEFAULT_VERSION else f"pydantic-ai-v{version}"
        recorder = r.Recorder(name)
        settings: dict[str, Any] = {"tracer_provider": recorder.provider}
        if version != DEFAULT_VERSION:
            settings["version"] = version
        Agent.instrument_all(InstrumentationSettings(**settings))
        with FakeOpenAI(cached_tokens=CACHED) as server:
            asyncio.run(record(recorder, server, version))


if __name__ == "__main__":
    main()
