"""A local Gemini API (``generateContent`` / ``streamGenerateContent``), for ``google-genai`` and ADK::

    with FakeGemini() as server:
        client = genai.Client(api_key="fake", http_options=types.HttpOptions(base_url=server.url))
        client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")

Routes (shapes from ai.google.dev/api/generate-content):

* ``POST /v1beta/models/{model}:generateContent`` → a ``GenerateContentResponse``;
* ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` → the same as server-sent
  events, one chunk per word, the last one carrying ``finishReason`` and ``usageMetadata``.

``model == "fail-500"`` → HTTP 500 ``{"error": {"code": 500, "status": "INTERNAL", ...}}``.
``tools`` with ``functionDeclarations`` and no ``functionResponse`` in the last turn → one
``functionCall`` ``get_weather({"city": "Paris"})`` (no id, as generateContent returns it).
After a ``functionResponse`` → ``"It is sunny in Paris."``; otherwise ``"Echo: <last user text>"``.

Usage, fixed so cache and thinking handling are tested: ``promptTokenCount`` = words of the
contents + ``PROMPT_OVERHEAD`` (system instruction and tool declarations), of which
``cachedContentTokenCount`` = ``CACHED`` (Gemini's prompt count INCLUDES cached tokens);
``candidatesTokenCount`` = words of the reply and ``thoughtsTokenCount`` = ``THOUGHTS``
(Gemini's candidates count EXCLUDES thoughts). ``modelVersion`` is ``<model>-001``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fake_provider_server import FakeProviderServer, Reply, Request

FAIL_MODEL = "fail-500"
RESPONSE_ID = "resp_fake_0001"
TOOL_ARGS = {"city": "Paris"}
TOOL_ANSWER = "It is sunny in Paris."
PROMPT_OVERHEAD, CACHED, THOUGHTS = 100, 64, 7


def _texts(content: dict[str, Any]) -> str:
    return " ".join(str(part["text"]) for part in content.get("parts") or [] if "text" in part)


def _words(text: str) -> int:
    return len(text.split())


def reply(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``GenerateContentResponse`` for ``body``."""
    contents = body.get("contents") or []
    last = contents[-1] if contents else {}
    after_tool = any("functionResponse" in part for part in last.get("parts") or [])
    declares_tools = any(tool.get("functionDeclarations") for tool in body.get("tools") or [])
    if declares_tools and not after_tool:
        parts: list[dict[str, Any]] = [{"functionCall": {"name": "get_weather", "args": TOOL_ARGS}}]
        output = 2
    else:
        text = TOOL_ANSWER if after_tool else f"Echo: {_texts(last)}"
        parts, output = [{"text": text}], _words(text)
    prompt = PROMPT_OVERHEAD + sum(_words(_texts(c)) for c in contents)
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "cachedContentTokenCount": CACHED,
            "candidatesTokenCount": output,
            "thoughtsTokenCount": THOUGHTS,
            "totalTokenCount": prompt + output + THOUGHTS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": CACHED}],
        },
        "modelVersion": f"{model}-001",
        "responseId": RESPONSE_ID,
    }


class FakeGemini(FakeProviderServer):
    def answer(self, request: Request) -> Reply:
        path = request.path.split("?")[0]
        prefix = "/v1beta/models/"
        if not path.startswith(prefix) or ":" not in path:
            return _error(404, "NOT_FOUND", "Not found")
        model, _, method = path[len(prefix) :].partition(":")
        if model == FAIL_MODEL:
            return _error(500, "INTERNAL", "Internal error encountered.")
        response = reply(model, request.body)
        if method == "generateContent":
            return Reply.json(200, response)
        if method == "streamGenerateContent":
            return Reply.stream("text/event-stream", _chunks(response))
        return _error(400, "INVALID_ARGUMENT", f"unknown method {method}")


def _error(code: int, status: str, message: str) -> Reply:
    return Reply.json(code, {"error": {"code": code, "message": message, "status": status}})


def _chunks(response: dict[str, Any]) -> Iterator[bytes]:
    """Text split per word; only the last chunk has the finish reason and the full usage."""
    candidate = response["candidates"][0]
    parts = candidate["content"]["parts"]
    pieces: list[dict[str, Any]] = []
    if "text" in parts[0]:
        words = parts[0]["text"].split(" ")
        pieces = [{"text": w if i == 0 else " " + w} for i, w in enumerate(words)]
    else:
        pieces = parts
    for i, piece in enumerate(pieces):
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"role": "model", "parts": [piece]}, "index": 0}],
            "modelVersion": response["modelVersion"],
            "responseId": response["responseId"],
        }
        if i == len(pieces) - 1:
            chunk["candidates"][0]["finishReason"] = candidate["finishReason"]
            chunk["usageMetadata"] = response["usageMetadata"]
        yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
