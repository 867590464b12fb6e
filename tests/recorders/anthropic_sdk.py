"""Record Anthropic fixtures: the SDK's own spans, alone and beside OpenLLMetry / OpenInference.

Writes ``tests/fixtures/spans/anthropic-{native,openllmetry,openinference}/<case>.json``, the
``anthropic`` client talking to ``tests/fake_anthropic.py``. One mode per process (instrumentors
patch the module globally)::

    python -m venv /tmp/anthropic-venv && /tmp/anthropic-venv/bin/pip install \
        anthropic==2.14.0 opentelemetry-sdk==1.45.2 \
        opentelemetry-instrumentation-anthropic==0.62.4 openinference-instrumentation-anthropic==3.1.0
    for mode in native openllmetry openinference; do
        /tmp/anthropic-venv/bin/python tests/recorders/anthropic_sdk.py $mode; done

The SDK (>= 2.x) traces every API call itself: it takes the tracer provider from the client
option ``open_telemetry={"tracer_provider": ...}``, else OpenTelemetry's global provider
(``trace.get_tracer_provider()``, resolved once per client), and is off with
``ANTHROPIC_OPEN_TELEMETRY=false``. Here the recorder's provider is made global, as an app's is,
so every mode also has the SDK's span.
"""

from __future__ import annotations

import sys
from typing import Any

from recording import (  # noqa: I001  (puts tests/ on sys.path)
    SDK_LAYOUT,
    SECONDS,
    Recorder,
    get_weather_result,
    llm_event,
    tool_event,
)
import fake_anthropic as fake  # noqa: E402

MODEL = "claude-sonnet-4-6"
RESPONSE_MODEL = MODEL + fake.MODEL_SNAPSHOT
SYSTEM = "You are terse."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
SDK_SPAN = "anthropic.messages.create"
# Which span of a call should become the LLM event (the richer one; the other duplicates it).
LLM_SPAN = {
    "native": lambda s: s["name"] == SDK_SPAN,
    "openllmetry": lambda s: s["scope"] == "opentelemetry.instrumentation.anthropic",
    "openinference": lambda s: s["scope"] == "openinference.instrumentation.anthropic",
}
DUPLICATE_NOTE = {
    "native": "",
    "openllmetry": (
        " Each call also has the SDK's own CLIENT span 'anthropic.messages.create' (scope "
        "com.anthropic.sdk.python, metadata only): the SAME model call, must be merged, not a 2nd event."
    ),
    "openinference": (
        " Each call also has the SDK's own CLIENT span 'anthropic.messages.create' (scope "
        "com.anthropic.sdk.python, metadata only): the SAME model call, must be merged, not a 2nd event."
    ),
}

# OpenLLMetry 0.62.4 does not wrap messages.stream(): only the SDK's span records that call.
STREAM_HELPER_SPAN = {"openllmetry": lambda s: s["name"] == SDK_SPAN}
STREAM_HELPER_NOTE = {
    "openllmetry": " OpenLLMetry 0.62.4 emits NO span for messages.stream(): only the SDK's metadata-only "
    "'anthropic.messages.create' span exists, so prompt/generation are unknown.",
}

STREAM_NOTE = {
    "openllmetry": " OpenLLMetry 0.62.4 ADDS message_start's output_tokens (1) to message_delta's cumulative "
    "count: its span says output 5, the SDK's span the true 4.",
}


def instrument(mode: str, recorder: Recorder) -> None:
    recorder.set_global()
    provider = recorder.provider
    if mode == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=provider)
    elif mode == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=provider)
    elif mode != "native":
        raise SystemExit(f"unknown mode {mode!r}")


def event(
    content: bool, prompt: str | None, generation: str | None, **kwargs: Any
) -> dict[str, Any]:
    """An Anthropic LLM event; without ``content`` the spans hold no messages (SDK metadata_only)."""
    if not content:
        prompt = generation = None
    kwargs.setdefault("model", RESPONSE_MODEL)
    kwargs.setdefault("cache_read", 0)
    kwargs.setdefault("cache_creation", 0)
    return llm_event(prompt=prompt, generation=generation, provider="anthropic", **kwargs)


