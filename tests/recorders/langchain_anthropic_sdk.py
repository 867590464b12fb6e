"""Record LangChain's ``ChatAnthropic`` under OpenInference or OpenLLMetry, with the SDK's own spans.

Writes ``tests/fixtures/spans/langchain-anthropic-{openinference,openllmetry}/<case>.json``; the
model talks to ``tests/fake_anthropic.py``. One setup per process::

    python -m venv /tmp/lc-anthropic && /tmp/lc-anthropic/bin/pip install -e . langchain==1.5.2 \\
        langchain-core==1.8.3 langchain-anthropic==1.7.10 langgraph==1.2.24 anthropic==2.17.0 \\
        openinference-instrumentation-langchain==0.1.80 \\
        opentelemetry-instrumentation-langchain==0.62.4 opentelemetry-sdk==1.45.2
    for setup in openinference openllmetry; do
        PYTHONPATH=. /tmp/lc-anthropic/bin/python tests/recorders/langchain_anthropic_sdk.py $setup; done

The recorder's provider is global, as an app's is, so the ``anthropic`` SDK (>= 2) also writes its
own ``anthropic.messages.create`` span for every call: two spans per model call, one event.
"""

from __future__ import annotations

import sys
from typing import Any

import recording as r
from fake_anthropic import FAIL_MODEL, MODEL_SNAPSHOT, TOOL_USE_ID, FakeAnthropic

MODEL = "claude-sonnet-4-5"
RESPONSE_MODEL = MODEL + MODEL_SNAPSHOT
SDK_SPAN = "anthropic.messages.create"
LLM_SPAN = {  # the framework's span of each call: the richer view, the event's span
    "openinference": r.is_openinference_llm,
    "openllmetry": lambda s: s["name"] == "ChatAnthropic.chat",
}
NOTES = {
    "openinference": (
        "OpenInference's `ChatAnthropic` (LLM) span and the SDK's own `anthropic.messages.create` "
        "(CLIENT, scope com.anthropic.sdk.python, no content) for each call: one event. Under "
        "LangGraph (`agent`) the SDK span is NOT the LLM span's child (OpenInference does not make "
        "its span current there): its parent is the app span; the two are one call by their "
        "response id (`gen_ai.response.id` = output.value's `response_metadata.id`)."
    ),
    "openllmetry": (
        "OpenLLMetry's `ChatAnthropic.chat` span and the SDK's own `anthropic.messages.create` "
        "child for each call: one event. A stream's LangChain span keeps only the request model; "
        "the SDK span names the dated one."
    ),
}


def instrument(setup: str, recorder: r.Recorder) -> None:
    recorder.set_global()
    if setup == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=recorder.provider)
    else:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=recorder.provider)


def record(setup: str) -> None:
    from langchain.agents import create_agent
    from langchain_anthropic import ChatAnthropic
    from langchain_core.tools import tool

    recorder = r.Recorder(f"langchain-anthropic-{setup}")
    instrument(setup, recorder)

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return r.get_weather_result(city)

    def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
        if "input_tokens" in kwargs:
            kwargs.update(cache_read=0, cache_creation=0)
        return r.llm_event(prompt=prompt, generation=generation, provider="anthropic",
                           **{"model": RESPONSE_MODEL, **kwargs})

    llm_span, notes = LLM_SPAN[setup], NOTES[setup]
    messages = [("system", r.SYSTEM_PROMPT), ("user", r.QUESTION)]
    answer = f"Echo: {r.QUESTION}"
    with FakeAnthropic() as server:
        def model(name: str = MODEL) -> Any:
            return ChatAnthropic(model=name, base_url=server.url, api_key="sk-ant-fake",
                                 max_retries=0, max_tokens=100)

        # system (5 words) + user (3) = 8 input tokens; the reply 4 words.
        with recorder.case("chat") as case:
            with recorder.request_span():
                model().invoke(messages)
            case.expect(llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4)],
                        llm_spans=llm_span, notes=notes)

        with recorder.case("stream") as case:
            with recorder.request_span():
                for _ in model().stream(messages):
                    pass
            case.expect(
                llm_events=[event(r.QUESTION, answer, input_tokens=8, output_tokens=4,
                                  time_to_first_token=r.NOT_RECORDED)],
                llm_spans=llm_span, notes=notes + " Streamed.")

        with recorder.case("agent") as case:
            with recorder.request_span():
                create_agent(model(), tools=[get_weather]).invoke(
                    {"messages": [("user", r.WEATHER_QUESTION)]})
            case.expect(
                llm_events=[
                    # user (5 words); the reply "Let me check." and a tool_use block.
                    event(r.WEATHER_QUESTION, "Let me check.", input_tokens=5, output_tokens=5),
                    # + the reply and the tool result; "It is sunny in Paris." = 5.
                    event(r.WEATHER_QUESTION, "It is sunny in Paris.", input_tokens=10,
                          output_tokens=5),
                ],
                events=[r.tool_event(TOOL_USE_ID)],
                llm_spans=llm_span,
                notes=notes + " `create_agent` (LangGraph) with a tool: two calls, one tool run; "
                "the reply beside a tool_use block is its text.",
            )

        with recorder.case("agent_stream") as case:
            with recorder.request_span():
                for _ in create_agent(model(), tools=[get_weather]).stream(
                        {"messages": [("user", r.WEATHER_QUESTION)]}, stream_mode="messages"):
                    pass
            case.expect(
                llm_events=[  # time to first token: the SDK span's time_to_first_chunk
                    event(r.WEATHER_QUESTION, "Let me check.", input_tokens=5, output_tokens=5,
                          time_to_first_token=r.SECONDS),
                    event(r.WEATHER_QUESTION, "It is sunny in Paris.", input_tokens=10,
                          output_tokens=5, time_to_first_token=r.SECONDS),
                ],
                events=[r.tool_event(TOOL_USE_ID)],
                llm_spans=llm_span,
                notes=notes + " The agent streamed (`stream_mode=\"messages\"`): LangChain's "
                "reply JSON has no message id then, and its usage says 0 input tokens; the SDK "
                "span's counts are the call's.",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    model(FAIL_MODEL).invoke(messages)
                except Exception as exc:  # the app sees langchain_anthropic's AnthropicAPIError
                    print("error case raised", type(exc).__name__)
            case.expect(
                llm_events=[event(r.QUESTION, None, model=FAIL_MODEL, error="AnthropicAPIError")],
                llm_spans=llm_span, notes=notes + " HTTP 500: both spans ERROR.")


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "openinference")
