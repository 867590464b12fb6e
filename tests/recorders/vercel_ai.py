"""Record the Vercel AI SDK's spans as fixtures: ``tests/fixtures/spans/vercel-ai/<case>.json``.

A real Node app (``tests/node/vercel-ai/app.mjs``: ``ai`` 6.0.325, ``@ai-sdk/openai`` 3.0.141,
``@opentelemetry/sdk-node`` 0.223.0, the last release for Node 20, with
``exporter-trace-otlp-proto``; exact versions in its ``package-lock.json``) runs each case
against ``tests/fake_openai_extended.py`` and exports its spans over OTLP/HTTP protobuf to a
receiver here (``tests/otlp_receiver.py``), which decodes them with ``trubrics_otel``'s own
OTLP decoder. Re-record from a fresh clone::

    python3 -m venv /tmp/rec && /tmp/rec/bin/pip install -e .      # node 18.19+ / 20.6+, npm
    /tmp/rec/bin/python tests/recorders/vercel_ai.py               # npm ci runs when needed
    /tmp/rec/bin/python tests/recorders/vercel_ai.py chat stream   # some cases only
    /tmp/rec/bin/python tests/recorders/vercel_ai.py --app vercel-ai-7   # ai 7 (@ai-sdk/otel)

``expected`` is written by hand below from what the fake server answered (token counts are
its word counts; it adds ``CACHED_TOKENS`` cached and ``REASONING_TOKENS`` reasoning tokens),
never from what any reader outputs. Only a stream's time to first token is measured: it is
taken from the recording. Span ids are sequential (``--sequential-ids``) so a re-recording
diffs cleanly; timestamps differ run to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

import recording  # noqa: E402  (beside this script)
from fake_openai import RESPONSE_MODEL_SUFFIX, TOOL_ARGUMENTS, TOOL_CALL_ID  # noqa: E402
from fake_openai_extended import JSON_OBJECT, TOOL_ANSWER, ExtendedFakeOpenAI  # noqa: E402
from instrumented_app import span_json  # noqa: E402
from node_app import VERCEL_AI_APP, VERCEL_AI_CASES, ensure_npm_ci, run_vercel_ai_app  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

OUT = TESTS / "fixtures" / "spans" / "vercel-ai"
MODEL = "gpt-4o-mini"
RESPONSE_MODEL = MODEL + RESPONSE_MODEL_SUFFIX


def llm_event(
    prompt: str,
    generation: str | None,
    *,
    usage: dict[str, int | None] | None,
    assistant_id: str = RESPONSE_MODEL,
    error: str | None = None,
    time_to_first_token: float | None = None,
) -> dict[str, Any]:
    """One expected LLM event for user u1 in thread t-42 (``usage`` holds what is known)."""
    return recording.llm_event(
        prompt=prompt,
        generation=generation,
        model=assistant_id,
        error=error,
        time_to_first_token=time_to_first_token,
        **(usage or {}),
    )


def tokens(
    input_: int, output: int, *, cached: int | None = 2, reasoning: int | None = 1
) -> dict[str, int | None]:
    """``llm_event``'s token counts; ``None`` leaves out what the spans cannot know.

    No ``cache_creation_input_tokens``: OpenAI reports no cache writes, and the spans carry
    no ``ai.usage.inputTokenDetails.cacheWriteTokens`` to read.
    """
    return {"input_tokens": input_, "output_tokens": output, "cache_read": cached,
            "reasoning": reasoning}


def first_chunk_seconds(span: dict[str, Any]) -> float | None:
    """A stream's measured time to first token (``None`` for a call that did not stream)."""
    attributes = span["attributes"]
    if "gen_ai.client.operation.time_to_first_chunk" in attributes:  # ai 7 (seconds)
        return attributes["gen_ai.client.operation.time_to_first_chunk"]
    ms = attributes.get("ai.response.msToFirstChunk")
    return None if ms is None else ms / 1000


def is_model_call(span: dict[str, Any]) -> bool:
    """ai 6: ``ai.*.doGenerate`` / ``.doStream``; ai 7 (``@ai-sdk/otel``): ``chat <model>``."""
    return span["name"].endswith((".doGenerate", ".doStream")) or (
        span["attributes"].get("gen_ai.operation.name") == "chat"
    )


def ids(spans: list[dict[str, Any]]) -> list[str]:
    return [s["span_id"] for s in spans if is_model_call(s)]


