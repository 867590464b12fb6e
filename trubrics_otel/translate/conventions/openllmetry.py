"""OpenLLMetry (Traceloop): releases <= 0.47, still in the field, and its flattened messages.

Current OpenLLMetry writes the GenAI convention (:mod:`.genai` reads it). Older releases mark
a call with ``llm.request.type`` (no ``gen_ai.operation.name``) and flatten messages into
``gen_ai.prompt.{i}.role/.content`` / ``gen_ai.completion.{i}.*``; the same GenAI reader
then applies.
"""

from __future__ import annotations

from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import Attributes
from trubrics_otel.translate.messages import indexed


def recognises_legacy(attributes: Attributes) -> bool:
    return attributes.get(sc.LLM_REQUEST_TYPE) in ("chat", "completion")


def flattened_messages(attributes: Attributes, prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` … → ``[{"role", "content", "tool_calls"}]``."""
    messages = []
    for flat in indexed(attributes, prefix):
        message: dict[str, Any] = {k: v for k, v in flat.items() if "." not in k}
        calls = indexed(flat, "tool_calls.")
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return messages
