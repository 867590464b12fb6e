"""Record Haystack fixtures: a pipeline's ``OpenAIChatGenerator`` and an ``Agent`` with a tool.

Writes ``tests/fixtures/spans/haystack/<case>.json``; the generator talks to
``tests/fake_openai.py``::

    python -m venv /tmp/haystack-venv && /tmp/haystack-venv/bin/pip install \
        haystack-ai==3.4.1 opentelemetry-haystack==2.0.0 openai==3.60.0 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/haystack-venv/bin/python tests/recorders/haystack_pipelines.py

Haystack 3 moved its OpenTelemetry tracer to ``opentelemetry-haystack``:
``tracing.enable_tracing(OpenTelemetryTracer(tracer))``. Content (component inputs and outputs)
is traced only with ``HAYSTACK_CONTENT_TRACING_ENABLED=true``, set here as its docs advise.
"""

from __future__ import annotations

import os
from typing import Any

os.environ["HAYSTACK_CONTENT_TRACING_ENABLED"] = "true"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

from recording import (  # noqa: E402,I001  (sys.path)
    SDK_LAYOUT,
    TOOL_QUESTION,
    Recorder,
    get_weather_result,
    llm_event,
    tool_event,
    tool_round_events,
)
from fake_openai import FakeOpenAI  # noqa: E402

MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    return llm_event(prompt=prompt, generation=generation, provider=None, **kwargs)


def is_call(span: dict[str, Any]) -> bool:
    attributes = span["attributes"]
    return (span["name"] == "haystack.agent.step.llm"
            or (attributes.get("haystack.component.type") == "OpenAIChatGenerator"
                and span["name"] == "haystack.component.run"
                and "haystack.agent" not in str(attributes.get("haystack.component.name"))))


def record() -> None:
    from haystack import Pipeline, tracing
    from haystack.components.agents import Agent
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage
    from haystack.tools import Tool
    from haystack.utils import Secret
    from haystack_integrations.tracing.opentelemetry import OpenTelemetryTracer

    recorder = Recorder("haystack", SDK_LAYOUT)
    tracing.enable_tracing(OpenTelemetryTracer(recorder.provider.get_tracer("haystack")))
    with FakeOpenAI() as server:
        def generator(model: str = MODEL) -> OpenAIChatGenerator:
            return OpenAIChatGenerator(api_key=Secret.from_token("sk-fake"), model=model,
                                       api_base_url=server.url, max_retries=0)

        def pipeline(model: str = MODEL) -> Pipeline:
            built = Pipeline()
            built.add_component("llm", generator(model))
            return built

        def messages(text: str) -> dict[str, Any]:
            return {"llm": {"messages": [ChatMessage.from_system("You are terse."),
                                         ChatMessage.from_user(text)]}}

        common = ("Pipeline: haystack.pipeline.run > haystack.component.run (component.type "
                  "OpenAIChatGenerator). Messages, reply, model and usage only in the JSON of "
                  "haystack.component.input / .output (replies[].meta.model / .usage; content "
                  "as [{\"text\"}] parts). No provider attribute.")

        with recorder.case("chat") as case:
            with recorder.request_span():
                pipeline().run(messages("Say hello"))
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=is_call, notes=common,
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                streamed = pipeline()
                streamed.run({"llm": {**messages("Count to three")["llm"],
                                      "streaming_callback": lambda chunk: None,
                                      "generation_kwargs": {"stream_options": {"include_usage": True}}}})
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=6,
                                  output_tokens=4)],
                llm_spans=is_call,
                notes=common + " Streamed with a streaming_callback: the input is then Python "
                "repr text (the callback is not JSON), the prompt in TextContent(text=...); "
                "meta.completion_start_time is local time without a zone: not read.",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    pipeline("fail-500").run(messages("Break"))
                except Exception:
                    pass
            case.expect(
                llm_events=[event("Break", None, model=None, error="Error code: 500")],
                llm_spans=is_call,
                notes=common + " HTTP 500: the component span has status ERROR and an exception event "
                "(PipelineRuntimeError wrapping the API error's message); no output, so no model.",
            )

        weather = Tool(name="get_weather", description="Current weather in a city",
                       parameters={"type": "object", "properties": {"city": {"type": "string"}}},
                       function=get_weather_result)

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                agent = Agent(chat_generator=generator(), tools=[weather])
                agent.run([ChatMessage.from_user(TOOL_QUESTION)])
            case.expect(
                llm_events=tool_round_events(event),
                events=[tool_event(None)],  # the tool span records no call id
                llm_spans=is_call,
                notes="Agent: haystack.agent.run > haystack.agent.step.llm (the model call, "
                "component input/output JSON as in a pipeline, tool calls as "
                "content [{\"tool_call\": {tool_name, arguments, id}}]) and "
                "haystack.agent.step.tool (haystack.tool.name).",
            )


if __name__ == "__main__":
    record()