def expected_for(case: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """What a user expects from each case, from the fake server's replies (see its docstring)."""
    chat = "What is OpenTelemetry?"  # system 5 words + user 3 = 8; "Echo: ..." 4 + 1 reasoning
    if case in ("chat", "nested"):
        events = [llm_event(chat, f"Echo: {chat}", usage=tokens(8, 5))]
        return {
            "llm_events": events,
            "span_for_llm_event": ids(spans),
        }
    if case == "stream":
        (stream_span,) = [s for s in spans if is_model_call(s)]
        events = [
            llm_event(
                "Tell me a story",  # 5 + 4 = 9 in; "Echo: Tell me a story" 5 + 1 out
                "Echo: Tell me a story",
                usage=tokens(9, 6),
                time_to_first_token=first_chunk_seconds(stream_span),
            )
        ]
        return {"llm_events": events, "span_for_llm_event": [stream_span["span_id"]]}
    if case in ("error", "error_retries"):
        attempts = ids(spans)
        failed = llm_event(
            "This call fails", None, usage=None, assistant_id="fail-500", error="AI_APICallError"
        )
        return {"llm_events": [failed] * len(attempts), "span_for_llm_event": attempts}
    if case in ("tool_call", "stream_tool_call"):
        call_spans = [s for s in spans if is_model_call(s)]
        ttfts = [first_chunk_seconds(s) for s in call_spans]
        events = [
            llm_event(  # "Weather in Paris?" 3 in; no text, 0 + 1 reasoning out
                recording.TOOL_QUESTION,
                f"tool_call: get_weather({TOOL_ARGUMENTS})",
                usage=tokens(3, 1),
                time_to_first_token=ttfts[0],
            ),
            llm_event(  # 3 + tool result JSON (1 word, no spaces) = 4 in; 7 words + 1 out
                recording.TOOL_QUESTION, TOOL_ANSWER, usage=tokens(4, 8),
                time_to_first_token=ttfts[1],
            ),
        ]
        return {
            "llm_events": events,
            "events": [recording.tool_event(TOOL_CALL_ID)],
            "span_for_llm_event": [s["span_id"] for s in call_spans],
        }
    if case == "object":
        generation = json.dumps(JSON_OBJECT)  # the provider's text, as ai.response.object holds it
        events = [  # 5 words in; 4 words + 1 out; cached / reasoning not on generateObject spans
            llm_event(
                "Weather in Paris as JSON",
                generation,
                usage=tokens(5, 5, cached=None, reasoning=None),
            )
        ]
        return {
            "llm_events": events,
            "span_for_llm_event": ids(spans),
        }
    raise ValueError(f"no expectation written for case {case!r}")


NOTES = {
    "chat": (
        "Two spans for one model call: ai.generateText (the call as the app made it, usage "
        "summed over steps) wraps ai.generateText.doGenerate (the model call): only "
        "doGenerate becomes an LLM event. User and thread are ai.telemetry.metadata.userId / "
        ".sessionId (the SDK's own mechanism, repeated on every span). The prompt is "
        "ai.prompt.messages' last user message, whose content is a list of {type:'text', "
        "text} parts. gen_ai.system is 'openai.chat' (provider 'openai'). Cached input: "
        "ai.usage.cachedInputTokens (= inputTokenDetails.cacheReadTokens), a subset of "
        "ai.usage.inputTokens; reasoning: ai.usage.reasoningTokens, a subset of outputTokens."
    ),
    "nested": (
        "As chat, but no ai.telemetry.metadata: user and thread are only on the app's root "
        "span 'handle request' (SERVER, user.id / session.id), two levels above doGenerate: "
        "an ancestor lookup, not the parent."
    ),
    "stream": (
        "ai.streamText wraps ai.streamText.doStream: only doStream is an LLM event. "
        "time_to_first_token = ai.response.msToFirstChunk / 1000 (also on the "
        "ai.stream.firstChunk event), measured, so taken from this recording. Usage is "
        "present because @ai-sdk/openai always asks for stream_options.include_usage."
    ),
    "error": (
        "HTTP 500 with maxRetries 0: doGenerate and generateText both status ERROR with an "
        "'exception' event (exception.type AI_APICallError); no response model, no usage "
        "(omitted, not 0). The error is the exception type; the status description holds the "
        "provider's message."
    ),
    "error_retries": (
        "The SDK's default maxRetries=2: a 5xx is retried with backoff, and each attempt is "
        "its own doGenerate span (3 model calls, 3 LLM events with an error) under one "
        "ai.generateText whose exception is AI_RetryError (message 'Failed after 3 "
        "attempts...'), while each attempt's is AI_APICallError."
    ),
    "tool_call": (
        "stopWhen stepCountIs(2): ai.generateText wraps two doGenerate spans and one "
        "ai.toolCall span (siblings). The first call's reply is only ai.response.toolCalls "
        "(JSON [{toolCallId, toolName, input}], input the provider's argument string); "
        'ai.toolCall.args is re-serialised (\'{"city":"Paris"}\'). The second call\'s prompt '
        "messages end with a role 'tool' message: the prompt is still the last user TEXT. "
        "ai.generateText's usage is the sum of both calls. The tool event's name follows the "
        "GenAI semconv ('execute_tool <tool>'); the span is 'ai.toolCall'."
    ),
    "stream_tool_call": (
        "streamText with the tool: as tool_call with doStream spans, each with its own "
        "ai.response.msToFirstChunk. On doStream, ai.response.toolCalls items are "
        "{type:'tool-call', toolCallId, toolName, input} with input the PARSED arguments "
        "object (on doGenerate it is the provider's string): a reader re-serialises it, so "
        "compare the arguments as JSON, not as text. The ai.toolCall span starts before the "
        "first doStream span ends."
    ),
    "object": (
        "ai.generateObject wraps ai.generateObject.doGenerate. The reply is "
        "ai.response.object (the provider's JSON text on doGenerate; re-serialised without "
        "spaces on the wrapper). Usage is only ai.usage.promptTokens / completionTokens (+ "
        "gen_ai.usage.*): the cached (2) and reasoning (1) tokens the server reported are NOT"
        " in the spans, so those properties are omitted."
    ),
}


NOTES_V7 = {
    case: (
        "ai 7 with @ai-sdk/otel's OpenTelemetry (GenAI semconv): invoke_agent <model> > "
        "step N > chat <model> (CLIENT, one per model call, retries inside it) and "
        "execute_tool <tool>. Only the chat spans become LLM events. The user and thread are "
        "the call's runtimeContext {userId, sessionId}, included by telemetry."
        "includeRuntimeContext and emitted as ai.settings.context.* on invoke_agent and step "
        "spans only (OpenTelemetry({runtimeContext: true})); nested: none, user on the app "
        "span. Reasoning tokens: ai.usage.outputTokenDetails.reasoningTokens, only with "
        "OpenTelemetry({usage: true})."
    )
    for case in VERCEL_AI_CASES
}
NOTES_V7["object"] += " generateObject (deprecated in ai 7) emits no ai.settings.context.*."


def record(
    case: str, openai_server: ExtendedFakeOpenAI, receiver: OtlpReceiver, app: Path
) -> dict[str, Any]:
    receiver.clear()
    outcome = run_vercel_ai_app(
        case, otlp_url=receiver.traces_url, openai_url=openai_server.url, sequential_ids=True,
        app=app,
    )
    failed = [r.error for r in receiver.requests if r.error]
    if failed:
        raise RuntimeError(f"{case}: the receiver could not decode {failed}")
    spans = []
    for span in sorted(receiver.spans, key=lambda s: (s.start_time, s.context.span_id)):
        data = span_json(span)
        data["resource"] = dict(span.resource.attributes)
        spans.append(data)
    expected = expected_for(case, spans)
    expected.setdefault("events", [])
    expected["notes"] = NOTES[case] if app == VERCEL_AI_APP else NOTES_V7[case]
    if app != VERCEL_AI_APP and case == "object":
        for event in expected["llm_events"]:  # generateObject puts no runtimeContext on its spans
            event["user_id"] = event["thread_id"] = None
    print(f"{case}: {len(spans)} spans, app got {json.dumps(outcome)[:160]}")
    return {"spans": spans, "logs": [], "expected": expected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", default=list(VERCEL_AI_CASES))
    parser.add_argument("--app", choices=("vercel-ai", "vercel-ai-7"), default="vercel-ai",
                        help="tests/node/<app>; the fixtures go to tests/fixtures/spans/<app>")
    args = parser.parse_args(argv)
    app = VERCEL_AI_APP.parent / args.app
    out = OUT.parent / args.app
    ensure_npm_ci(app)
    out.mkdir(parents=True, exist_ok=True)
    with ExtendedFakeOpenAI() as openai_server, OtlpReceiver() as receiver:
        for case in args.cases:
            fixture = record(case, openai_server, receiver, app)
            path = out / f"{case}.json"
            path.write_text(json.dumps(fixture, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
