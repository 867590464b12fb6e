"""Record Logfire's OpenAI Agents SDK integration: ``logfire.instrument_openai_agents()``.

Writes ``tests/fixtures/spans/logfire-openai-agents-{responses,chatcompletions}/<case>.json``;
the agents' models talk to ``tests/fake_openai.py`` (4 cached prompt tokens)::

    python -m venv /tmp/lf-agents && /tmp/lf-agents/bin/pip install -e . logfire==5.4.0 \\
        openai-agents==0.24.0 openai==3.63.0 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/lf-agents/bin/python tests/recorders/logfire_openai_agents.py

``logfire.configure(send_to_logfire=False)`` with the recorder's exporter as an extra processor,
as in ``logfire_openai.py``. Logfire turns the SDK's own trace (not OpenTelemetry) into spans
(scope ``logfire.openai_agents``): no OpenAI instrumentation beside it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from recording import SDK_LAYOUT, Recorder  # noqa: I001  (puts tests/ on sys.path)
import recording as r
from fake_openai import FAIL_MODEL, TOOL_ARGUMENTS, FakeOpenAI

MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
NOTES = (
    "Span tree: `OpenAI Agents trace: {name}` > `Task: Agent workflow` > `Agent run: {name!r}` > "
    "`Turn {turn} for agent assistant` > the model call, plus `Function: {name}` (tool run: "
    "`name`, `input`, `output`). Every one has gen_ai.system=openai: only the model-call span is "
    "an event. The app span (made through Logfire's provider) has session.id scrubbed "
    "(\"[Scrubbed due to 'session']\"): no thread is known. "
)
RESPONSES_NOTES = (
    "`Responses API with {gen_ai.request.model!r}` (gen_ai.operation.name=chat): GenAI model and "
    "usage (cache_read included); the conversation and the reply only as `events` (JSON list of "
    "gen_ai.*.message events, the reply the trailing assistant ones), also `raw_input` / "
    "`response` (the Responses API object). operation.cost when genai-prices is installed."
)
CHAT_NOTES = (
    "`Chat completion with {gen_ai.request.model!r}` (no gen_ai.operation.name: gen_ai.system + "
    "request model): gen_ai.response.model is the REQUEST model (the SDK never sees the dated "
    "one); `request_data` / `input` hold the messages, `output` the reply messages (a stream: a "
    "Responses-shaped object the SDK built), cached tokens only in the SDK's `usage` JSON."
)


async def record_cases(recorder: Recorder, flavour: str, client: Any) -> None:
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        RunConfig,
        Runner,
        function_tool,
    )

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return r.get_weather_result(city)

    kind = OpenAIResponsesModel if flavour == "responses" else OpenAIChatCompletionsModel

    def agent(model: str = MODEL, tools: bool = False) -> Agent:
        return Agent(name="assistant", instructions=r.SYSTEM_PROMPT,
                     model=kind(model=model, openai_client=client),
                     tools=[get_weather] if tools else [],
                     model_settings=ModelSettings(include_usage=True))

    responses = flavour == "responses"
    notes = NOTES + (RESPONSES_NOTES if responses else CHAT_NOTES)
    model = RESPONSE_MODEL if responses else MODEL

    def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
        if "input_tokens" in kwargs:
            kwargs.update(cache_read=4, cache_creation=0, reasoning=0)
        return r.llm_event(prompt=prompt, generation=generation, **{"model": model, "thread": None, **kwargs})

    answer = f"Echo: {r.QUESTION}"
    is_call = lambda s: s["name"].startswith(("Responses API with", "Chat completion with"))  # noqa: E731

    with recorder.case("chat") as case:
        with recorder.request_span():
            await Runner.run(agent(), r.QUESTION)
        case.expect(llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4)],
                    llm_spans=is_call, notes=notes)

    with recorder.case("stream") as case:
        with recorder.request_span():
            async for _ in Runner.run_streamed(agent(), r.QUESTION).stream_events():
                pass
        case.expect(llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4)],
                    llm_spans=is_call, notes=notes + " Streamed: one span, as without streaming; "
                    "no time to first token.")

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                await Runner.run(agent(FAIL_MODEL), r.QUESTION)
            except Exception as exc:  # the app sees openai.InternalServerError
                print("error case raised", type(exc).__name__)
        case.expect(
            llm_events=[event(None if responses else r.QUESTION, None, model=FAIL_MODEL,
                              error="InternalServerError")],
            llm_spans=is_call,
            notes=notes + " HTTP 500: status ERROR + exception event; "
            + ("no `events`: the prompt is on no span." if responses
               else "`request_data` still holds the prompt."),
        )

    with recorder.case("tool_call") as case:
        with recorder.request_span():
            await Runner.run(agent(tools=True), r.WEATHER_QUESTION)
        case.expect(
            llm_events=[
                event(r.WEATHER_QUESTION, f"tool_call: get_weather({TOOL_ARGUMENTS})",
                      input_tokens=10, output_tokens=0),
                # Responses counts the function_call item's arguments and its output (2 + 2).
                event(r.WEATHER_QUESTION, f"Tool said: {r.WEATHER_RESULT}",
                      input_tokens=14 if responses else 12, output_tokens=4),
            ],
            events=[r.tool_event(None)],
            llm_spans=is_call,
            notes=notes + " The tool run `Function: {name}` has no call id.",
        )

    with recorder.case("group_id") as case:
        # The SDK's own mechanism, no app span: RunConfig(group_id=, trace_metadata=).
        config = RunConfig(group_id=r.THREAD_ID, trace_metadata={"user_id": r.USER_ID})
        await Runner.run(agent(), r.QUESTION, run_config=config)
        case.expect(
            llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4,
                              thread=r.THREAD_ID)],
            llm_spans=is_call,
            notes=notes + " No app span: the trace span carries group_id='t-42' and "
            "metadata='{\"user_id\": \"u1\"}' (JSON).",
        )


async def record(flavour: str) -> None:
    import logfire
    from openai import AsyncOpenAI
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    recorder = Recorder(f"logfire-openai-agents-{flavour}", SDK_LAYOUT)
    logfire.configure(send_to_logfire=False, console=False,
                      additional_span_processors=[SimpleSpanProcessor(recorder.exporter)],
                      advanced=logfire.AdvancedOptions(id_generator=SDK_LAYOUT.ids()))
    from opentelemetry import trace

    recorder.tracer = trace.get_tracer("app")
    logfire.instrument_openai_agents()
    with FakeOpenAI(cached_tokens=4) as server:
        async with AsyncOpenAI(base_url=server.url, api_key="sk-fake", max_retries=0) as client:
            await record_cases(recorder, flavour, client)


if __name__ == "__main__":
    for flavour in ("responses", "chatcompletions"):
        asyncio.run(record(flavour))
