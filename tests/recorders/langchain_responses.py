"""Record LangChain's ``ChatOpenAI(use_responses_api=True)`` through OpenLLMetry and OpenInference.

Writes ``tests/fixtures/spans/langchain-responses-{openllmetry,openinference}/<case>.json``; the
model talks to the Responses API of ``tests/fake_openai.py``. Same venv as
``langchain_fixtures.py`` (langchain-openai 1.8.1 here); one setup per process::

    for setup in openllmetry openinference; do
        /tmp/lc/bin/python tests/recorders/langchain_responses.py $setup; done

langchain-openai sends the Responses API's content blocks back as the message content (a list
of ``text`` / ``function_call`` / ``reasoning`` blocks, not a string): what each
instrumentation makes of them is what these fixtures hold.
"""

from __future__ import annotations

import sys
from typing import Any

import recording as r
from fake_openai import FAIL_MODEL, TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI

SETUP = sys.argv[1] if len(sys.argv) > 1 else "openllmetry"
MODEL = "gpt-4o-mini"
NOTES = {
    "openllmetry": (
        "OpenLLMetry LangChain (opentelemetry-instrumentation-langchain 0.62.4), Responses API: "
        "`ChatOpenAI.chat` (CLIENT) is the call; gen_ai.request.model only (no response model); "
        "a tool call's gen_ai.output.messages holds a text part with the function_call content "
        "block as JSON AND a tool_call part: the block is not text."
    ),
    "openinference": (
        "OpenInference LangChain (openinference-instrumentation-langchain 0.1.80), Responses "
        "API: `ChatOpenAI` (LLM kind) is the call; llm.model_name = the response model; the "
        "reply and usage from output.value (LangChain's serialised LLMResult)."
    ),
}


def instrument(provider: Any) -> None:
    if SETUP == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    else:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=provider)


def is_llm_span(span: r.SpanDict) -> bool:
    if SETUP == "openinference":
        return r.is_openinference_llm(span)
    return span["name"] == "ChatOpenAI.chat"


def record_cases(recorder: r.Recorder, server: FakeOpenAI) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return r.get_weather_result(city)

    def chat_model(model: str = MODEL) -> Any:
        return ChatOpenAI(model=model, base_url=server.url, api_key="sk-fake", max_retries=0,
                          use_responses_api=True)

    model = f"{MODEL}-2024-07-18" if SETUP == "openinference" else MODEL

    def event(prompt: str, generation: str, **tokens: Any) -> dict[str, Any]:
        return r.llm_event(prompt=prompt, generation=generation, model=model, reasoning=0, **tokens)

    notes = NOTES[SETUP]
    question = [SystemMessage(r.SYSTEM_PROMPT), HumanMessage(r.QUESTION)]
    with recorder.case("chat") as case:
        with recorder.request_span():
            chat_model().invoke(question)
        case.expect(
            # system (5 words) + user (3) in, 4 of them cached; 4 out
            llm_events=[event(r.QUESTION, f"Echo: {r.QUESTION}", input_tokens=8, output_tokens=4,
                              cache_read=4)],
            llm_spans=is_llm_span,
            notes=notes,
        )

    with recorder.case("stream") as case:
        with recorder.request_span():
            for _ in chat_model().stream(question):
                pass
        case.expect(
            llm_events=[event(r.QUESTION, f"Echo: {r.QUESTION}", input_tokens=8, output_tokens=4,
                              cache_read=4, time_to_first_token=r.NOT_RECORDED)],
            llm_spans=is_llm_span,
            notes=notes + " Stream: usage from response.completed.",
        )

    with recorder.case("tool_call") as case:
        agent = create_agent(chat_model(), tools=[get_weather], system_prompt=r.SYSTEM_PROMPT)
        with recorder.request_span():
            agent.invoke({"messages": [{"role": "user", "content": r.WEATHER_QUESTION}]})
        case.expect(
            llm_events=[
                # system 5 + user 5 in, nothing out but the call
                event(r.WEATHER_QUESTION, f"tool_call: get_weather({TOOL_ARGUMENTS})",
                      input_tokens=10, output_tokens=0, cache_read=4),
                # + the function_call item's arguments (2) and its output (2)
                event(r.WEATHER_QUESTION, f"Tool said: {r.WEATHER_RESULT}", input_tokens=14,
                      output_tokens=4, cache_read=4),
            ],
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=is_llm_span,
            notes=notes + " create_agent with a tool: the first call's reply is a function_call "
            "content block.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                chat_model(FAIL_MODEL).invoke(question)
            except Exception as error:  # langchain-openai's OpenAIAPIError
                print("error case raised", type(error).__name__)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=None, model=FAIL_MODEL,
                                    error="langchain_openai.chat_models.base.OpenAIAPIError")],
            llm_spans=is_llm_span,
            notes=notes + " HTTP 500: status ERROR, an exception event (langchain-openai's "
            "OpenAIAPIError); no tokens.",
        )


def main() -> None:
    recorder = r.Recorder(f"langchain-responses-{SETUP}")
    instrument(recorder.provider)
    with FakeOpenAI(cached_tokens=4) as server:
        record_cases(recorder, server)


if __name__ == "__main__":
    main()
