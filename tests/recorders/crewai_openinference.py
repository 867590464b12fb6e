"""Record CrewAI (an ``LLM`` call and a one-agent ``Crew`` with a tool) through OpenInference.

Writes ``tests/fixtures/spans/crewai-openinference/<case>.json``; CrewAI's native OpenAI provider
(the ``openai`` client inside) talks to ``tests/fake_openai.py``::

    python -m venv /tmp/crew-venv && /tmp/crew-venv/bin/pip install -e . crewai==1.15.30 \\
        openinference-instrumentation-crewai==1.1.21 openinference-instrumentation-openai==0.1.66 \\
        opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/crew-venv/bin/python tests/recorders/crewai_openinference.py

OpenInference's CrewAI instrumentor traces the crew, its tasks and tools; the model calls come
from its OpenAI instrumentor (CrewAI 1.x calls OpenAI through the ``openai`` client), as
OpenInference's CrewAI guide sets up. CrewAI's own telemetry is off
(``CREWAI_DISABLE_TELEMETRY``).
"""

from __future__ import annotations

import os

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ.setdefault("OPENAI_API_KEY", "sk-fake")

import recording as r  # noqa: E402
from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402
from fake_openai import FAIL_MODEL, FakeOpenAI  # noqa: E402
from openinference.instrumentation.crewai import CrewAIInstrumentor  # noqa: E402
from openinference.instrumentation.openai import OpenAIInstrumentor  # noqa: E402

MODEL = "gpt-4o-mini"
CACHED = 4
NOTES = (
    "OpenInference CrewAI 1.1.21 + OpenAI 0.1.66 on crewai 1.15.30: the model call is the OpenAI "
    "instrumentor's `ChatCompletion` span (LLM kind; request and response JSON in input.value / "
    "output.value, llm.input_messages / llm.output_messages, llm.token_count.* with "
    "prompt_details.cache_read, llm.model_name = the response model). CrewAI's spans are "
    "wrappers: `Crew_<id>.kickoff` (CHAIN: crew_key, crew_agents, crew_tasks JSON), "
    "`<role>._execute_core` (AGENT kind, the task: task_key, task_id, the agent as input.value); the tool run "
    "is `<tool>.run` (TOOL: tool.name, tool.parameters, input.value = the arguments)."
)


@tool("get_weather")
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return r.get_weather_result(city)


def record_cases(recorder: r.Recorder, server: FakeOpenAI) -> None:
    def llm(model: str = MODEL) -> LLM:
        return LLM(model=model, base_url=server.url, api_key="sk-fake", max_retries=0)

    def answers(since: int) -> list[dict[str, object]]:
        return r.fake_openai_answers(server.requests[since:], CACHED, reasoning=0,
                                     model=f"{MODEL}-2024-07-18")

    with recorder.case("chat") as case:
        since = len(server.requests)
        with recorder.request_span():
            llm().call(r.QUESTION)
        case.expect(llm_events=answers(since), llm_spans=r.is_openinference_llm,
                    notes=NOTES + " `LLM.call(text)`: one user message.")

    with recorder.case("tool_call") as case:
        since = len(server.requests)
        agent = Agent(role="weather", goal="Answer weather questions", backstory="Terse.",
                      llm=llm(), tools=[get_weather], max_iter=2)
        task = Task(description=r.WEATHER_QUESTION, expected_output="the weather", agent=agent)
        with recorder.request_span():
            Crew(agents=[agent], tasks=[task]).kickoff()
        case.expect(
            # CrewAI's system and user prompts around the task; the fake's tool call, then its
            # answer from the tool result
            llm_events=answers(since),
            events=[r.tool_event("call_fake_0001")],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " A crew of one agent with a tool: two model calls and a tool run; "
            "the tool call id comes from the next call's tool message.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                llm(FAIL_MODEL).call(r.QUESTION)
            except Exception as error:  # openai.InternalServerError
                print("error case raised", type(error).__name__)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=None, model=FAIL_MODEL,
                                    error="openai.InternalServerError")],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " HTTP 500: status ERROR, an exception event; the request present.",
        )


def main() -> None:
    recorder = r.Recorder("crewai-openinference")
    CrewAIInstrumentor().instrument(tracer_provider=recorder.provider)
    OpenAIInstrumentor().instrument(tracer_provider=recorder.provider)
    with FakeOpenAI(cached_tokens=CACHED) as server:
        record_cases(recorder, server)


if __name__ == "__main__":
    main()
