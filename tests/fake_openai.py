"""A local OpenAI-compatible chat completions server, for tests and examples.

It answers ``POST /v1/chat/completions`` on 127.0.0.1 with deterministic content, so the
official ``openai`` client (and every instrumentation library wrapping it) can run for real::

    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-fake", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

What it answers, chosen by the request:

* ``model == "fail-500"``, or the next ``fail_next`` requests whatever their model (for
  clients that refuse unknown model names) → HTTP 500 with an OpenAI-style error body;
* a request with ``tools`` → one ``get_weather`` tool call, ``finish_reason="tool_calls"``,
  unless the last message is already a tool result: then ``"Tool said: <result>"``;
* ``stream: true`` → server-sent events, one chunk per word, then ``[DONE]``; a final chunk
  carrying ``usage`` when ``stream_options.include_usage`` is set;
* otherwise → ``"Echo: <last user message>"``.

The response model is the request model with ``RESPONSE_MODEL_SUFFIX`` appended, as real
providers return a dated snapshot name. Token counts are word counts;
``FakeOpenAI(cached_tokens=N)`` also reports up to N of the prompt tokens as cached
(``usage.prompt_tokens_details.cached_tokens``), as OpenAI does on a prompt-cache hit.

``POST /v1/responses`` (the Responses API) is answered by :mod:`fake_openai_responses`.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback_server import LoopbackServer, QuietHandler

FAIL_MODEL = "fail-500"
RESPONSE_MODEL_SUFFIX = "-2024-07-18"
RESPONSE_ID = "chatcmpl-fake-0001"
CREATED = 1_700_000_000
ERROR_MESSAGE = "The server had an error while processing your request."
TOOL_CALL_ID = "call_fake_0001"
TOOL_ARGUMENTS = '{"city": "Paris"}'


def reply_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return f"Echo: {content}"
    return "Echo:"


def _words(text: str) -> int:
    return len(text.split())


def usage(messages: list[dict[str, Any]], reply: str, cached_tokens: int = 0) -> dict[str, Any]:
    prompt = sum(_words(str(m.get("content") or "")) for m in messages)
    completion = _words(reply)
    counts: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached_tokens:
        counts["prompt_tokens_details"] = {"cached_tokens": min(cached_tokens, prompt)}
        counts["completion_tokens_details"] = {"reasoning_tokens": 0}
    return counts


def tool_result(messages: list[dict[str, Any]]) -> str | None:
    """The content of a trailing tool message: the model is being asked to answer from it."""
    if messages and messages[-1].get("role") == "tool":
        return str(messages[-1].get("content") or "")
    return None


class FakeOpenAI(LoopbackServer):
    def __init__(self, cached_tokens: int = 0) -> None:
        self.cached_tokens = cached_tokens
        self.fail_next = 0  # this many coming requests answer HTTP 500
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        """Base URL for ``openai.OpenAI(base_url=...)``."""
        return f"{self.base_url}/v1"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            try:
                body = json.loads(self.read_body() or b"{}")
            except ValueError:
                body = {}
            fake.requests.append(body)
            if str(body.get("model", "")) == FAIL_MODEL or fake.fail_next > 0:
                fake.fail_next = max(0, fake.fail_next - 1)
                return self._json(
                    500, {"error": {"message": ERROR_MESSAGE, "type": "server_error", "code": None}}
                )
            if self.path.rstrip("/") == "/v1/responses":
                from fake_openai_responses import answer

                return answer(self, body, cached_tokens=fake.cached_tokens, number=len(fake.requests))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(
                    404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                )
            model = str(body.get("model", ""))
            messages = body.get("messages") or []
            answered = tool_result(messages)
            if body.get("tools") and answered is None:
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": TOOL_CALL_ID,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS},
                        }
                    ],
                }
                finish, text = "tool_calls", ""
            else:
                text = reply_text(messages) if answered is None else f"Tool said: {answered}"
                message, finish = {"role": "assistant", "content": text}, "stop"
            response_model = model + RESPONSE_MODEL_SUFFIX
            counts = usage(messages, text, fake.cached_tokens)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self._stream(
                    response_model, message, finish, counts if include_usage else None
                )
            self._json(
                200,
                {
                    "id": RESPONSE_ID,
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": response_model,
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": counts,
                    "system_fingerprint": "fp_fake",
                },
            )

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(
            self, model: str, message: dict[str, Any], finish: str, counts: dict[str, int] | None
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def chunk(
                delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
            ) -> None:
                payload = {
                    "id": RESPONSE_ID,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                    **extra,
                }
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

            chunk({"role": "assistant", "content": ""})
            if message.get("tool_calls"):
                call = message["tool_calls"][0]
                chunk({"tool_calls": [{"index": 0, **call}]})
            else:
                words = message["content"].split(" ")
                for i, word in enumerate(words):
                    chunk({"content": word if i == 0 else " " + word})
            chunk({}, finish)
            if counts is not None:
                payload = {
                    "id": RESPONSE_ID,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "choices": [],
                    "usage": counts,
                }
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler
