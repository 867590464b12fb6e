"""The last row of the table: a model call from a library nobody here has recorded.

A span is read as an LLM call when it names a model and carries message-shaped input or
output, or token counts, under a common spelling::

    {"model": "my-model", "input": "[{\\"role\\": \\"user\\", ...}]", "output": "Hi",
     "usage.prompt_tokens": 5}                                  # → LlmCall(prompt=..., ...)

Spellings: a model under ``model`` / ``*.model`` / ``*.model_name`` / ``*.model.name`` /
``*model_id``; content under ``input`` / ``output``, ``*.input.value`` / ``*.output.value``,
``*.messages``, ``prompt`` / ``completion``, ``*.response``; counts under ``usage.*`` /
``*_tokens`` / ``*Tokens`` or a JSON ``*usage`` object. Never a call: a span that declares
another kind (``gen_ai.operation.name``, ``openinference.span.kind``, ``traceloop.span.kind``…
naming an agent, tool or chain), an HTTP, database, RPC or messaging span, an embedding, or a
span named like an agent, tool, workflow or retriever. The helpers that turn any JSON value
into prompt / reply text and any usage object into token counts are shared by the rows that
read JSON blobs (Langfuse, MLflow, Haystack, Logfire).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import Attributes, Convention, LlmCall
from trubrics_otel.translate.conventions.tokens import token_properties
from trubrics_otel.translate.messages import (
    assistant_text,
    by_shape,
    last_user_text,
    message_text,
    parse_json,
    user_text,
)

_MAX_DEPTH = 5

# --- any JSON value → text ---------------------------------------------------------------

_PROMPT_KEYS = ("messages", "prompt", "input", "inputs", "contents", "question", "query",
                "user_input", "text", "content", "kwargs", "args")
_REPLY_KEYS = ("choices", "message", "output", "outputs", "completion", "response", "replies",
               "text", "content", "generations", "result")


def parsed(value: Any) -> Any:
    """An attribute's value, JSON text parsed (plain text stays text)."""
    if isinstance(value, str) and value[:1] in ("[", "{", '"'):
        found = parse_json(value)
        return value if found is None else found
    return list(value) if isinstance(value, tuple) else value


def prompt_text(value: Any, depth: int = 0) -> str:
    """The user's text in a request of any shape: a string, a message list (the last user
    message), ``{"messages": [...]}``, a function's ``{"args": [...], "kwargs": {...}}``."""
    if isinstance(value, str):
        return value
    if depth > _MAX_DEPTH:
        return ""
    if isinstance(value, list):
        if any(isinstance(m, Mapping) and "role" in m for m in value):
            return last_user_text(value)
        for item in reversed(value):
            text = prompt_text(item, depth + 1)
            if text:
                return text
        return ""
    if isinstance(value, Mapping):
        if "role" in value:
            return user_text(value) if value.get("role") in ("user", "human") else ""
        for key in _PROMPT_KEYS:
            if key in value:
                text = prompt_text(value[key], depth + 1)
                if text:
                    return text
    return ""


def reply_text(value: Any, depth: int = 0) -> str:
    """The model's text in a response of any shape: a string, a message (tool calls
    summarised), a message list, an OpenAI-style ``{"choices": [{"message": ...}]}``."""
    if isinstance(value, str):
        return value
    if depth > _MAX_DEPTH:
        return ""
    if isinstance(value, list):
        if any(isinstance(m, Mapping) and ("role" in m or "parts" in m) for m in value):
            return assistant_text([m for m in value if m.get("role", "assistant") != "user"])
        texts = [reply_text(item, depth + 1) for item in value]
        return "\n".join(t for t in texts if t)
    if isinstance(value, Mapping):
        if "role" in value or "tool_calls" in value:
            return message_text(value)
        for key in _REPLY_KEYS:
            if key in value:
                text = reply_text(value[key], depth + 1)
                if text:
                    return text
    return ""


_USAGE_ALIASES = {  # spellings normalise_usage does not know → one it does (OpenAI's)
    "input": "prompt_tokens", "output": "completion_tokens", "inputTokens": "prompt_tokens",
    "outputTokens": "completion_tokens", "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens", "input_token_count": "prompt_tokens",
    "output_token_count": "completion_tokens", "prompt": "prompt_tokens",
    "completion": "completion_tokens",
}


def usage_of(raw: Any, provider: str | None = None) -> dict[str, Any]:
    """Token properties from a usage object under any common spelling (``{}`` if none)."""
    raw = parsed(raw)
    if not isinstance(raw, Mapping):
        return {}
    if not any(key in raw for key in ("prompt_tokens", "input_tokens", "completion_tokens",
                                      "output_tokens", "prompt_token_count")):
        renamed = {_USAGE_ALIASES.get(key, key): value for key, value in raw.items()}
        if "prompt_tokens" not in renamed and "completion_tokens" not in renamed:
            return {}
        raw = renamed
    return token_properties(provider, raw)


