"""The fake Anthropic, Gemini and Bedrock servers answer in their APIs' wire formats.

The provider-SDK fixtures were recorded against them (``tests/recorders/``), so a fake that
drifts from the documented shapes would make a re-recording lie. Plain HTTP over 127.0.0.1::

    python -m pytest tests/test_fake_providers.py -q
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import fake_anthropic
import fake_bedrock
import fake_gemini
import httpx


def _sse_data(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]


def test_anthropic_cache_tokens_are_outside_input_tokens() -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    with fake_anthropic.FakeAnthropic() as server:
        reply = httpx.post(server.url + "/v1/messages", json=body).json()
    assert reply["model"] == "claude-x" + fake_anthropic.MODEL_SNAPSHOT
    assert reply["content"] == [{"type": "text", "text": "Echo: Say hello"}]
    assert reply["usage"]["input_tokens"] == 4
    assert reply["usage"]["cache_read_input_tokens"] == fake_anthropic.CACHE_READ
    assert reply["usage"]["cache_creation_input_tokens"] == fake_anthropic.CACHE_CREATION


def test_anthropic_stream_tool_use_and_error() -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    body = {
        "model": "m",
        "max_tokens": 10,
        "stream": True,
        "tools": tools,
        "messages": [{"role": "user", "content": "Weather?"}],
    }
    with fake_anthropic.FakeAnthropic() as server:
        events = _sse_data(httpx.post(server.url + "/v1/messages", json=body).text)
        failed = httpx.post(
            server.url + "/v1/messages", json={**body, "model": fake_anthropic.FAIL_MODEL}
        )
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    json_delta = next(
        e["delta"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(json_delta["partial_json"]) == fake_anthropic.TOOL_INPUT
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "api_error"


def test_gemini_counts_cached_inside_prompt_and_thoughts_outside_candidates() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Count to three"}]}]}
    with fake_gemini.FakeGemini() as server:
        url = server.url + "/v1beta/models/gemini-x"
        whole = httpx.post(url + ":generateContent", json=body).json()
        chunks = _sse_data(httpx.post(url + ":streamGenerateContent?alt=sse", json=body).text)
        failed = httpx.post(server.url + "/v1beta/models/fail-500:generateContent", json=body)
    usage = whole["usageMetadata"]
    assert usage["promptTokenCount"] == fake_gemini.PROMPT_OVERHEAD + 3
    assert (
        usage["totalTokenCount"]
        == usage["promptTokenCount"] + usage["candidatesTokenCount"] + fake_gemini.THOUGHTS
    )
    assert (
        "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        == "Echo: Count to three"
    )
    assert [("usageMetadata" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert failed.json()["error"]["status"] == "INTERNAL"


def _decode_frames(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """AWS event-stream messages, with both CRCs checked."""
    frames = []
    while data:
        total, headers_length = struct.unpack("!II", data[:8])
        assert struct.unpack("!I", data[8:12])[0] == zlib.crc32(data[:8])
        message, data = data[:total], data[total:]
        assert struct.unpack("!I", message[-4:])[0] == zlib.crc32(message[:-4])
        headers, offset, raw = {}, 0, message[12 : 12 + headers_length]
        while offset < len(raw):
            name_length = raw[offset]
            name = raw[offset + 1 : offset + 1 + name_length].decode()
            value_length = struct.unpack(
                "!H", raw[offset + 2 + name_length : offset + 4 + name_length]
            )[0]
            start = offset + 4 + name_length
            headers[name] = raw[start : start + value_length].decode()
            offset = start + value_length
        frames.append((headers[":event-type"], json.loads(message[12 + headers_length : -4])))
    return frames


def test_bedrock_converse_stream_frames_and_error() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "Be terse."}, {"cachePoint": {"type": "default"}}],
    }
    with fake_bedrock.FakeBedrock() as server:
        model = server.url + "/model/anthropic.claude-x-v1%3A0"
        whole = httpx.post(model + "/converse", json=body).json()
        frames = _decode_frames(httpx.post(model + "/converse-stream", json=body).content)
        failed = httpx.post(server.url + "/model/fail-500/converse", json=body)
    assert whole["output"]["message"]["content"] == [{"text": "Echo: Say hello"}]
    assert whole["usage"]["inputTokens"] == 4
    assert whole["usage"]["cacheReadInputTokens"] == fake_bedrock.CACHE_READ
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert frames[-1][1]["usage"] == whole["usage"]
    assert failed.status_code == 500
    assert failed.headers["x-amzn-ErrorType"] == "InternalServerException"
