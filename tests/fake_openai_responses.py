"""The Responses API (``POST /v1/responses``) for :class:`fake_openai.FakeOpenAI`.

The fake server hands every ``/v1/responses`` request to :func:`answer`; nothing here is
used directly. With the official client::

    with FakeOpenAI(cached_tokens=4) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Hi")

What it answers, chosen by the request (the same rules as chat completions):

* failures (HTTP 500) are answered by the fake server before it gets here;
* ``tools`` and no ``function_call_output`` item in ``input`` yet → one ``function_call``
  output item ``get_weather({"city": "Paris"})``;
* a ``function_call_output`` item last in ``input`` → ``"Tool said: <output>"``;
* otherwise → ``"Echo: <last user text>"``;
* ``stream: true`` → server-sent events in the real order: ``response.created``,
  ``response.in_progress``, ``response.output_item.added``, (``response.content_part.added``,
  one ``response.output_text.delta`` per word, ``response.output_text.done``,
  ``response.content_part.done``) or (``response.function_call_arguments.delta`` / ``.done``),
  ``response.output_item.done``, ``response.completed`` carrying the whole response.

Each request's response has its own id (``resp_fake_0001`` for a server's first request,
``resp_fake_0002`` for its second, ...), as OpenAI's do: instrumentations that follow a
conversation by response id (OpenLLMetry) would take repeated ids for one response.

Usage is always reported the way the Responses API does: ``input_tokens`` (all input, cached
included), ``input_tokens_details.cached_tokens`` (``min(cached_tokens, input_tokens)``),
``output_tokens`` and ``output_tokens_details.reasoning_tokens`` (0: these are not reasoning
models). Token counts are word counts, as in :mod:`fake_openai`.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_openai import CREATED, RESPONSE_MODEL_SUFFIX, TOOL_ARGUMENTS, TOOL_CALL_ID

RESPONSE_ID = "resp_fake_0001"
MESSAGE_ID = "msg_fake_0001"
FUNCTION_CALL_ITEM_ID = "fc_fake_0001"


def _text_of(content: Any) -> str:
    """Text of a message's ``content``: a string, or a list of ``input_text``-like parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [i for i in raw or [] if isinstance(i, dict)]


def _reply(items: list[dict[str, Any]]) -> str:
    if items and items[-1].get("type") == "function_call_output":
        return f"Tool said: {items[-1].get('output', '')}"
    for item in reversed(items):
        if item.get("role") == "user":
            return f"Echo: {_text_of(item.get('content'))}"
    return "Echo:"


def _input_words(body: dict[str, Any], items: list[dict[str, Any]]) -> int:
    texts = [str(body.get("instructions") or "")]
    for item in items:
        texts.append(_text_of(item.get("content")))
        texts.append(str(item.get("output") or item.get("arguments") or ""))
    return sum(len(t.split()) for t in texts)


def build_response(body: dict[str, Any], cached_tokens: int, number: int = 1) -> dict[str, Any]:
    """The complete ``response`` object, as the JSON reply and ``response.completed`` carry it."""
    items = _items(body)
    wants_tool = bool(body.get("tools")) and not any(
        i.get("type") == "function_call_output" for i in items
    )
    if wants_tool:
        output: dict[str, Any] = {
            "type": "function_call",
            "id": FUNCTION_CALL_ITEM_ID,
            "call_id": TOOL_CALL_ID,
            "name": "get_weather",
            "arguments": TOOL_ARGUMENTS,
            "status": "completed",
        }
        output_words = 0
    else:
        text = _reply(items)
        output = {
            "type": "message",
            "id": MESSAGE_ID,
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }
        output_words = len(text.split())
    input_words = _input_words(body, items)
    return {
        "id": RESPONSE_ID if number == 1 else f"resp_fake_{number:04d}",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": str(body.get("model", "")) + RESPONSE_MODEL_SUFFIX,
        "output": [output],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_words,
            "input_tokens_details": {"cached_tokens": min(cached_tokens, input_words)},
            "output_tokens": output_words,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_words + output_words,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def answer(
    handler: BaseHTTPRequestHandler, body: dict[str, Any], cached_tokens: int, number: int = 1
) -> None:
    """Write the reply to the server's ``number``-th request onto ``handler``."""
    response = build_response(body, cached_tokens, number)
    if body.get("stream"):
        return _stream(handler, response)
    handler._json(200, response)  # type: ignore[attr-defined]


def _stream(handler: BaseHTTPRequestHandler, response: dict[str, Any]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    sequence = iter(range(1_000_000))

    def send(kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": next(sequence), **fields}
        handler.wfile.write(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())
        handler.wfile.flush()

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    send("response.created", response=pending)
    send("response.in_progress", response=pending)
    item = response["output"][0]
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        send(
            "response.output_item.added",
            output_index=0,
            item={**item, "arguments": "", "status": "in_progress"},
        )
        send("response.function_call_arguments.delta", **where, delta=item["arguments"])
        send("response.function_call_arguments.done", **where, arguments=item["arguments"])
    else:
        part = item["content"][0]
        send(
            "response.output_item.added",
            output_index=0,
            item={**item, "content": [], "status": "in_progress"},
        )
        send("response.content_part.added", **where, content_index=0, part={**part, "text": ""})
        for i, word in enumerate(part["text"].split(" ")):
            delta = word if i == 0 else " " + word
            send("response.output_text.delta", **where, content_index=0, delta=delta, logprobs=[])
        send("response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[])
        send("response.content_part.done", **where, content_index=0, part=part)
    send("response.output_item.done", output_index=0, item=item)
    send("response.completed", response=response)
