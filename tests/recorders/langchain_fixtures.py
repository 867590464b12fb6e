"""Record LangChain / LangGraph (``ChatOpenAI``) through OpenInference and through OpenLLMetry.

Install (own venv, from the repo root) and re-record::

    python3 -m venv /tmp/lc && /tmp/lc/bin/pip install -e . langchain==1.5.2 \\
        langchain-core==1.8.3 langchain-openai==1.7.4 langgraph==1.2.24 openai==3.57.0 \\
        openinference-instrumentation-langchain==0.1.80 \\
        opentelemetry-instrumentation-langchain==0.62.4 \\
        opentelemetry-instrumentation-openai==0.62.4 \\
        opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
    /tmp/lc/bin/python tests/recorders/langchain_fixtures.py

Each setup runs in its own process (instrumentors patch LangChain globally) and writes
``tests/fixtures/spans/<setup>/``:

* ``langchain-openinference``: ``openinference-instrumentation-langchain``;
* ``langchain-openllmetry``: ``opentelemetry-instrumentation-langchain``;
* ``langchain-openllmetry-with-openai``: the same plus OpenLLMetry's OpenAI instrumentation
  (``opentelemetry-instrumentation-openai``), which OpenLLMetry's LangChain instrumentation
  suppresses under its own span: still one span per call;
* ``langchain-openinference-with-openai``: OpenInference's LangChain instrumentation plus
  OpenLLMetry's OpenAI one, which nothing suppresses: every model call has two LLM spans,
  siblings, or in two traces when no app span is current (one LLM event expected).

The agent is LangChain 1.x ``create_agent`` (a LangGraph graph) with a ``get_weather`` tool.
Cases ``metadata_*`` use LangChain's own mechanism, ``config={"metadata": {"user_id": "u1",
"session_id": "t-42"}}``, without the app's request span.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import recording as r
from fake_openai import FAIL_MODEL, TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI
from langchain_expectations import KNOWABLE, RESPONSE_MODEL

MODEL = "gpt-4o-mini"
CACHED = 4
METADATA = {"metadata": {"user_id": r.USER_ID, "session_id": r.THREAD_ID}}
SETUPS = (
    "langchain-openinference",
    "langchain-openllmetry",
    "langchain-openllmetry-with-openai",
    "langchain-openinference-with-openai",
)


def instrument(setup: str, provider: Any) -> None:
    if setup.startswith("langchain-openinference"):
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    else:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=provider)
    if setup.endswith("-with-openai"):
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)


def llm_span_rule(setup: str) -> Callable[[r.SpanDict], bool]:
    """Which span is THE model call: the one an LLM event must come from."""
    if setup.startswith("langchain-openinference"):
        # With OpenLLMetry's OpenAI instrumentation too, its `openai.chat` span is the duplicate:
        # the LangChain span is the one in the app's trace, with the user and session.
        return r.is_openinference_llm
    return lambda s: s["name"] == "ChatOpenAI.chat"


def chat_model(server: FakeOpenAI, model: str) -> Any:
    from langchain_openai import ChatOpenAI

    # stream_usage=True: what ChatOpenAI does by itself against api.openai.com.
    return ChatOpenAI(
        model=model, base_url=server.url, api_key="sk-fake", max_retries=0, stream_usage=True
    )


def weather_agent(server: FakeOpenAI) -> Any:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return r.get_weather_result(city)

    return create_agent(
        chat_model(server, MODEL), tools=[get_weather], system_prompt=r.SYSTEM_PROMPT
    )


def messages(question: str) -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    return [SystemMessage(r.SYSTEM_PROMPT), HumanMessage(question)]


def weather_request() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": r.WEATHER_QUESTION}]}


def record(setup: str) -> None:
    recorder = r.Recorder(setup)
    instrument(setup, recorder.provider)
    with FakeOpenAI(cached_tokens=CACHED) as server:
        record_cases(recorder, server, setup)


def record_cases(recorder: r.Recorder, server: FakeOpenAI, setup: str) -> None:
    llm_span = llm_span_rule(setup)
    known = KNOWABLE[setup]
    # system (5 words) + user (3) = 8 prompt tokens, 4 of them cached; the reply 4 words.
    tokens = {
        "input_tokens": 8, "output_tokens": 4, "cache_read": 4, "cache_creation": 0, "reasoning": 0
    }
    answer = f"Echo: {r.QUESTION}"
    chat = r.llm_event(
        prompt=r.QUESTION,
        generation=answer,
        model=RESPONSE_MODEL,
        **{**tokens, "reasoning": known.chat_reasoning},
    )
    agent_events = [
        # system 5 + user 5 = 10 prompt tokens; a tool call has no text (0 words).
        r.llm_event(
            prompt=r.WEATHER_QUESTION,
            generation=f"tool_call: get_weather({TOOL_ARGUMENTS})",
            model=RESPONSE_MODEL,
            **{**tokens, "input_tokens": 10, "output_tokens": 0},
        ),
        # + the tool message "Sunny, 21C" (2) = 12; "Tool said: Sunny, 21C" = 4.
        r.llm_event(
            prompt=r.WEATHER_QUESTION,
            generation=f"Tool said: {r.WEATHER_RESULT}",
            model=RESPONSE_MODEL,
            **{**tokens, "input_tokens": 12, "output_tokens": 4},
        ),
    ]
    notes = known.notes

    with recorder.case("chat") as case:
        with recorder.request_span():
            chat_model(server, MODEL).invoke(messages(r.QUESTION))
        case.expect(llm_events=[chat], llm_spans=llm_span, notes=notes)

    with recorder.case("stream") as case:
        with recorder.request_span():
            for _ in chat_model(server, MODEL).stream(messages(r.QUESTION)):
                pass
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.QUESTION,
                    generation=answer,
                    model=known.stream_model,
                    time_to_first_token=known.stream_ttft,
                    **{**tokens, "reasoning": known.stream_reasoning},
                )
            ],
            llm_spans=llm_span,
            notes=f"{notes} {known.stream_notes}",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                chat_model(server, FAIL_MODEL).invoke(messages(r.QUESTION))
            except Exception as exc:  # langchain-openai re-raises openai's error as OpenAIAPIError
                print("error case raised", type(exc).__name__)
        case.expect(
            llm_events=[
                r.llm_event(prompt=r.QUESTION, generation=None, model=FAIL_MODEL, error=known.error)
            ],
            llm_spans=llm_span,
            notes=f"{notes} HTTP 500: status ERROR and an `exception` event on the LLM span "
            "(langchain-openai re-raises openai.InternalServerError as its OpenAIAPIError); no "
            "tokens. The duplicate `openai.chat`, where present, names openai.InternalServerError.",
        )

    with recorder.case("tool_call") as case:
        with recorder.request_span():
            weather_agent(server).invoke(weather_request())
        case.expect(
            llm_events=agent_events,
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=llm_span,
            notes=f"{notes} {known.agent_notes}",
        )

    with recorder.case("metadata_chat") as case:
        chat_model(server, MODEL).invoke(messages(r.QUESTION), config=METADATA)
        case.expect(llm_events=[chat], llm_spans=llm_span, notes=f"{notes} {known.metadata_notes}")

    with recorder.case("metadata_agent") as case:
        weather_agent(server).invoke(weather_request(), config=METADATA)
        case.expect(
            llm_events=agent_events,
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=llm_span,
            notes=f"{notes} {known.metadata_notes} {known.agent_notes}",
        )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        record(sys.argv[1])
    else:
        for name in SETUPS:
            subprocess.run([sys.executable, __file__, name], check=True)
