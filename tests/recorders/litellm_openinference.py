"""Record LiteLLM through OpenInference (``openinference-instrumentation-litellm``).

Writes ``tests/fixtures/spans/litellm-openinference/<case>.json``; ``litellm.completion``
talks to ``tests/fake_openai.py`` through ``api_base``::

    python -m venv /tmp/oi-litellm && /tmp/oi-litellm/bin/pip install litellm==1.110.2 \\
        openinference-instrumentation-litellm==0.1.51 openai==3.63.0 opentelemetry-sdk==1.45.2
    /tmp/oi-litellm/bin/python tests/recorders/litellm_openinference.py

Each ``litellm.completion`` is one ``completion`` span (LLM kind). ``llm.model_name`` is the
model as the app named it, with LiteLLM's provider prefix (``openai/gpt-4o-mini``); the dated
model the provider answered with (``gpt-4o-mini-2024-07-18``) is only in ``output.value``, when
that is the reply's JSON (a reply without text: a tool call). A text reply's ``output.value``
is the text alone.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # it fetches the map from the internet otherwise

import recording as r  # noqa: E402  (puts tests/ on sys.path)
from fake_openai import FakeOpenAI  # noqa: E402

MODEL = "openai/gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}
NOTES = (
    "OpenInference LiteLLM (openinference-instrumentation-litellm 0.1.51, litellm 1.110.2): one "
    "`completion` span per call (openinference.span.kind=LLM): llm.input_messages / "
    "llm.output_messages, llm.model_name = the app's model with LiteLLM's provider prefix "
    "(openai/gpt-4o-mini), llm.provider, llm.token_count.*, llm.cost.total. output.value is the "
    "reply's text, or, for a reply without text (a tool call), the whole response JSON, which "
    "names the dated response model (gpt-4o-mini-2024-07-18): the event's model then."
)


def record() -> None:
    import litellm
    from openinference.instrumentation.litellm import LiteLLMInstrumentor

    recorder = r.Recorder("litellm-openinference")
    LiteLLMInstrumentor().instrument(tracer_provider=recorder.provider)
    with FakeOpenAI() as server:
        complete = partial(litellm.completion, api_base=server.url, api_key="sk-fake")

        with recorder.case("chat") as case:
            with recorder.request_span():
                complete(model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Say hello"}])
            case.expect(
                llm_events=[r.llm_event(prompt="Say hello", generation="Echo: Say hello", model=MODEL,
                                        input_tokens=5, output_tokens=3)],
                llm_spans=r.is_openinference_llm,
                notes=NOTES + " A text reply: output.value is its text, no response model anywhere; "
                "the model is llm.model_name.",
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                r.openai_tool_round(partial(complete, model=MODEL), r.get_weather_result)

            def event(prompt: str, generation: str, **counts: Any) -> dict[str, Any]:
                model = RESPONSE_MODEL if generation == r.TOOL_GENERATION else MODEL
                return r.llm_event(prompt=prompt, generation=generation, model=model, **counts)

            case.expect(
                llm_events=r.tool_round_events(event),
                llm_spans=r.is_openinference_llm,
                notes=NOTES + " The first call's reply is a tool call (no text): output.value is the "
                "response JSON, whose model gpt-4o-mini-2024-07-18 is the event's; the second "
                "answers in text: openai/gpt-4o-mini. The app's tool run is not traced.",
            )

        with recorder.case("error") as case:
            server.fail_next = 1
            with recorder.request_span():
                try:
                    complete(model=MODEL, messages=[{"role": "user", "content": "Break"}], num_retries=0)
                except litellm.InternalServerError:
                    pass
            case.expect(
                llm_events=[r.llm_event(prompt="Break", generation=None, model=MODEL,
                                        error="litellm.InternalServerError")],
                llm_spans=r.is_openinference_llm,
                notes=NOTES + " HTTP 500: status ERROR and an exception event; the request's "
                "messages and llm.model_name, no reply, no tokens.",
            )


if __name__ == "__main__":
    record()
