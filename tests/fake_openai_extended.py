"""``FakeOpenAI`` plus what an agent loop and structured output need, and detailed usage.

The plain fake (``tests/fake_openai.py``) answers every request carrying ``tools`` with a tool
call and every other one with ``"Echo: ..."``. That is enough for one model call, but an agent
loop (Vercel AI SDK ``stopWhen``, a framework running the tool) sends the tool result back *with*
the tools still offered, and would be told to call the tool forever; and structured output
(``response_format``) needs JSON content. This server answers, on top of the plain one::

    with ExtendedFakeOpenAI() as server:
        ...  # same ``server.url`` and ``server.requests`` as FakeOpenAI

* the last message is a ``tool`` result → the text ``TOOL_ANSWER``, ``finish_reason="stop"``;
* ``response_format`` is ``json_schema`` / ``json_object`` → the JSON text of ``JSON_OBJECT``;
* every ``usage`` (non-streamed, or the final chunk of a stream with ``include_usage``) also
  carries ``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.
  reasoning_tokens``, as OpenAI documents them: cached tokens are a subset of
  ``prompt_tokens`` (``min(CACHED_TOKENS, prompt_tokens)``), and ``REASONING_TOKENS`` are
  added to ``completion_tokens``, which includes them.

Everything else (ids, response model, ``fail-500``, the SSE framing) is the plain fake's.
"""

from __future__ import annotations

import io
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_openai import FakeOpenAI, _handler_for, usage

TOOL_ANSWER = "It is sunny in Paris, 21 degrees."
JSON_OBJECT = {"city": "Paris", "forecast": "sunny"}
CACHED_TOKENS = 2
REASONING_TOKENS = 1


def planned_reply(body: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The ``(message, finish_reason)`` this server answers instead of the plain fake, if any."""
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return {"role": "assistant", "content": TOOL_ANSWER}, "stop"
    if (body.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
        return {"role": "assistant", "content": json.dumps(JSON_OBJECT)}, "stop"
    return None


def detailed_usage(messages: list[dict[str, Any]], reply: str) -> dict[str, Any]:
    """The plain fake's word-count usage, with cached and reasoning details added."""
    counts: dict[str, Any] = usage(messages, reply)
    cached = min(CACHED_TOKENS, counts["prompt_tokens"])
    counts["completion_tokens"] += REASONING_TOKENS
    counts["total_tokens"] += REASONING_TOKENS
    counts["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    counts["completion_tokens_details"] = {
        "reasoning_tokens": REASONING_TOKENS,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    return counts


class ExtendedFakeOpenAI(FakeOpenAI):
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _extended_handler_for(self)


def _extended_handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    base = _handler_for(fake)

    class Handler(base):  # type: ignore[valid-type, misc]
        """Decides the reply up front, then lets the plain handler frame it."""

        def do_POST(self) -> None:
            raw = self.read_body()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            self._messages: list[dict[str, Any]] = body.get("messages") or []
            self._reply = planned_reply(body) if isinstance(body, dict) else None
            self.rfile = io.BytesIO(raw)  # the plain handler reads the body again
            super().do_POST()

        def _json(self, status: int, payload: Any) -> None:
            if status == 200 and isinstance(payload, dict) and "choices" in payload:
                choice = payload["choices"][0]
                if self._reply is not None:
                    choice["message"], choice["finish_reason"] = self._reply
                text = choice["message"].get("content") or ""
                payload["usage"] = detailed_usage(self._messages, text)
            super()._json(status, payload)

        def _stream(
            self, model: str, message: dict[str, Any], finish: str, counts: dict[str, int] | None
        ) -> None:
            if self._reply is not None:
                message, finish = self._reply
            if counts is not None:
                counts = detailed_usage(self._messages, message.get("content") or "")
            super()._stream(model, message, finish, counts)

    return Handler
