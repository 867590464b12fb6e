"""Record the OpenAI Responses API (``client.responses``) under the OpenAI instrumentations.

Writes ``tests/fixtures/spans/openai-responses-{openllmetry,openinference}/<case>.json``; the
official ``openai`` client talks to ``tests/fake_openai.py`` (its Responses API:
``tests/fake_openai_responses.py``). One instrumentation per process (each patches ``openai``
globally)::

    python -m venv /tmp/oai-venv && /tmp/oai-venv/bin/pip install -e . openai==3.63.0 \\
        opentelemetry-instrumentation-openai==0.62.4 openinference-instrumentation-openai==0.1.66 \\
        opentelemetry-sdk==1.45.2
    for lib in openllmetry openinference; do
        PYTHONPATH=. /tmp/oai-venv/bin/python tests/recorders/openai_responses.py $lib; done

(``opentelemetry-instrumentation-openai-v2`` 2.4b0 traces chat completions only: the Responses
API gives it no span at all, nothing to record.)
"""

from __future__ import annotations

import sys
from typing import Any

import openai
from fake_openai import FakeOpenAI
from recording import (
    NOT_RECORDED,
    SDK_LAYOUT,
    TOOL_GENERATION,
    TOOL_QUESTION,
    WEATHER_RESULT,
    Recorder,
    SpanDict,
    first_event_delay,
    get_weather_result,
    llm_event,
)

LIB = sys.argv[1] if len(sys.argv) > 1 else "openinference"
MODEL = "gpt-4o-mini"
INSTRUCTIONS = "Be very brief."
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
NOTES = {
    "openllmetry": (
        "OpenLLMetry (opentelemetry-instrumentation-openai 0.62.4) on client.responses: one CLIENT "
        "span 'openai.response' per call, gen_ai.operation.name=chat, gen_ai.provider.name=openai; "
        "prompt in gen_ai.input.messages (instructions as a system message), reply in "
        "gen_ai.output.messages, request/response model, gen_ai.usage.input_tokens (cached "
        "included), .cache_read.input_tokens, .output_tokens, .reasoning_tokens, .total_tokens. It "
        "follows conversations by response id: the fake gives each response its own id, as OpenAI "
        "does (with one id for all, it records the first call only)."
    ),
    "openinference": (
        "OpenInference (openinference-instrumentation-openai 0.1.66) on client.responses: one span "
        "'Response' (LLM kind) per call; llm.input_messages.N (instructions = message 0, system; "
        "input items from 1), llm.output_messages.0 (.contents.0.message_content.text or "
        ".tool_calls.N.tool_call.*), llm.model_name = the response model, llm.token_count.prompt "
        "(cached included) / .prompt_details.cache_read / .completion / .completion_details.reasoning;"
        " input.value / output.value the request and response JSON."
    ),
}


def instrument(recorder: Recorder) -> None:
    if LIB == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=recorder.provider)
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=recorder.provider)


def is_llm_span(span: SpanDict) -> bool:
    return span["name"] in ("openai.response", "Response")


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", f"{MODEL}-2024-07-18")
    if "output_tokens" in kwargs:
        kwargs.setdefault("reasoning", 0)
    return llm_event(prompt=prompt, generation=generation, **kwargs)


def tool_round(client: Any) -> None:
    """Ask with the weather tool, run it, answer from its output: the Responses API's loop."""
    first = client.responses.create(model=MODEL, input=TOOL_QUESTION, tools=[RESPONSES_TOOL])
    call = first.output[0]
    follow_up = [
        {"role": "user", "content": TOOL_QUESTION},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id,
         "output": get_weather_result("Paris")},
    ]
    client.responses.create(model=MODEL, input=follow_up, tools=[RESPONSES_TOOL])


def record() -> None:
    recorder = Recorder(f"openai-responses-{LIB}", SDK_LAYOUT)
    instrument(recorder)
    notes = NOTES[LIB]
    # a stream's time to first token: OpenInference's first-token event; OpenLLMetry has none
    first_token = (first_event_delay("First Token Stream Event") if LIB == "openinference"
                   else NOT_RECORDED)
    with FakeOpenAI(cached_tokens=4) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        with recorder.case("chat") as case:
            with recorder.request_span():
                client.responses.create(model=MODEL, instructions=INSTRUCTIONS, input="Say hello")
            case.expect(
                # "Be very brief." + "Say hello": 5 words in, 4 of them cached; 3 out
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3,
                                  cache_read=4)],
                llm_spans=is_llm_span,
                notes="instructions + a string input. " + notes,
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                for _ in client.responses.create(model=MODEL, input="Count to three", stream=True):
                    pass
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=3,
                                  output_tokens=4, cache_read=3, time_to_first_token=first_token)],
                llm_spans=is_llm_span,
                notes="create(stream=True): usage from the response.completed event. " + notes,
            )

        with recorder.case("stream_helper") as case:
            with recorder.request_span():
                with client.responses.stream(model=MODEL, input="Count to three") as stream:
                    stream.get_final_response()
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=3,
                                  output_tokens=4, cache_read=3, time_to_first_token=first_token)],
                llm_spans=is_llm_span,
                notes="client.responses.stream(...) as a context manager, the SDK's helper. " + notes,
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                tool_round(client)
            case.expect(
                llm_events=[
                    event(TOOL_QUESTION, TOOL_GENERATION, input_tokens=3, output_tokens=0,
                          cache_read=3),
                    # the question (3), the function_call item's arguments (2) and output (2)
                    event(TOOL_QUESTION, f"Tool said: {WEATHER_RESULT}", input_tokens=7,
                          output_tokens=4, cache_read=4),
                ],
                llm_spans=is_llm_span,
                notes="A function tool: the first call returns a function_call item, the app sends "
                "it back with a function_call_output item; 2nd prompt = the last user text. The app "
                "runs the tool without a span of its own: no tool event. " + notes,
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.responses.create(model="fail-500", input="Break")
                except openai.InternalServerError as error:
                    print("error case raised", type(error).__name__)
            case.expect(
                llm_events=[event("Break", None, model="fail-500",
                                  error="openai.InternalServerError")],
                llm_spans=is_llm_span,
                notes="HTTP 500: status ERROR, the request and its model present, no reply. " + notes,
            )


if __name__ == "__main__":
    record()
