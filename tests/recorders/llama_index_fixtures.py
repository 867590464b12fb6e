"""Record LlamaIndex (its ``OpenAI`` LLM and a ``FunctionAgent``) through OpenInference.

Install (own venv, from the repo root) and re-record::

    python3 -m venv /tmp/li && /tmp/li/bin/pip install -e . llama-index-core==0.14.25 \\
        llama-index-llms-openai==0.8.3 openinference-instrumentation-llama-index==4.6.1 \\
        openai==2.54.0 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
    /tmp/li/bin/python tests/recorders/llama_index_fixtures.py

Writes ``tests/fixtures/spans/llama-index-openinference/``. LlamaIndex refuses model names it
does not know, so the failed call uses ``gpt-4o-mini`` and ``FakeOpenAI.fail_next``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import recording as r
from fake_openai import TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

MODEL = "gpt-4o-mini"
CACHED = 4
ERROR = "openai.InternalServerError"

NOTES = (
    "OpenInference LlamaIndex: the model call is the span named after the LLM method "
    "(`OpenAI.chat` / `OpenAI.stream_chat` / `OpenAI.achat` / `OpenAI.astream_chat`, "
    "openinference.span.kind=LLM). Prompt in llm.input_messages.N.message.role/content, reply in "
    "llm.output_messages.0.message.*, llm.model_name, tokens llm.token_count.*; the raw OpenAI "
    "response is in output.value. LlamaIndex's own dispatcher spans around it are wrappers."
)


def is_model_call(span: r.SpanDict) -> bool:
    """An LLM-kind span that carries messages: `OpenAI._prepare_chat_with_tools` is LLM-kind too
    but only assembles the request (no llm.input_messages, no tokens)."""
    attributes = span["attributes"]
    return (
        attributes.get("openinference.span.kind") == "LLM"
        and "llm.input_messages.0.message.role" in attributes
    )


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return r.get_weather_result(city)


def llm(server: FakeOpenAI) -> OpenAI:
    return OpenAI(model=MODEL, api_base=server.url, api_key="sk-fake", max_retries=0)


def messages(question: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=r.SYSTEM_PROMPT),
        ChatMessage(role="user", content=question),
    ]


async def run_agent(server: FakeOpenAI) -> None:
    tool = FunctionTool.from_defaults(get_weather)
    agent = FunctionAgent(tools=[tool], llm=llm(server), system_prompt=r.SYSTEM_PROMPT)
    await agent.run(user_msg=r.WEATHER_QUESTION)


def record_cases(recorder: r.Recorder, server: FakeOpenAI) -> None:
    llm_span = is_model_call
    # system (5 words) + user (3) = 8 prompt tokens, 4 of them cached; the reply 4 words.
    tokens: dict[str, Any] = {
        "input_tokens": 8, "output_tokens": 4, "cache_read": 4, "cache_creation": 0, "reasoning": 0
    }
    answer = f"Echo: {r.QUESTION}"
    first_token = r.first_event_delay("First Token Stream Event")
    # llm.model_name is always the request model: LlamaIndex never records the response model.
    chat = r.llm_event(prompt=r.QUESTION, generation=answer, model=MODEL, **tokens)

    with recorder.case("chat") as case:
        with recorder.request_span():
            llm(server).chat(messages(r.QUESTION))
        case.expect(llm_events=[chat], llm_spans=llm_span, notes=NOTES)

    with recorder.case("stream") as case:
        with recorder.request_span():
            for _ in llm(server).stream_chat(messages(r.QUESTION)):
                pass
        case.expect(
            llm_events=[
                r.llm_event(
                    prompt=r.QUESTION,
                    generation=answer,
                    model=MODEL,
                    time_to_first_token=first_token,
                )
            ],
            llm_spans=llm_span,
            notes=NOTES
            + " Stream (`OpenAI.stream_chat`): LlamaIndex's OpenAI LLM does not ask for "
            "stream usage (no stream_options), so no tokens are known; the time to first token is "
            "the `First Token Stream Event` event's time minus the span start.",
        )

    with recorder.case("error") as case:
        server.fail_next = 1
        with recorder.request_span():
            try:
                llm(server).chat(messages(r.QUESTION))
            except Exception as exc:  # the app sees openai.InternalServerError
                print("error case raised", type(exc).__name__)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=None, model=MODEL, error=ERROR)],
            llm_spans=llm_span,
            notes=NOTES + " HTTP 500: status ERROR (description 'InternalServerError: Error code: "
            "500 - ...') and an `exception` event (exception.type openai.InternalServerError); "
            "input messages and request model present, no tokens.",
        )

    with recorder.case("tool_call") as case:
        with recorder.request_span():
            asyncio.run(run_agent(server))
        case.expect(
            llm_events=[
                # FunctionAgent streams without asking for usage: no tokens, no response model.
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"tool_call: get_weather({TOOL_ARGUMENTS})",
                    model=MODEL,
                    time_to_first_token=first_token,
                ),
                r.llm_event(
                    prompt=r.WEATHER_QUESTION,
                    generation=f"Tool said: {r.WEATHER_RESULT}",
                    model=MODEL,
                    time_to_first_token=first_token,
                ),
            ],
            events=[r.tool_event(TOOL_CALL_ID)],
            llm_spans=llm_span,
            notes=NOTES + " FunctionAgent: `FunctionAgent.run` and `BaseWorkflowAgent.*` are CHAIN "
            "wrappers; `OpenAI._prepare_chat_with_tools` is LLM-kind but only builds the request "
            "(no "
            "llm.input_messages, no tokens): NOT an LLM event. The model calls are "
            "`OpenAI.astream_chat` (the agent streams, without usage: no tokens; first-token event "
            "present). The tool run is `FunctionTool.acall` (TOOL, tool.name, input.value "
            '{"kwargs": {"city": "Paris"}}); it has no tool call id, which is only in '
            "the LLM spans' tool_calls (output of the first, input of the second, with the `tool` "
            "message's tool_call_id).",
        )

    with recorder.case("using_attributes") as case:
        # OpenInference's own mechanism, no request span.
        with using_attributes(user_id=r.USER_ID, session_id=r.THREAD_ID):
            llm(server).chat(messages(r.QUESTION))
        case.expect(
            llm_events=[chat],
            llm_spans=llm_span,
            notes=NOTES
            + " No app span: `using_attributes(user_id=, session_id=)` puts user.id and "
            "session.id on every OpenInference span.",
        )


def main() -> None:
    recorder = r.Recorder("llama-index-openinference")
    LlamaIndexInstrumentor().instrument(tracer_provider=recorder.provider)
    with FakeOpenAI(cached_tokens=CACHED) as server:
        record_cases(recorder, server)


if __name__ == "__main__":
    main()
