"""The fake provider's Responses API and cache reporting, driven by the official ``openai`` client.

The recorded agent-framework fixtures are only as faithful as these answers: the client must
parse them as the real API's, streams must arrive in the real event order, and the usage the
fixtures' expectations are computed from must be what the client reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fake_openai import ERROR_MESSAGE, TOOL_ARGUMENTS, TOOL_CALL_ID, FakeOpenAI

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(cached_tokens=4) as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)


def test_a_reply_with_usage_the_client_reads(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", instructions="Be very brief.", input="Say hello"
    )
    assert response.output_text == "Echo: Say hello"
    assert response.model == "gpt-4o-mini-2024-07-18"
    usage = response.usage
    assert usage is not None
    # "Be very brief." (3 words) + "Say hello" (2); the 4 cached are part of the 5.
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 3, 8)
    assert usage.input_tokens_details.cached_tokens == 4
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_tools_get_a_function_call_then_an_answer_from_its_output(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="Weather?", tools=[WEATHER_TOOL])
    (call,) = first.output
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        TOOL_CALL_ID,
        "get_weather",
        TOOL_ARGUMENTS,
    )
    follow_up = [
        {"role": "user", "content": "Weather?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": TOOL_CALL_ID, "output": "Sunny"},
    ]
    second = client.responses.create(model="gpt-4o-mini", input=follow_up, tools=[WEATHER_TOOL])
    assert second.output_text == "Tool said: Sunny"


def test_a_stream_arrives_in_the_real_event_order(client: openai.OpenAI) -> None:
    stream = client.responses.create(model="gpt-4o-mini", input="Count to three", stream=True)
    events = list(stream)
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: Count to three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.usage is not None and completed.usage.input_tokens_details.cached_tokens == 3


def test_a_streamed_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="gpt-4o-mini", input="Weather?", tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    assert final.output[0].arguments == TOOL_ARGUMENTS


def test_a_failing_model_is_a_500(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match=ERROR_MESSAGE):
        client.responses.create(model="fail-500", input="Break")


def test_fail_next_fails_a_valid_model_once(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next = 1
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert reply.choices[0].message.content == "Echo: Hi"


def test_chat_completions_report_cached_tokens_only_when_asked() -> None:
    messages: list[Any] = [{"role": "user", "content": "Say hello to everyone"}]
    with FakeOpenAI() as plain, FakeOpenAI(cached_tokens=2) as cached:
        usages = [
            openai.OpenAI(base_url=fake.url, api_key="sk-fake", max_retries=0)
            .chat.completions.create(model="gpt-4o-mini", messages=messages)
            .usage
            for fake in (plain, cached)
        ]
    assert usages[0] is not None and usages[0].prompt_tokens_details is None
    assert usages[1] is not None and usages[1].prompt_tokens_details is not None
    assert usages[1].prompt_tokens_details.cached_tokens == 2
    assert usages[1].prompt_tokens == 4  # cached tokens are part of the prompt's


def test_a_tool_result_is_answered_not_called_again(client: openai.OpenAI) -> None:
    tool: dict[str, Any] = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": WEATHER_TOOL["parameters"]},
    }
    messages: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS},
                }
            ],
        },
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "Sunny"},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[tool])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "Tool said: Sunny"


def test_every_response_has_its_own_id() -> None:
    """As OpenAI's do: OpenLLMetry follows a conversation by response id, and with one id for
    every response it recorded only the first call of a tool round."""
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="sk-fake", max_retries=0)
        ids = [client.responses.create(model="gpt-4o-mini", input="Hi").id for _ in range(3)]
        streamed = list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    assert ids == ["resp_fake_0001", "resp_fake_0002", "resp_fake_0003"]
    assert streamed[-1].response.id == "resp_fake_0004"
