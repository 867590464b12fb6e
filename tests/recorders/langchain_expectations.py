"""What each LangChain setup's spans can tell, and the notes its fixtures carry.

Hand-written from the recorded spans (see ``langchain_fixtures.py``); a value a setup cannot
know is ``None`` here and then left out of the expected event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import recording as r

RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
LANGCHAIN_ERROR = "langchain_openai.chat_models.base.OpenAIAPIError"


@dataclass(frozen=True)
class Knowable:
    chat_reasoning: int | None  # reasoning tokens of a plain (non-agent) call
    stream_model: str  # the model a stream's spans name (the request model if that is all)
    stream_reasoning: int | None
    stream_ttft: Any  # a recording.Measured, or recording.NOT_RECORDED
    error: str  # the exception type on the span chosen for the failed call
    notes: str
    stream_notes: str
    agent_notes: str
    metadata_notes: str


OPENINFERENCE_NOTES = (
    "OpenInference LangChain: the LLM span is `ChatOpenAI` (INTERNAL, "
    "openinference.span.kind=LLM); "
    "prompt in llm.input_messages.N.message.role/content (system + user), reply in "
    "llm.output_messages.0.message.content / .tool_calls.N.tool_call.*, llm.model_name = response "
    "model, tokens llm.token_count.prompt/completion/total + prompt_details.cache_read + "
    "completion_details.reasoning. input.value/output.value hold LangChain's serialised messages."
)
OPENLLMETRY_NOTES = (
    "OpenLLMetry LangChain: the LLM span is `ChatOpenAI.chat` (CLIENT, "
    "gen_ai.operation.name=chat); "
    "gen_ai.system_instructions + gen_ai.input.messages (no system message inside), "
    "gen_ai.output.messages, gen_ai.request/response.model, "
    "gen_ai.usage.input_tokens/output_tokens/"
    "total_tokens/cache_read.input_tokens. No reasoning tokens on the span: left out for plain "
    "calls."
)
OPENLLMETRY_AGENT = (
    "LangGraph (create_agent): wrappers `create_agent agent` (at build time), `invoke_agent "
    "LangGraph`, "
    "`LangGraph.workflow`, `execute_task model|tools` are not LLM events; the tool run is "
    "`execute_tool get_weather` (gen_ai.tool.name; the tool_call_id only inside "
    "gen_ai.tool.call.result, "
    "a serialised ToolMessage). The FIRST `ChatOpenAI.chat` (the tool-call reply) has NO "
    "gen_ai.output.messages, finish reason, output tokens or cache_read: the tool call, cached=4 "
    "and "
    "reasoning=0 are only in its parent `execute_task model` span's gen_ai.task.output (AIMessage "
    "tool_calls + usage_metadata) and in the next call's gen_ai.input.messages. Second call: "
    "reasoning "
    "likewise only in the task output."
)
OPENINFERENCE_AGENT = (
    "LangGraph (create_agent): `LangGraph` / `model` / `tools` are CHAIN wrappers; `get_weather` "
    "is the "
    "TOOL span (tool.name; tool_call_id only inside output.value, a serialised ToolMessage)."
)
OPENINFERENCE_METADATA = (
    "No app span: config metadata session_id becomes session.id on every span; user_id stays "
    "inside "
    'the `metadata` JSON attribute ("user_id": "u1").'
)
OPENLLMETRY_METADATA = (
    "No app span: config metadata becomes traceloop.association.properties.user_id / .session_id "
    "on "
    "every span (LangGraph task/workflow spans too)."
)
DUPLICATE_NOTES = (
    "DUPLICATES: OpenLLMetry's OpenAI instrumentation adds an `openai.chat` CLIENT span (scope "
    "opentelemetry.instrumentation.openai.v1) for every model call, as a SIBLING of "
    "OpenInference's "
    "`ChatOpenAI` LLM span (OpenInference does not make its span current), parented to whatever "
    "span "
    "was current (the app span, else none: then it is a ROOT in ANOTHER TRACE). One LLM event per "
    "call: "
    "from the `ChatOpenAI` span (it has the user/session and the app's trace); drop `openai.chat` "
    "as the "
    "same call (same request model and input messages, time inside the ChatOpenAI span). "
)

KNOWABLE = {
    "langchain-openinference": Knowable(
        chat_reasoning=0,
        stream_model=RESPONSE_MODEL,
        stream_reasoning=0,
        stream_ttft=r.NOT_RECORDED,
        error=LANGCHAIN_ERROR,
        notes=OPENINFERENCE_NOTES,
        stream_notes="Stream: llm.model_name is the REQUEST model and there is no "
        "llm.input_messages; "
        "the response model (generation_info.model_name) and reasoning (usage_metadata."
        "output_token_details.reasoning) are only in output.value; the prompt only in input.value "
        "(serialised messages). No first-token event.",
        agent_notes=OPENINFERENCE_AGENT,
        metadata_notes=OPENINFERENCE_METADATA,
    ),
    "langchain-openllmetry": Knowable(
        chat_reasoning=None,
        stream_model="gpt-4o-mini",
        stream_reasoning=None,
        stream_ttft=r.NOT_RECORDED,
        error=LANGCHAIN_ERROR,
        notes=OPENLLMETRY_NOTES,
        stream_notes="Stream: gen_ai.response.model repeats the REQUEST model (gpt-4o-mini, not "
        "the "
        "dated snapshot the server returned) and the output message role is 'unknown'. No "
        "first-token "
        "event.",
        agent_notes=OPENLLMETRY_AGENT,
        metadata_notes=OPENLLMETRY_METADATA,
    ),
    "langchain-openinference-with-openai": Knowable(
        chat_reasoning=0,
        stream_model=RESPONSE_MODEL,
        stream_reasoning=0,
        stream_ttft=r.first_event_delay(
            "gen_ai.content.completion.chunk", on=lambda s: s["name"] == "openai.chat"
        ),
        error=LANGCHAIN_ERROR,
        notes=DUPLICATE_NOTES + OPENINFERENCE_NOTES,
        stream_notes="Stream: the time to first token is only on the duplicate `openai.chat` (its "
        "first "
        "gen_ai.content.completion.chunk event minus its start); `openai.chat` also has the "
        "response "
        "model and usage that the LangChain span keeps only in output.value.",
        agent_notes=OPENINFERENCE_AGENT,
        metadata_notes=OPENINFERENCE_METADATA
        + " The `openai.chat` duplicates are root spans of their own traces here.",
    ),
}
KNOWABLE["langchain-openllmetry-with-openai"] = Knowable(
    **{
        **KNOWABLE["langchain-openllmetry"].__dict__,
        "notes": "NO duplicate: OpenLLMetry's LangChain instrumentation sets the "
        "SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION context key around the model call, so "
        "opentelemetry-instrumentation-openai, although installed and instrumented, emits nothing "
        "(it does emit `openai.chat` for direct openai calls). " + OPENLLMETRY_NOTES,
    }
)
