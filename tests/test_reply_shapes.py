"""Replies whose text parts hold something else than text are read back as text or tool calls.

OTel contrib's OpenAI Agents instrumentation (``opentelemetry-instrumentation-openai-agents-v2``)
writes SDK objects' Python reprs into ``gen_ai.output.messages`` text parts, and OpenLLMetry's
LangChain instrumentation a Responses API content block as JSON; the recorded fixtures
``openai-agents-v2-*`` and ``langchain-responses-openllmetry`` check the whole path, these the
reader's edges.
"""

from __future__ import annotations

import json

import pytest

from trubrics_otel.translate.messages import assistant_text
from trubrics_otel.translate.reprs import python_literal


def reply(text: str, *more: dict[str, object]) -> str:
    """The generation of a GenAI output message holding ``text`` in a text part (then ``more``)."""
    parts = [{"type": "text", "content": text}, *more]
    return assistant_text(json.loads(json.dumps([{"role": "assistant", "parts": parts}])))


def test_a_chat_message_repr_is_its_tool_calls() -> None:
    text = ("{'content': None, 'role': 'assistant', 'tool_calls': [{'id': 'call_1', 'function': "
            "{'arguments': '{\"city\": \"Paris\"}', 'name': 'get_weather'}, 'type': 'function'}]}")
    assert reply(text) == 'tool_call: get_weather({"city": "Paris"})'


def test_a_responses_function_call_repr_is_the_tool_call() -> None:
    text = ("ResponseFunctionToolCall(arguments='{\"city\": \"Paris\"}', call_id='call_1', "
            "name='get_weather', type='function_call', id='fc_1', status='completed')")
    assert reply(text) == 'tool_call: get_weather({"city": "Paris"})'


def test_a_whole_response_repr_is_its_text() -> None:
    text = ("{'id': 'r1', 'object': 'response', 'output': [{'type': 'message', 'role': 'assistant', "
            "'content': [{'type': 'output_text', 'text': 'Echo: hi', 'annotations': []}]}], "
            "'usage': {'input_tokens': 8, 'output_tokens': -0}}")
    assert reply(text) == "Echo: hi"


@pytest.mark.parametrize("text", [
    "{'answer': 42}",                      # a model's own dict-like reply: no message in it
    "Use print(x=1)",                      # not a repr: prose ending in ")"
    "Point(x=os.system('id'))",            # a call inside: never evaluated, left as text
    "{'a': 1",                             # not closed
    "Echo: What is OpenTelemetry?",
])
def test_anything_else_stays_the_text_it_is(text: str) -> None:
    assert reply(text) == text


def test_python_literal_reads_only_literals() -> None:
    assert python_literal("Call(a=[1, (2, -3)], b={'k': None})") == {"a": [1, [2, -3]], "b": {"k": None}}
    assert python_literal("Call(1, a=2)") is None  # positional arguments: not a repr we know
    assert python_literal("__import__('os')") is None
    assert python_literal("x" * 10) is None


CALL_BLOCK = json.dumps({"arguments": '{"city": "Paris"}', "call_id": "call_1", "name": "get_weather",
                         "type": "function_call", "id": "fc_1", "status": "completed"})


def test_a_call_block_as_text_beside_its_tool_call_part_is_the_tool_call() -> None:
    part = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    assert reply(CALL_BLOCK, part) == 'tool_call: get_weather({"city": "Paris"})'
    assert reply(CALL_BLOCK) == 'tool_call: get_weather({"city": "Paris"})'  # the block alone


def test_blocks_that_are_not_text_leave_the_text() -> None:
    reasoning = json.dumps({"type": "reasoning", "summary": []})
    parts = [{"type": "text", "content": reasoning}, {"type": "text", "content": "It is sunny."}]
    assert assistant_text([{"role": "assistant", "parts": parts}]) == "It is sunny."


@pytest.mark.parametrize("text", ['{"answer": 42}', '{"type": "object", "properties": {}}'])
def test_a_json_reply_is_a_reply(text: str) -> None:
    assert reply(text) == text
