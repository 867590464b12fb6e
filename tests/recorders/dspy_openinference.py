"""Record DSPy (``dspy.LM``, ``dspy.Predict``) through OpenInference.

Writes ``tests/fixtures/spans/dspy-openinference/<case>.json``; DSPy's LM (LiteLLM inside) talks
to ``tests/fake_openai.py``::

    python -m venv /tmp/dspy-venv && /tmp/dspy-venv/bin/pip install -e . dspy==3.4.1 \\
        openinference-instrumentation-dspy==0.1.48 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/dspy-venv/bin/python tests/recorders/dspy_openinference.py

The model call is DSPy's ``LM.__call__`` span (LLM kind); modules and adapters are CHAIN
wrappers. The span holds no token counts (DSPy's LM history has them, the span does not), so
the events have none, and no cost.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch from the internet

import dspy  # noqa: E402
import recording as r  # noqa: E402
from fake_openai import FAIL_MODEL, FakeOpenAI  # noqa: E402
from openinference.instrumentation.dspy import DSPyInstrumentor  # noqa: E402

MODEL = "gpt-4o-mini"
NOTES = (
    "OpenInference DSPy (openinference-instrumentation-dspy 0.1.48, dspy 3.4.1): the model call is "
    "`LM.__call__` (INTERNAL, openinference.span.kind=LLM): llm.input_messages.N.message.*, "
    "llm.output_messages.0.message.content, llm.model_name (the request model without LiteLLM's "
    "`openai/` prefix), llm.provider; input.value / output.value DSPy's call and its list of "
    "texts. NO token counts anywhere in the spans: no usage, no cost."
)


def lm(server: FakeOpenAI, model: str = MODEL) -> Any:
    return dspy.LM(f"openai/{model}", api_base=server.url, api_key="sk-fake", cache=False,
                   num_retries=0)


def record_cases(recorder: r.Recorder, server: FakeOpenAI) -> None:
    dspy.configure(lm=lm(server))
    with recorder.case("chat") as case:
        with recorder.request_span():
            lm(server)(r.QUESTION)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=f"Echo: {r.QUESTION}",
                                    model=MODEL)],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " `LM(prompt)`: the prompt as one user message.",
        )

    with recorder.case("predict") as case:
        since = len(server.requests)
        with recorder.request_span():
            try:
                dspy.Predict("question -> answer")(question=r.QUESTION)
            except Exception as error:  # the fake's echo is no DSPy answer: the adapters give up
                print("predict case raised", type(error).__name__)
        case.expect(
            # DSPy writes its own prompt around the question; no counts on its spans
            llm_events=r.fake_openai_answers(server.requests[since:], 0, usage=False, model=MODEL),
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " `Predict` formats a system prompt and a `[[ ## question ## ]]` user "
            "message; the echoed reply has no `[[ ## answer ## ]]` field, so ChatAdapter fails "
            "and falls back to JSONAdapter (a second call, with response_format), which fails "
            "too: two LLM events, both successful calls; the CHAIN spans "
            "(`Predict.forward`, `ChatAdapter.__call__`, ...) are ERROR wrappers, no events.",
        )

    with recorder.case("error") as case:
        with recorder.request_span():
            try:
                lm(server, FAIL_MODEL)(r.QUESTION)
            except Exception as error:  # dspy.utils.exceptions.LMServerError
                print("error case raised", type(error).__name__)
        case.expect(
            llm_events=[r.llm_event(prompt=r.QUESTION, generation=None, model=FAIL_MODEL,
                                    error="dspy.utils.exceptions.LMServerError")],
            llm_spans=r.is_openinference_llm,
            notes=NOTES + " HTTP 500: status ERROR, an exception event (DSPy's LMServerError); "
            "the request present.",
        )


def main() -> None:
    recorder = r.Recorder("dspy-openinference")
    DSPyInstrumentor().instrument(tracer_provider=recorder.provider)
    with FakeOpenAI(cached_tokens=4) as server:
        record_cases(recorder, server)


if __name__ == "__main__":
    main()
