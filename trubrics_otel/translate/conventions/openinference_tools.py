"""OpenInference TOOL spans: one product event per tool run, and which call each run answers.

::

    read_tool(span)        # SpanEvent("execute_tool get_weather", {"tool_name", "tool_call_id"})
    tool_call_ids(spans)   # {tool span id: call id} for runs that do not record their call

A TOOL span names its tool in ``tool.name`` and, per the spec, the call it answers in
``tool.id`` (``= tool_call.id`` of the model's reply). LangChain leaves ``tool.id`` out but
its ``output.value`` is the serialised ``ToolMessage``, which holds ``tool_call_id``. The
OpenAI Agents SDK and LlamaIndex record no id at all: :func:`tool_call_ids` finds it in the
reply of the model call that asked for the run (a pure function over a batch of spans, for
the encoder's batch pass).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import Attributes, SpanEvent, tool_name
from trubrics_otel.translate.messages import indexed, parse_json, text_or_none

TOOL_KIND = "TOOL"
TOOL_NAME = "tool.name"
TOOL_ID = "tool.id"


def read_tool(span: ReadableSpan) -> SpanEvent:
    attributes = span.attributes or {}
    name = tool_name(text_or_none(attributes.get(TOOL_NAME)) or span.name)
    properties: dict[str, Any] = {sc.PROP_TOOL_NAME: name}
    call_id = tool_call_id(attributes)
    if call_id:
        properties[sc.PROP_TOOL_CALL_ID] = call_id
    return SpanEvent(name=f"{sc.OPERATION_EXECUTE_TOOL} {name}", properties=properties)


def tool_call_id(attributes: Attributes) -> str | None:
    """``tool.id``, else the ``tool_call_id`` of a LangChain ``ToolMessage`` in the output."""
    if text_or_none(attributes.get(TOOL_ID)):
        return str(attributes[TOOL_ID])
    output = parse_json(attributes.get(sc.OUTPUT_VALUE))
    if not isinstance(output, Mapping):
        return None
    data = output.get("data")
    found = data.get("tool_call_id") if isinstance(data, Mapping) else None
    return text_or_none(found or output.get("tool_call_id"))


def tool_call_ids(spans: Iterable[ReadableSpan]) -> dict[int, str]:
    """``{tool span id: call id}`` for OpenInference TOOL spans that record no call id.

    Each such run is matched, in start order, to the first unclaimed call of the same tool
    name in the reply of the latest LLM span of its trace that ended before the run
    started: the model asked, then the framework ran the tool.
    """
    replies: list[tuple[int, int, list[tuple[str, str]]]] = []  # (trace, end, [(id, name)])
    runs: list[ReadableSpan] = []
    models: list[ReadableSpan] = []
    for span in spans:
        attributes = span.attributes or {}
        kind = attributes.get(sc.OPENINFERENCE_SPAN_KIND)
        if span.context is None:
            continue
        if kind == TOOL_KIND and not tool_call_id(attributes):
            runs.append(span)
        elif kind == sc.OPENINFERENCE_LLM:
            models.append(span)
    if not runs:  # the usual batch: no tool run to match, no reply worth reading
        return {}
    for span in models:
        calls = _reply_calls(span.attributes or {})
        if calls:
            replies.append((span.context.trace_id, span.end_time or 0, calls))  # type: ignore[union-attr]
    replies.sort(key=lambda reply: reply[1], reverse=True)  # latest first
    claimed: set[str] = set()
    found: dict[int, str] = {}
    for run in sorted(runs, key=lambda s: s.start_time or 0):
        assert run.context is not None
        name = text_or_none((run.attributes or {}).get(TOOL_NAME)) or run.name
        for trace_id, end, calls in replies:
            if trace_id != run.context.trace_id or end > (run.start_time or 0):
                continue
            call_id = next((i for i, n in calls if n == name and i not in claimed), None)
            if call_id is not None:
                claimed.add(call_id)
                found[run.context.span_id] = call_id
                break
    return found


def _reply_calls(attributes: Attributes) -> list[tuple[str, str]]:
    """(id, tool name) of each tool call in an LLM span's reply."""
    return [
        (str(call["tool_call.id"]), str(call.get("tool_call.function.name")))
        for message in indexed(attributes, sc.LLM_OUTPUT_MESSAGES_PREFIX)
        for call in indexed(message, "message.tool_calls.")
        if call.get("tool_call.id")
    ]
