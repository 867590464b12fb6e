"""Record one Anthropic call seen in two traces: the SDK's own span and OpenLLMetry's.

Writes ``tests/fixtures/spans/anthropic-openllmetry-events/<case>.json``; the ``anthropic``
client talks to ``tests/fake_anthropic.py``::

    python -m venv /tmp/anthropic-venv && /tmp/anthropic-venv/bin/pip install \
        anthropic==2.17.0 opentelemetry-instrumentation-anthropic==0.62.4 opentelemetry-sdk==1.45.2
    PYTHONPATH=. /tmp/anthropic-venv/bin/python tests/recorders/anthropic_two_traces.py

OpenLLMetry's events mode (``AnthropicInstrumentor(use_legacy_attributes=False)``, content as
log records) with no app span: its ``anthropic.chat`` span is not made current while the SDK
runs, so the SDK's ``anthropic.messages.create`` span starts a trace of its own. Two roots, no
shared id, and the log records carry no trace id: only the provider, the time and the token
counts say it is one call.
"""

from __future__ import annotations

from typing import Any

from recording import SDK_LAYOUT, Recorder, llm_event  # noqa: I001  (puts tests/ on sys.path)
import fake_anthropic as fake  # noqa: E402

MODEL = "claude-sonnet-4-6"
RESPONSE_MODEL = MODEL + fake.MODEL_SNAPSHOT
NOTES = ("No app span. OpenLLMetry's 'anthropic.chat' (scope opentelemetry.instrumentation."
         "anthropic) and the SDK's 'anthropic.messages.create' (scope com.anthropic.sdk.python) "
         "are both ROOTS of different traces. OpenLLMetry's span has provider and usage but no "
         "model, response id or content (content went to log records without a trace id); the "
         "SDK's has provider, model, response id and usage. Same call: one event.")


def event(**kwargs: Any) -> dict[str, Any]:
    return llm_event(prompt=None, generation=None, model=RESPONSE_MODEL, provider="anthropic",
                     cache_read=0, cache_creation=0, user=None, thread=None, **kwargs)


def record() -> None:
    import anthropic
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    recorder = Recorder("anthropic-openllmetry-events", SDK_LAYOUT)
    recorder.set_global()
    AnthropicInstrumentor(use_legacy_attributes=False).instrument(
        tracer_provider=recorder.provider, logger_provider=recorder.logger_provider)
    # the merged event keeps the span that started first (equally rich): OpenLLMetry's
    merged_into = lambda s: s["name"] == "anthropic.chat"  # noqa: E731
    with fake.FakeAnthropic() as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-fake", max_retries=0)

        with recorder.case("chat") as case:
            client.messages.create(model=MODEL, max_tokens=100, system="You are terse.",
                                   messages=[{"role": "user", "content": "Say hello"}])
            case.expect(llm_events=[event(input_tokens=5, output_tokens=3)], llm_spans=merged_into,
                        notes=NOTES)

        with recorder.case("two_calls") as case:
            for text in ("Say hello", "Say hello again"):
                client.messages.create(model=MODEL, max_tokens=100, system="You are terse.",
                                       messages=[{"role": "user", "content": text}])
            case.expect(llm_events=[event(input_tokens=5, output_tokens=3),
                                    event(input_tokens=6, output_tokens=4)],
                        llm_spans=merged_into,
                        notes=NOTES + " Two calls one after the other: two events, never one.")


if __name__ == "__main__":
    record()
