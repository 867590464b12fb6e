"""A local Anthropic Messages API (``POST /v1/messages``), for recording fixtures and tests.

The official ``anthropic`` client runs against it for real::

    with FakeAnthropic() as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-fake", max_retries=0)
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])

What it answers, chosen by the request (shapes as in docs.anthropic.com "Messages" and
"Streaming Messages"):

* ``model == "fail-500"`` → HTTP 500, ``{"type": "error", "error": {"type": "api_error", ...}}``;
* ``tools`` given and the last message is not a ``tool_result`` → one ``tool_use`` block
  ``get_weather({"city": "Paris"})`` after a short text, ``stop_reason="tool_use"``;
* ``thinking`` enabled → a ``thinking`` block (with signature) before the text;
* otherwise → ``"Echo: <last user text>"`` (after a ``tool_result``: ``"It is sunny in Paris."``);
* ``stream: true`` → the same content as server-sent events (``message_start`` …
  ``message_stop``), one ``text_delta`` per word.

Usage: ``input_tokens`` = words of the messages and system; a request holding any
``cache_control`` block also reads ``CACHE_READ`` and writes ``CACHE_CREATION`` tokens (which,
as in the real API, ``input_tokens`` does NOT include). The response model is the request model
with ``MODEL_SNAPSHOT`` appended, as the API resolves an alias to a dated snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fake_provider_server import FakeProviderServer, Reply, Request

FAIL_MODEL = "fail-500"
MODEL_SNAPSHOT = "-20250929"
MESSAGE_ID = "msg_fake_0001"
REQUEST_ID = "req_fake_0001"
TOOL_USE_ID = "toolu_fake_0001"
TOOL_INPUT = {"city": "Paris"}
TOOL_PREAMBLE = "Let me check."
TOOL_ANSWER = "It is sunny in Paris."
THINKING = "The user wants a greeting."
SIGNATURE = "sig_fake_0001"
CACHE_READ, CACHE_CREATION = 1200, 300
ERROR_MESSAGE = "Internal server error"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        str(block.get("text") or block.get("content") or "")
        for block in content or []
        if isinstance(block, dict)
    )


def _words(value: Any) -> int:
    return len(_text_of(value).split())


def _has_cache_control(body: Any) -> bool:
    return '"cache_control"' in json.dumps(body)


def reply_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason the API would return for ``body``."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    last_content = last.get("content")
    after_tool = isinstance(last_content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last_content
    )
    if body.get("tools") and not after_tool:
        tool_use = {
            "type": "tool_use",
            "id": TOOL_USE_ID,
            "name": "get_weather",
            "input": TOOL_INPUT,
        }
        return [{"type": "text", "text": TOOL_PREAMBLE}, tool_use], "tool_use"
    text = TOOL_ANSWER if after_tool else f"Echo: {_text_of(last_content)}"
    blocks: list[dict[str, Any]] = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    blocks.append({"type": "text", "text": text})
    return blocks, "end_turn"


def usage(body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    cached = _has_cache_control(body)
    output = sum(
        _words(b.get("text") or b.get("thinking") or json.dumps(b.get("input"))) for b in blocks
    )
    return {
        "input_tokens": _words(body.get("system"))
        + sum(_words(m.get("content")) for m in body.get("messages") or []),
        "cache_creation_input_tokens": CACHE_CREATION if cached else 0,
        "cache_read_input_tokens": CACHE_READ if cached else 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": CACHE_CREATION if cached else 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output,
        "service_tier": "standard",
    }


class FakeAnthropic(FakeProviderServer):
    def answer(self, request: Request) -> Reply:
        headers = {"request-id": REQUEST_ID}
        if request.path.split("?")[0].rstrip("/") != "/v1/messages":
            error = {"type": "not_found_error", "message": "Not found"}
            return Reply.json(404, {"type": "error", "error": error}, **headers)
        body = request.body
        model = str(body.get("model", ""))
        if model == FAIL_MODEL:
            error = {"type": "api_error", "message": ERROR_MESSAGE}
            return Reply.json(
                500, {"type": "error", "error": error, "request_id": REQUEST_ID}, **headers
            )
        blocks, stop_reason = reply_blocks(body)
        message = {
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": model + MODEL_SNAPSHOT,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage(body, blocks),
        }
        if body.get("stream"):
            return Reply.stream("text/event-stream", _events(message), **headers)
        return Reply.json(200, message, **headers)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


def _events(message: dict[str, Any]) -> Iterator[bytes]:
    """The stream of ``message``: input usage first, output usage in ``message_delta``."""
    final_usage = message["usage"]
    start_usage = {**final_usage, "output_tokens": 1}
    yield _sse(
        "message_start",
        {"message": {**message, "content": [], "stop_reason": None, "usage": start_usage}},
    )
    yield _sse("ping", {})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {"index": index, "content_block": {"type": "text", "text": ""}},
            )
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
                yield _sse("content_block_delta", {"index": index, "delta": delta})
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            yield _sse("content_block_start", {"index": index, "content_block": start})
            delta = {"type": "thinking_delta", "thinking": block["thinking"]}
            yield _sse("content_block_delta", {"index": index, "delta": delta})
            delta = {"type": "signature_delta", "signature": block["signature"]}
            yield _sse("content_block_delta", {"index": index, "delta": delta})
        else:  # tool_use: the input arrives as partial JSON
            yield _sse(
                "content_block_start", {"index": index, "content_block": {**block, "input": {}}}
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield _sse("content_block_delta", {"index": index, "delta": delta})
        yield _sse("content_block_stop", {"index": index})
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield _sse(
        "message_delta", {"delta": delta, "usage": {"output_tokens": final_usage["output_tokens"]}}
    )
    yield _sse("message_stop", {})