def record(mode: str) -> None:
    import anthropic

    recorder = Recorder(f"anthropic-{mode}", SDK_LAYOUT)
    instrument(mode, recorder)
    llm_span, dup = LLM_SPAN[mode], DUPLICATE_NOTE[mode]
    if mode == "native":
        dup = " Default content_mode metadata_only: no messages on the span, prompt/generation unknown."
    has_content = mode != "native"
    with fake.FakeAnthropic() as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-fake", max_retries=0)

        with recorder.case("chat") as case:
            with recorder.request_span():
                client.messages.create(
                    model=MODEL,
                    max_tokens=100,
                    system=SYSTEM,
                    messages=[{"role": "user", "content": "Say hello"}],
                )
            case.expect(
                llm_events=[
                    event(
                        has_content, "Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3
                    )
                ],
                llm_spans=llm_span,
                notes="user/thread only on the app's 'handle request' span (user.id, session.id)."
                + dup,
            )

        with recorder.case("cache") as case:
            with recorder.request_span():
                client.messages.create(
                    model=MODEL,
                    max_tokens=100,
                    system=[
                        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
                    ],
                    messages=[{"role": "user", "content": "Say hello again"}],
                )
            case.expect(
                llm_events=[
                    event(
                        has_content,
                        "Say hello again",
                        "Echo: Say hello again",
                        input_tokens=6 + 1200 + 300,
                        output_tokens=4,
                        cache_read=1200,
                        cache_creation=300,
                    )
                ],
                llm_spans=llm_span,
                notes=(
                    "Anthropic usage: input_tokens=6 EXCLUDES cache_read_input_tokens=1200 and "
                    "cache_creation_input_tokens=300; expected input_tokens is normalised to 1506 (all input)."
                    " Check each library: some already add them up (the SDK's gen_ai.usage.input_tokens does)."
                    + dup
                ),
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                # Iterated, not used as a context manager: OpenLLMetry 0.62.4 never ends its
                # span when the stream is closed by `with client.messages.create(stream=True)`.
                for _ in client.messages.create(
                    model=MODEL,
                    max_tokens=100,
                    system=SYSTEM,
                    stream=True,
                    messages=[{"role": "user", "content": "Count to three"}],
                ):
                    pass
            case.expect(
                llm_events=[
                    event(
                        has_content,
                        "Count to three",
                        "Echo: Count to three",
                        input_tokens=6,
                        output_tokens=4,
                        time_to_first_token=SECONDS,
                    )
                ],
                llm_spans=llm_span,
                notes="messages.create(stream=True): usage arrives in message_start (input, output 1) and "
                "message_delta (cumulative output 4). Time to first token only on the SDK's span "
                "(gen_ai.response.time_to_first_chunk, seconds)." + STREAM_NOTE.get(mode, "") + dup,
            )

        with recorder.case("stream_helper") as case:
            with recorder.request_span():
                with client.messages.stream(
                    model=MODEL,
                    max_tokens=100,
                    system=SYSTEM,
                    messages=[{"role": "user", "content": "Count to four"}],
                ) as stream:
                    stream.get_final_text()
            case.expect(
                llm_events=[
                    event(
                        has_content and mode != "openllmetry",
                        "Count to four",
                        "Echo: Count to four",
                        input_tokens=6,
                        output_tokens=4,
                        time_to_first_token=SECONDS,
                    )
                ],
                llm_spans=STREAM_HELPER_SPAN.get(mode, llm_span),
                notes="client.messages.stream() helper (MessageStreamManager)."
                + STREAM_HELPER_NOTE.get(mode, dup),
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.messages.create(
                        model=fake.FAIL_MODEL,
                        max_tokens=100,
                        messages=[{"role": "user", "content": "Break"}],
                    )
                except anthropic.InternalServerError:
                    pass
            case.expect(
                llm_events=[
                    event(
                        has_content,
                        "Break",
                        None,
                        model=fake.FAIL_MODEL,
                        cache_read=None,
                        cache_creation=None,
                        error="api_error" if mode == "native" else "InternalServerError",
                    )
                ],
                llm_spans=llm_span,
                notes=(
                    "HTTP 500 api_error; no usage, no response model (assistant_id = request model). "
                    "The SDK span says error.type=api_error (Anthropic's error type); OpenLLMetry "
                    "error.type=InternalServerError (exception class); OpenInference only status ERROR "
                    "+ exception event." + dup
                ),
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                tool_round(client, recorder)
            case.expect(
                llm_events=[
                    event(
                        has_content,
                        "Weather in Paris?",
                        "Let me check.",
                        input_tokens=3,
                        output_tokens=5,
                    ),
                    event(
                        has_content,
                        "Weather in Paris?",
                        fake.TOOL_ANSWER,
                        input_tokens=8,
                        output_tokens=5,
                    ),
                ],
                events=[tool_event(fake.TOOL_USE_ID)],
                llm_spans=llm_span,
                notes=(
                    'First reply has a text block AND a tool_use block (get_weather {"city": "Paris"}, '
                    "id toolu_fake_0001), stop_reason tool_use: generation is the text (tool call goes in "
                    "the event's tool calls if the reader keeps them). The app runs the tool in its own "
                    "'execute_tool get_weather' span (the SDK runs no tools outside tool_runner). 2nd call's "
                    "last user message is a tool_result, so prompt = the last user TEXT." + dup
                ),
            )

        with recorder.case("tool_runner") as case:
            with recorder.request_span():
                for _ in client.beta.messages.tool_runner(
                    model=MODEL,
                    max_tokens=100,
                    tools=[runner_weather_tool()],
                    messages=[{"role": "user", "content": "Weather in Paris?"}],
                ):
                    pass
            case.expect(
                llm_events=[
                    event(
                        has_content,
                        "Weather in Paris?",
                        "Let me check.",
                        input_tokens=3,
                        output_tokens=5,
                    ),
                    event(has_content, None, fake.TOOL_ANSWER, input_tokens=2, output_tokens=5),
                ],
                events=[tool_event(fake.TOOL_USE_ID)],
                llm_spans=llm_span,
                notes=(
                    "The SDK's own agent loop, client.beta.messages.tool_runner with a @beta_tool: the SDK "
                    "emits 'anthropic.messages.tool_runner' (INTERNAL, gen_ai.operation.name=invoke_agent: a "
                    "wrapper, NOT an LLM event) around both calls and an 'anthropic.custom_tool_use "
                    "get_weather' span (gen_ai.operation.name=execute_tool, gen_ai.tool.name, "
                    "gen_ai.tool.call.id=toolu_fake_0001): the tool event (span name differs from "
                    "'execute_tool get_weather'; the expected event name is the normalised one). The runner "
                    "uses the message-threads beta: the 2nd request sends ONLY the tool_result plus "
                    "thread={type: continue, previous_message_id}, so the 2nd call has no user text "
                    "(prompt null) and the fake, which keeps no threads, bills 2 input tokens."
                    + dup
                ),
            )

        with recorder.case("thinking") as case:
            with recorder.request_span():
                client.messages.create(
                    model=MODEL,
                    max_tokens=2048,
                    thinking={"type": "enabled", "budget_tokens": 1024},
                    messages=[{"role": "user", "content": "Say hello"}],
                )
            case.expect(
                llm_events=[
                    event(
                        has_content, "Say hello", "Echo: Say hello", input_tokens=2, output_tokens=8
                    )
                ],
                llm_spans=llm_span,
                notes=(
                    "Extended thinking: a thinking block ('The user wants a greeting.', 5 tokens) precedes the "
                    "text. Anthropic's output_tokens (8) includes thinking but the API does not split it "
                    "out, so reasoning_tokens is unknown (omitted). Generation is the text block only."
                    + dup
                ),
            )

        if mode == "native":
            record_native_conversation(client, recorder)
        if mode == "openinference":
            record_openinference_attributes(client, recorder)


def runner_weather_tool() -> Any:
    """``get_weather`` as the SDK's tool runner takes it."""
    from anthropic import beta_tool

    @beta_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return get_weather_result(city)

    return get_weather


def tool_round(client: Any, recorder: Recorder) -> None:
    """The manual tool loop of an app using the Messages API: ask, run the tool, answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=messages
    )
    call = next(b for b in first.content if b.type == "tool_use")
    with recorder.tracer.start_as_current_span(
        "execute_tool get_weather",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
        },
    ):
        result = "Sunny, 21C"
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}],
        },
    ]
    client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=messages)


def record_native_conversation(client: Any, recorder: Recorder) -> None:
    """The SDK's own session mechanism: ``conversation_id`` (and the API's ``metadata.user_id``)."""
    conversation = client.with_options(
        open_telemetry={**client.open_telemetry, "conversation_id": "t-42"}
    )
    with recorder.case("conversation_id") as case:
        conversation.messages.create(
            model=MODEL,
            max_tokens=100,
            metadata={"user_id": "u1"},
            messages=[{"role": "user", "content": "Say hello"}],
        )
        case.expect(
            llm_events=[
                event(
                    False,
                    "Say hello",
                    "Echo: Say hello",
                    input_tokens=2,
                    output_tokens=3,
                    user=None,
                )
            ],
            llm_spans=LLM_SPAN["native"],
            notes=(
                "No app span. Thread from the client option open_telemetry={'conversation_id': 't-42'} "
                "-> gen_ai.conversation.id. The user is only in the request's metadata.user_id, which the "
                "SDK's span does NOT record (in any content mode): a user would expect u1, but no span "
                "carries it, so user_id is null."
            ),
        )
    content = client.with_options(
        open_telemetry={
            **client.open_telemetry,
            "traces": {**client.open_telemetry["traces"], "content_mode": "content"},
        }
    )
    with recorder.case("content_mode") as case:
        with recorder.request_span():
            content.messages.create(
                model=MODEL,
                max_tokens=100,
                system=SYSTEM,
                messages=[{"role": "user", "content": "Say hello"}],
            )
        case.expect(
            llm_events=[
                event(True, "Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)
            ],
            llm_spans=LLM_SPAN["native"],
            notes=(
                "traces.content_mode='content' (or ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content): "
                "gen_ai.system_instructions / gen_ai.input.messages / gen_ai.output.messages as JSON."
            ),
        )


def record_openinference_attributes(client: Any, recorder: Recorder) -> None:
    """OpenInference's own user/session mechanism: ``using_attributes`` (a context, no app span)."""
    from openinference.instrumentation import using_attributes

    with recorder.case("using_attributes") as case:
        with using_attributes(session_id="t-42", user_id="u1", metadata={"plan": "pro"}):
            client.messages.create(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hello"}]
            )
        case.expect(
            llm_events=[
                event(True, "Say hello", "Echo: Say hello", input_tokens=2, output_tokens=3)
            ],
            llm_spans=LLM_SPAN["openinference"],
            notes=(
                "No app span: openinference.instrumentation.using_attributes(session_id, user_id, metadata) "
                "puts session.id / user.id / metadata (JSON) on the OpenInference span only; the SDK's "
                "child span does not get them." + DUPLICATE_NOTE["openinference"]
            ),
        )


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else "native")
