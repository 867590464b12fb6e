"""Record Google ADK fixtures: ADK's own spans (and log records) for a Gemini agent.

Writes ``tests/fixtures/spans/google-adk{,-content,-legacy}/<case>.json``. The agent's ``Gemini``
model talks to ``tests/fake_gemini.py`` (``Gemini(base_url=...)``); the ``Runner`` has an
in-memory session (user ``u1``, session ``t-42``). One telemetry mode per process::

    python -m venv /tmp/adk-venv && /tmp/adk-venv/bin/pip install google-adk==2.13.0 \
        google-genai==2.34.0 opentelemetry-sdk==1.44.0
    for mode in default content legacy; do /tmp/adk-venv/bin/python tests/recorders/google_adk.py $mode; done
    /tmp/adk-venv/bin/pip install opentelemetry-instrumentation-google-genai==1.3b0  # then:
    /tmp/adk-venv/bin/python tests/recorders/google_adk.py genai-instrumentor
    # openinference: a fresh venv as above plus openinference-instrumentation-google-adk==1.0.5

Modes: ``default`` = ADK 2.x schema v2 (GenAI-semconv aligned, no message content);
``content`` = the same with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT``;
``legacy`` = ``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1`` (ADK 1.x spans: ``invocation``,
``call_llm``, ``gcp.vertex.agent.*`` JSON); ``openinference`` = default plus
``openinference-instrumentation-google-adk==1.0.5``; ``genai-instrumentor`` = default plus OTel contrib's
``opentelemetry-instrumentation-google-genai`` (add ``==1.3b0`` to the install line), to which ADK
then leaves the model-call span. ADK takes OpenTelemetry's global providers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

MODES = {
    "default": {},
    "content": {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"},
    "legacy": {"ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN": "1"},
    "genai-instrumentor": {},
    "openinference": {},
}
# Modes whose spans hold no message content, and whose spans know the response model.
WITHOUT_CONTENT = {"default", "genai-instrumentor"}
WITH_RESPONSE_MODEL = {"legacy", "genai-instrumentor"}
MODE = sys.argv[1] if len(sys.argv) > 1 else "default"
os.environ.update(MODES[MODE])
os.environ.setdefault("GOOGLE_API_KEY", "fake-gemini-key")

import fake_gemini as fake  # noqa: E402
from recording import (  # noqa: E402
    SDK_LAYOUT,
    SECONDS,
    TOOL_GENERATION,
    Recorder,
    SpanDict,
    get_weather_result,
    llm_event,
)

MODEL = "gemini-2.5-flash"
RESPONSE_MODEL = MODEL + "-001"
APP, USER_ID, SESSION_ID = "weather_app", "u1", "t-42"
INSTRUCTION = "You are terse."
NOTES = {
    "default": (
        "ADK schema v2 (default): invoke_workflow > invoke_agent > 'generate_content <model>' (one per model "
        "call: the LLM event) and 'execute_tool <name>'. Scope gcp.vertex.agent. No message content on spans "
        "or logs (capture off). gen_ai.conversation.id = the ADK session id on every span; the session's "
        "user_id is NOT on spans (ADK puts user.id only on content log records). Usage is already "
        "normalised: gen_ai.usage.input_tokens = promptTokenCount (includes cached), output_tokens = "
        "candidates + thoughts, reasoning.output_tokens = thoughts, cache_read.input_tokens = cached. "
        "No response model on the span: assistant_id = request model. One "
        "'gen_ai.client.inference.operation.details' log record per model call repeats the usage."
    ),
    "content": (
        "Like google-adk, plus OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT: "
        "gen_ai.input.messages / gen_ai.output.messages / gen_ai.system_instructions on the "
        "generate_content span and in its log record (which also carries user.id)."
    ),
    "legacy": (
        "ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1 (the ADK 1.x format): 'invocation' > 'invoke_agent' > "
        "'call_llm' (the LLM event: request/response as JSON in gcp.vertex.agent.llm_request / "
        "llm_response incl. model_version, gen_ai.usage.*, gen_ai.system=gcp.vertex.agent) > "
        "'generate_content <model>' (gen_ai.system=gemini: the SAME call, a duplicate to merge) and "
        "'execute_tool <name>' (gcp.vertex.agent.tool_call_args / tool_response); session in "
        "gcp.vertex.agent.session_id and gen_ai.conversation.id. Log records gen_ai.system.message / "
        "gen_ai.user.message / gen_ai.choice with content '<elided>'; no user id anywhere."
    ),
    "genai-instrumentor": (
        "ADK schema v2 + opentelemetry-instrumentation-google-genai 1.3b0: ADK leaves the model call to the "
        "instrumentor, whose CLIENT span 'generate_content <model>' (scope "
        "opentelemetry.instrumentation.google_genai) ADK enriches with gen_ai.agent.name, "
        "gen_ai.conversation.id, gcp.vertex.agent.*: ONE span per call (no duplicate). It adds "
        "gen_ai.response.model (modelVersion), gen_ai.response.id, gen_ai.provider.name=gemini (not "
        "gcp.gemini), per-modality gen_ai.usage.text.*; no content unless "
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is set."
    ),
    "openinference": (
        "openinference-instrumentation-google-adk 1.0.5 on ADK 2.13 (schema v2) is only PARTLY compatible: "
        "it adds its own 'invocation [<app>]' / 'invoke_workflow' (CHAIN) and 'agent_run [<agent>]' (AGENT) "
        "spans, all with user.id / session.id from the Runner, and turns the TOOL span into "
        "openinference.span.kind=TOOL (tool.name, tool.id, tool.parameters, input/output.value), but it "
        "writes each model call's LLM attributes (llm.input_messages.*, llm.output_messages.*, "
        "llm.token_count.prompt / completion / completion_details.reasoning, llm.model_name = request "
        "model, llm.provider=google, input/output.value JSON with model_version) onto ADK's "
        "'invoke_agent <agent>' span (scope gcp.vertex.agent, which keeps ADK's gen_ai.usage.* too), and "
        "ADK's 'generate_content' spans disappear: with two calls in one agent run the second OVERWRITES "
        "the first (stale first-call tool_calls stay in llm.output_messages.0.message.tool_calls). That "
        "span has no user/session: they sit on its OpenInference ancestors. No cache count in llm.*; "
        "ADK's gen_ai.usage.cache_read.input_tokens on the same span has it. On a failed call that span "
        "is only ADK's (gen_ai.operation.name=generate_content, no openinference.span.kind)."
    ),
}


def is_llm_span(span: SpanDict) -> bool:
    if MODE == "legacy":  # call_llm; when it failed it records nothing, its generate_content child does
        if span["status"]["code"] == "ERROR":
            return span["name"].startswith("generate_content ")
        return span["name"] == "call_llm"
    if (
        MODE == "openinference"
    ):  # ADK's invoke_agent span, which carries the (last) call's attributes
        return span["attributes"].get("gen_ai.operation.name") == "generate_content"
    return span["name"].startswith("generate_content ")


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    """Gemini usage: prompt includes the cached 64; output = candidates + 7 thoughts."""
    if MODE in WITHOUT_CONTENT:
        prompt = generation = None
    kwargs.setdefault("model", RESPONSE_MODEL if MODE in WITH_RESPONSE_MODEL else MODEL)
    if "output_tokens" in kwargs:
        kwargs.update(cache_read=fake.CACHED, reasoning=fake.THOUGHTS)
    # what the spans say: ADK's schema v2 writes gcp.gemini; v1 (legacy) only says gemini, on
    # call_llm's generate_content child (call_llm's own gen_ai.system is ADK, gcp.vertex.agent)
    kwargs.setdefault("provider", "gemini" if MODE in ("genai-instrumentor", "legacy") else "gcp.gemini")
    return llm_event(prompt=prompt, generation=generation, **kwargs)


def tool_events(spans: list[SpanDict]) -> list[dict[str, Any]]:
    """ADK invents the call id (``adk-<uuid>``), so it is read from the recording."""
    return [
        {
            "event": "execute_tool get_weather",
            "user_id": USER_ID,
            "properties": {
                "tool_name": "get_weather",
                "tool_call_id": s["attributes"].get("gen_ai.tool.call.id"),
            },
        }
        for s in spans
        if s["name"] == "execute_tool get_weather"
        or (s["name"] == "execute_tool" and MODE == "legacy")
    ]


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return get_weather_result(city)


class AgentApp:
    """A Runner over one ADK agent, with the session the cases share."""

    def __init__(self, base_url: str, model: str = MODEL, tools: list[Any] | None = None) -> None:
        from google.adk.agents import LlmAgent
        from google.adk.models.google_llm import Gemini
        from google.adk.runners import Runner
        from google.adk.sessions import InMemorySessionService

        agent = LlmAgent(
            name="weather_agent",
            model=Gemini(model=model, base_url=base_url),
            instruction=INSTRUCTION,
            tools=tools or [],
        )
        sessions = InMemorySessionService()
        self.runner = Runner(agent=agent, app_name=APP, session_service=sessions)
        asyncio.run(sessions.create_session(app_name=APP, user_id=USER_ID, session_id=SESSION_ID))

    def ask(self, text: str, stream: bool = False) -> None:
        from google.adk.agents.run_config import RunConfig, StreamingMode
        from google.genai import types

        config = RunConfig(streaming_mode=StreamingMode.SSE if stream else StreamingMode.NONE)
        message = types.Content(role="user", parts=[types.Part(text=text)])
        for _ in self.runner.run(
            user_id=USER_ID, session_id=SESSION_ID, new_message=message, run_config=config
        ):
            pass


def record() -> None:
    suffix = "" if MODE == "default" else f"-{MODE}"
    recorder = Recorder(f"google-adk{suffix}", SDK_LAYOUT)
    recorder.set_global()
    if MODE == "genai-instrumentor":
        from opentelemetry.instrumentation.google_genai import (
            GoogleGenAiSdkInstrumentor,
        )

        GoogleGenAiSdkInstrumentor().instrument()
    if MODE == "openinference":
        from openinference.instrumentation.google_adk import GoogleADKInstrumentor

        GoogleADKInstrumentor().instrument(tracer_provider=recorder.provider)
    notes = NOTES[MODE]
    with fake.FakeGemini() as server:
        with recorder.case("chat") as case:
            with recorder.request_span():
                AgentApp(server.url).ask("Say hello")
            case.expect(
                llm_events=[
                    event("Say hello", "Echo: Say hello", input_tokens=102, output_tokens=10)
                ],
                llm_spans=is_llm_span,
                notes="Inside the app's 'handle request' span (user.id/session.id); ADK's session is u1/t-42 too. "
                + notes,
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                AgentApp(server.url).ask("Count to three", stream=True)
            case.expect(
                llm_events=[
                    event(
                        "Count to three",
                        "Echo: Count to three",
                        input_tokens=103,
                        output_tokens=11,
                        time_to_first_token=SECONDS if MODE == "genai-instrumentor" else None,
                    )
                ],
                llm_spans=is_llm_span,
                notes="RunConfig(streaming_mode=SSE): streamGenerateContent, one word per chunk, usage on the "
                "last chunk. Time to first token only with the genai instrumentor "
                "(gen_ai.response.time_to_first_chunk). Content mode: "
                "gen_ai.output.messages holds ONE assistant message PER CHUNK (5 messages, 'Echo:', ' Count', "
                "...; finish_reason '' until the last): the generation is their concatenation. Legacy: "
                "llm_response has the aggregated text (partial false), and one gen_ai.choice log per chunk. "
                + notes,
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                AgentApp(server.url, tools=[get_weather]).ask("Weather in Paris?")
            calls = [
                event("Weather in Paris?", TOOL_GENERATION, input_tokens=103, output_tokens=9),
                event("Weather in Paris?", fake.TOOL_ANSWER, input_tokens=103, output_tokens=12),
            ]
            case.expect(
                # OpenInference 1.0.5 on ADK 2.x writes both calls onto one span: the first is lost.
                llm_events=calls[1:] if MODE == "openinference" else calls,
                events=tool_events,
                llm_spans=is_llm_span,
                notes="ADK runs get_weather itself ('execute_tool get_weather', call id adk-<uuid> that ADK "
                "invents: Gemini's functionCall has no id), then calls the model again with the "
                "functionResponse: 2nd prompt = the last user TEXT. " + notes,
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    AgentApp(server.url, model=fake.FAIL_MODEL).ask("Break")
                except Exception as error:  # google.genai.errors.ServerError
                    print(f"error case raised {type(error).__name__}")
            case.expect(
                llm_events=[
                    event(
                        "Break" if MODE == "content" else None,
                        None,
                        model=fake.FAIL_MODEL,
                        error="ServerError",
                        provider="gemini" if MODE == "legacy" else "gcp.gemini",
                    )
                ],
                llm_spans=is_llm_span,
                notes="HTTP 500 INTERNAL: google.genai.errors.ServerError propagates out of Runner.run; status "
                "ERROR + exception event on the model span AND on invoke_agent / invoke_workflow (invocation) "
                "wrappers, which must not become LLM events. Prompt only in content mode "
                "(gen_ai.input.messages). Legacy: the failed call_llm span has NO attributes; model and "
                "provider only on its child 'generate_content fail-500'. With the genai instrumentor the failed "
                "call has NO instrumentor span: ADK's own 'generate_content fail-500' (gcp.gemini) records it. "
                + notes,
            )

        with recorder.case("runner_session") as case:
            AgentApp(server.url).ask("Say hi")
            user = USER_ID if MODE in ("content", "openinference") else None
            case.expect(
                llm_events=[
                    event("Say hi", "Echo: Say hi", input_tokens=102, output_tokens=10, user=user)
                ],
                llm_spans=is_llm_span,
                notes="No app span: only ADK's own mechanism, Runner.run(user_id='u1', session_id='t-42'). "
                "The session id is on every span; the user id is on no span, only on content log "
                "records (content mode), so user_id is unknown here unless logs carry it (OpenInference: user.id "
                "on its own ancestor spans). " + notes,
            )


if __name__ == "__main__":
    record()
