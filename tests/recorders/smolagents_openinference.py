"""Record smolagents (its ``OpenAIModel`` and a ``ToolCallingAgent``) through OpenInference.

Writes ``tests/fixtures/spans/smolagents-openinference/<case>.json``; the model talks to
``tests/fake_openai.py``::

    python -m venv /tmp/smol-venv && /tmp/smol-venv/bin/pip install -e . 'smolagents[openai]==1.26.0' \\
        openinference-instrumentation-smolagents==0.1.43 openai==3.63.0 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/smol-venv/bin/python tests/recorders/smolagents_openinference.py

``SmolagentsInstrumentor`` wraps smolagents' own classes (not the ``openai`` client): each model
call is ``<Model>.generate`` / ``<Model>.generate_stream`` (LLM kind), each agent run
``<Agent>.run`` (AGENT kind, with the run's summed token counts), each step ``Step N`` (CHAIN),
each tool run a TOOL span. smolagents sends message content as a list of text parts, so the
fake's word counts (the token counts) are those of the parts' ``str()``.
"""

from __future__ import annotations

from typing import Any

import recording as r
from fake_openai import TOOL_ARGUMENTS, FakeOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from smolagents import OpenAIModel, ToolCallingAgent, tool

MODEL = "gpt-4o-mini"
CACHED = 4
ERROR = "openai.InternalServerError"
FINAL_ANSWER_TASK = "Based on the above, please provide an answer to the following user task:"

NOTES = (
    "OpenInference smolagents: the model call is `OpenAIModel.generate` / "
    "`OpenAIModel.generate_stream` (openinference.span.kind=LLM): prompt in "
    "llm.input_messages.N.message.role/content, reply in llm.output_messages.0.message.* (tool "
    "calls in .tool_calls.N.tool_call.*), llm.model_name (the request model: the response model "
    "is not recorded), llm.provider, tokens llm.token_count.* (as strings; no cache "
    "reads). No span of the openai client."
)


@tool
def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: the city to look up
    """
    return r.get_weather_result(city)


def messages(question: str) -> list[dict[str, Any]]:
    def text(content: str) -> list[dict[str, str]]:
        return [{"type": "text", "text": content}]

    return [{"role": "system", "content": text(r.SYSTEM_PROMPT)},
            {"role": "user", "content": text(question)}]


def record_cases(recorder: r.Recorder, server: FakeOpenAI) -> None:
    model = OpenAIModel(model_id=MODEL, api_base=server.url, api_key="sk-fake",
                        client_kwargs={"max_retries": 0})
    answer = f"Echo: {r.QUESTION}"
    # the parts' str(): system 9 words + user 5 words in, 4 words out. The fake reports 4 of them
    # cached, but the instrumentation does not read OpenAI's cached_tokens: not in the spans.
    tokens: dict[str, Any] = {"input_tokens": 14, "output_tokens": 4}
    chat = r.llm_event(prompt=r.QUESTION, generation=answer, model=MODEL, **tokens)

    with recorder.case("chat") as case:
        with recorder.request_span():
            model.generate(messages(r.QUESTION))
        case.expect(llm_events=[chat], llm_spans=r.is_openinference_llm, notes=NOTES)

    with recorder.case("stream") as case:
        with recorder.request_span():
            for _ in model.generate_stream(messages(r.QUESTION)):
                pass
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=answer, model=MODEL,
                                    time_to_first_token=r.NOT_RECORDED, **tokens)],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " Stream: `generate_stream` asks for usage (include_usage), so the "
            "tokens are known; no first-token event, so no time to first token.",
        )

    with recorder.case("error") as case:
        server.fail_next = 1
        with recorder.request_span():
            try:
                model.generate(messages(r.QUESTION))
            except Exception as exc:  # the app sees openai.InternalServerError
                print("error case raised", type(exc).__name__)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=None, model=None, error=ERROR,
                                     provider=None)],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " HTTP 500: status ERROR and an `exception` event; input messages "
            "present, but no model nor provider (written with the reply) and no tokens.",
        )

    with recorder.case("tool_call") as case:
        # One step: the model asks for get_weather, smolagents runs it, then (max steps reached)
        # asks the model once more, without tools, for the final answer. smolagents hands the
        # tool's result back as a user message ("Observation: ..."), which the fake echoes.
        agent = ToolCallingAgent(tools=[get_weather], model=model, max_steps=1, verbosity_level=0)
        with recorder.request_span():
            agent.run(r.WEATHER_QUESTION)
        task = f"New task:\n{r.WEATHER_QUESTION}"
        final_prompt = f"{FINAL_ANSWER_TASK}\n{r.WEATHER_QUESTION}"
        case.expect(
            llm_events=[
                r.llm_event(prompt=task, generation=f"tool_call: get_weather({TOOL_ARGUMENTS})",
                            model=MODEL, input_tokens=475, output_tokens=0),
                r.llm_event(prompt=final_prompt,
                            generation=f"Echo: Observation:\n{r.WEATHER_RESULT}\n{final_prompt}",
                            model=MODEL, input_tokens=77, output_tokens=22),
            ],
            events=[r.tool_event(None)],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " ToolCallingAgent: `ToolCallingAgent.run` is AGENT kind and carries the "
            "run's summed llm.token_count.*: a wrapper, NOT an LLM event (its tokens would count "
            "twice). `Step 1` is CHAIN; the tool run is a TOOL span named after the tool class "
            "(`SimpleTool`), tool.name get_weather, no tool call id.",
        )

    with recorder.case("using_attributes") as case:
        with using_attributes(user_id=r.USER_ID, session_id=r.THREAD_ID):
            model.generate(messages(r.QUESTION))
        case.expect(
            llm_events=[chat],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " No app span: `using_attributes(user_id=, session_id=)` puts user.id "
            "and session.id on the span.",
        )


def main() -> None:
    recorder = r.Recorder("smolagents-openinference")
    SmolagentsInstrumentor().instrument(tracer_provider=recorder.provider)
    with FakeOpenAI(cached_tokens=CACHED) as server:
        record_cases(recorder, server)


if __name__ == "__main__":
    main()
