"""A local Amazon Bedrock Runtime API, for recording fixtures with the real ``boto3`` client::

    with FakeBedrock() as server:
        client = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="AKIDFAKE", aws_secret_access_key="fake",
                              config=Config(retries={"total_max_attempts": 1}))
        client.converse(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", messages=[...])

Routes (shapes from the Bedrock Runtime API reference):

* ``POST /model/{id}/converse`` → ``{"output": {"message": ...}, "stopReason", "usage", "metrics"}``;
* ``POST /model/{id}/converse-stream`` → ``application/vnd.amazon.eventstream`` frames
  ``messageStart``, ``contentBlockStart`` (tool use), ``contentBlockDelta``, ``contentBlockStop``,
  ``messageStop``, ``metadata`` (usage);
* ``POST /model/{id}/invoke`` with an Anthropic Messages body → the Anthropic response body
  (from :mod:`fake_anthropic`), token counts also in ``X-Amzn-Bedrock-*-Token-Count`` headers.

A model id containing ``fail-500`` → HTTP 500 ``InternalServerException``. ``toolConfig`` given
and the last message holds no ``toolResult`` → one ``get_weather`` ``toolUse``. A ``cachePoint``
block in the request → ``cacheReadInputTokens`` / ``cacheWriteInputTokens`` (which Bedrock's
``inputTokens`` does not include).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import fake_anthropic
from fake_provider_server import FakeProviderServer, Reply, Request

TOOL_USE_ID = "tooluse_fake_0001"
TOOL_INPUT = {"city": "Paris"}
TOOL_ANSWER = "It is sunny in Paris."
CACHE_READ, CACHE_WRITE = 1200, 300
LATENCY_MS = 321
REQUEST_ID = "11111111-2222-3333-4444-555555555555"
ERROR_MESSAGE = "The server encountered an internal error."


def _text(content: list[dict[str, Any]]) -> str:
    return " ".join(str(block.get("text", "")) for block in content if "text" in block)


def _words(text: str) -> int:
    return len(text.split())


def converse_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The Converse response for ``body``."""
    messages = body.get("messages") or []
    last = messages[-1]["content"] if messages else []
    after_tool = any("toolResult" in block for block in last)
    if body.get("toolConfig") and not after_tool:
        content: list[dict[str, Any]] = [
            {"toolUse": {"toolUseId": TOOL_USE_ID, "name": "get_weather", "input": TOOL_INPUT}}
        ]
        stop, output_tokens = "tool_use", 2
    else:
        text = TOOL_ANSWER if after_tool else f"Echo: {_text(last)}"
        content, stop, output_tokens = [{"text": text}], "end_turn", _words(text)
    cached = '"cachePoint"' in json.dumps(body)
    input_tokens = _words(_text(body.get("system") or [])) + sum(
        _words(_text(m["content"])) for m in messages
    )
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens,
    }
    if cached:
        usage.update(cacheReadInputTokens=CACHE_READ, cacheWriteInputTokens=CACHE_WRITE)
        usage["totalTokens"] += CACHE_READ + CACHE_WRITE
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage,
        "metrics": {"latencyMs": LATENCY_MS},
    }


class FakeBedrock(FakeProviderServer):
    def answer(self, request: Request) -> Reply:
        headers = {"x-amzn-RequestId": REQUEST_ID}
        parts = request.path.split("?")[0].split("/")  # ["", "model", id, action]
        if len(parts) != 4 or parts[1] != "model":
            return Reply.json(
                404,
                {"message": "Not found"},
                **headers,
                **{"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        model_id, action = unquote(parts[2]), parts[3]
        if "fail-500" in model_id:
            return Reply.json(
                500,
                {"message": ERROR_MESSAGE},
                **headers,
                **{"x-amzn-ErrorType": "InternalServerException"},
            )
        if action == "converse":
            return Reply.json(200, converse_reply(request.body), **headers)
        if action == "converse-stream":
            return Reply.stream(
                "application/vnd.amazon.eventstream",
                _converse_events(converse_reply(request.body)),
                **headers,
            )
        if action == "invoke":
            blocks, stop = fake_anthropic.reply_blocks(request.body)
            usage = fake_anthropic.usage(request.body, blocks)
            message = {
                "id": fake_anthropic.MESSAGE_ID,
                "type": "message",
                "role": "assistant",
                "model": "claude-3-5-sonnet-20240620",
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            counts = {
                "X-Amzn-Bedrock-Input-Token-Count": str(usage["input_tokens"]),
                "X-Amzn-Bedrock-Output-Token-Count": str(usage["output_tokens"]),
                "X-Amzn-Bedrock-Invocation-Latency": str(LATENCY_MS),
            }
            return Reply.json(200, message, **headers, **counts)
        return Reply.json(
            400,
            {"message": f"unsupported action {action}"},
            **headers,
            **{"x-amzn-ErrorType": "ValidationException"},
        )


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude, CRCs, string headers, JSON payload."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        raw_name, raw_value = name.encode(), value.encode()
        headers += (
            struct.pack("!B", len(raw_name))
            + raw_name
            + b"\x07"
            + struct.pack("!H", len(raw_value))
            + raw_value
        )
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack("!I", zlib.crc32(message))


def _converse_events(reply: dict[str, Any]) -> Iterator[bytes]:
    yield event_frame("messageStart", {"role": "assistant"})
    for index, block in enumerate(reply["output"]["message"]["content"]):
        if "toolUse" in block:
            tool = block["toolUse"]
            start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
            yield event_frame("contentBlockStart", {"start": start, "contentBlockIndex": index})
            delta = {"toolUse": {"input": json.dumps(tool["input"])}}
            yield event_frame("contentBlockDelta", {"delta": delta, "contentBlockIndex": index})
        else:
            for i, word in enumerate(block["text"].split(" ")):
                delta = {"text": word if i == 0 else " " + word}
                yield event_frame("contentBlockDelta", {"delta": delta, "contentBlockIndex": index})
        yield event_frame("contentBlockStop", {"contentBlockIndex": index})
    yield event_frame("messageStop", {"stopReason": reply["stopReason"]})
    yield event_frame("metadata", {"usage": reply["usage"], "metrics": reply["metrics"]})
