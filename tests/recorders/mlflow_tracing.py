"""Record MLflow tracing fixtures: ``mlflow.openai.autolog()`` exported over OTLP.

Writes ``tests/fixtures/spans/mlflow-{otlp,genai-semconv}/<case>.json``; the ``openai`` client
talks to ``tests/fake_openai.py`` and MLflow exports to ``tests/otlp_receiver.py``, as a user
pointing ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` at a collector does. One mode per process::

    python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install \
        mlflow-tracing==3.17.2 sqlparse pyyaml openai==3.60.0 opentelemetry-sdk==1.45.2 \
        opentelemetry-exporter-otlp-proto-http==1.45.2 waitress
    for mode in otlp genai-semconv; do
        PYTHONPATH=. /tmp/mlflow-venv/bin/python tests/recorders/mlflow_tracing.py $mode; done

(mlflow-tracing 3.17.2 also needs ``sqlparse`` and ``pyyaml``, which it does not declare.)
MLflow traces with a tracer provider of its own: its spans never join the app's trace, and a
trace's user and session (``mlflow.update_current_trace(metadata=...)``) are trace metadata,
not span attributes, so they are not exported: the events have no user or thread. Ids are
renumbered from a counter after receiving, so a re-recording diffs cleanly.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import Any

from recording import (  # noqa: I001  (sys.path)
    SDK_LAYOUT,
    SECONDS,
    Recorder,
    get_weather_result,
    llm_event,
    openai_tool_round,
    tool_event,
    tool_round_events,
)
from fake_openai import FakeOpenAI  # noqa: E402
from instrumented_app import span_json  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

MODEL, RESPONSE_MODEL = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
SYSTEM = {"role": "system", "content": "You are terse."}


class ReceivedRecorder(Recorder):
    """The spans MLflow exported over OTLP, ids renumbered, instead of the in-memory ones."""

    def __init__(self, source_dir: str, receiver: OtlpReceiver) -> None:
        super().__init__(source_dir, SDK_LAYOUT)
        self.receiver = receiver

    def received(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while len(self.receiver.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        spans = [span_json(s) for s in self.receiver.spans]
        self.receiver.clear()
        ids: dict[str, str] = {}

        def renumber(value: str | None, width: int, base: int) -> str | None:
            if value is None:
                return None
            if value not in ids:
                ids[value] = f"{base + len(ids) + 1:0{width}x}"
            return ids[value]

        for span in sorted(spans, key=lambda s: s["start_time"]):
            span["trace_id"] = renumber(span["trace_id"], 32, 0xD0C0_0000)
            span["span_id"] = renumber(span["span_id"], 16, 0x3000)
            span["parent_span_id"] = renumber(span["parent_span_id"], 16, 0x3000)
        return spans


def event(prompt: str, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", RESPONSE_MODEL)
    kwargs.setdefault("provider", None)
    return llm_event(prompt=prompt, generation=generation, user=None, thread=None, **kwargs)


def record(mode: str) -> None:
    with OtlpReceiver() as receiver, FakeOpenAI() as server:
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.traces_url
        os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "50"
        if mode == "genai-semconv":
            os.environ["MLFLOW_ENABLE_OTEL_GENAI_SEMCONV"] = "true"
        import mlflow
        import openai

        mlflow.openai.autolog()
        recorder = ReceivedRecorder(f"mlflow-{mode}", receiver)
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        chat_span = ((lambda s: s["name"].startswith("chat")) if mode == "genai-semconv"
                     else (lambda s: s["name"] == "Completions"))
        semconv_note = (" GenAI semconv mode: gen_ai.* attributes instead of mlflow.*, read by "
                        "the GenAI row." if mode == "genai-semconv" else "")

        with recorder.case("chat") as case:
            client.chat.completions.create(model=MODEL, messages=[SYSTEM, {"role": "user",
                                                                           "content": "Say hello"}])
            case.spans = recorder.received(1)
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=chat_span,
                notes="'Completions' span, mlflow.spanType=\"CHAT_MODEL\" (JSON-encoded, as every "
                "mlflow.* value); request in mlflow.spanInputs, the OpenAI response in "
                "mlflow.spanOutputs, tokens in mlflow.chat.tokenUsage, response model in "
                "mlflow.llm.model. No provider, no user or session." + semconv_note,
            )

        with recorder.case("stream") as case:
            for _ in client.chat.completions.create(
                model=MODEL, messages=[SYSTEM, {"role": "user", "content": "Count to three"}],
                stream=True, stream_options={"include_usage": True},
            ):
                pass
            case.spans = recorder.received(1)
            case.expect(
                llm_events=[event("Count to three", "Echo: Count to three", input_tokens=6,
                                  output_tokens=4,
                                  time_to_first_token=SECONDS if mode == "otlp" else None)],
                llm_spans=chat_span,
                notes="Streamed: the chunks are span events mlflow.chunk.item.N (the first one's "
                "time is the first token); the output is assembled." + semconv_note,
            )

        with recorder.case("error") as case:
            try:
                client.chat.completions.create(model="fail-500",
                                               messages=[{"role": "user", "content": "Break"}])
            except openai.InternalServerError:
                pass
            case.spans = recorder.received(1)
            case.expect(
                llm_events=[event("Break", None, model="fail-500", error="InternalServerError")],
                llm_spans=chat_span,
                notes="HTTP 500: status ERROR with an EMPTY description; the error only in the "
                "exception event. The model only in the raw 'model' attribute (JSON text)."
                + semconv_note,
            )

        @mlflow.trace(span_type="TOOL")
        def get_weather(city: str) -> str:
            return get_weather_result(city)

        @mlflow.trace
        def agent() -> None:
            openai_tool_round(partial(client.chat.completions.create, model=MODEL), get_weather)

        with recorder.case("tool_call") as case:
            agent()
            case.spans = recorder.received(4)
            case.expect(
                llm_events=tool_round_events(event),
                events=[tool_event(None, user="anonymous")],  # no user: the wire says so
                llm_spans=chat_span,
                notes="@mlflow.trace agent (spanType UNKNOWN: a wrapper, its output is the last "
                "response) around two calls and a TOOL span named after the function."
                + semconv_note,
            )


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "otlp")