# --- the row -------------------------------------------------------------------------------

_DECLARED_KINDS = frozenset({
    sc.GEN_AI_OPERATION_NAME, "openinference.span.kind", "traceloop.span.kind",
    "langfuse.observation.type", "mlflow.spanType", "ai.operationId", "haystack.component.type",
    "http.method", "http.request.method", "http.url", "url.full", "db.system", "db.system.name",
    "db.statement", "db.query.text", "rpc.system", "messaging.system",
})
"""A span carrying one of these said what it is: its own row read it, or it is not a call."""
_MODEL_SUFFIXES = ("model", "model_name", ".model.name", "model_id", "modelId", "modelName")
_CONTENT_SUFFIXES = ("input", "output", ".input.value", ".output.value", "messages", "prompt",
                     "completion", "prompts", "completions", ".response", "_tokens", "Tokens",
                     "usage", "usage_details", "token_usage", "tokenUsage")
_NOT_CALLS = ("agent", "tool", "workflow", "chain", "pipeline", "retriev", "embed", "rerank",
              "guardrail", "evaluat")
_TOKEN_LEAVES: dict[str, str] = {
    "prompt_tokens": "prompt_tokens", "input_tokens": "prompt_tokens",
    "promptTokens": "prompt_tokens", "inputTokens": "prompt_tokens",
    "completion_tokens": "completion_tokens", "output_tokens": "completion_tokens",
    "completionTokens": "completion_tokens", "outputTokens": "completion_tokens",
}
_PROVIDER_SUFFIXES = ("provider", "provider_name", ".system", "vendor")


def recognises(attributes: Attributes) -> bool:
    """Cheap: the keys alone decide, once per spelling of a span's keys (``by_shape``: asked
    of every span no other row took); :func:`read` decides (it may still find nothing)."""
    if not _DECLARED_KINDS.isdisjoint(attributes):
        return False
    return by_shape(_SHAPES, _DECLARED_KINDS, tuple(attributes), _recognises_keys)


def _recognises_keys(keys: tuple[str, ...], _: frozenset[str]) -> bool:
    model = content = False
    for key in keys:
        if key.endswith(_MODEL_SUFFIXES):
            model = True
        elif key.endswith(_CONTENT_SUFFIXES) or key.startswith("usage."):
            content = True
        if model and content:
            return True
    return False


_SHAPES: dict[frozenset[str], dict[tuple[str, ...], bool]] = {}


def read(span: ReadableSpan) -> LlmCall | None:
    """The call, or ``None`` for a span that only looked like one (no text, no counts, or
    named like a wrapper: an agent run that names its model and sums its calls' tokens)."""
    name = span.name.lower()
    if any(word in name for word in _NOT_CALLS):
        return None
    attributes = span.attributes or {}
    model = provider = None
    prompt = generation = ""
    counts: dict[str, Any] = {}
    usage_objects = []
    for key, value in attributes.items():
        leaf = key.rpartition(".")[2]
        if "embedding" in key:
            return None
        if key.endswith(_MODEL_SUFFIXES):
            if isinstance(value, str) and value and (model is None or "response" in key):
                model = value
        elif key.endswith(_PROVIDER_SUFFIXES) and isinstance(value, str):
            provider = provider or value
        elif leaf in _TOKEN_LEAVES:
            counts.setdefault(_TOKEN_LEAVES[leaf], value)
        elif leaf in ("usage", "usage_details", "token_usage", "tokenUsage"):
            usage_objects.append(value)
        elif leaf in ("input", "value", "messages", "prompt", "prompts") and not prompt:
            if leaf != "value" or key.endswith(".input.value"):
                prompt = prompt_text(parsed(value))
        elif leaf in ("output", "value", "completion", "completions", "response") and not generation:
            if leaf != "value" or key.endswith(".output.value"):
                found = parsed(value)
                generation = reply_text(found)
                if isinstance(found, Mapping) and "usage" in found:
                    usage_objects.append(found["usage"])
    properties: dict[str, Any] = {}
    for raw in usage_objects:
        properties = usage_of(raw, provider)
        if properties:
            break
    if not properties and counts:
        properties = token_properties(provider, counts)
    if not model or not (prompt or generation or properties):
        return None
    if provider:
        properties[sc.PROP_PROVIDER] = provider
    return LlmCall(prompt, generation, model, properties)


GENERIC = Convention("generic", recognises, read)
