"""The real Node apps under ``tests/node/``: what they send over OTLP, and that the fixtures hold.

* The Node OTLP/HTTP exporters (protobuf and JSON) frame every request with
  ``Transfer-Encoding: chunked`` and no ``Content-Length`` (gzip only when asked): a receiver
  that insists on a length loses every span from a Node app.
* The Vercel AI SDK app still emits what ``tests/fixtures/spans/vercel-ai`` recorded; when a
  lockfile bump changes that, re-record with ``tests/recorders/vercel_ai.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_openai_extended import ExtendedFakeOpenAI
from instrumented_app import span_json
from node_app import (
    OTLP_SENDER,
    VERCEL_AI_APP,
    ensure_npm_ci,
    run_otlp_sender,
    run_vercel_ai_app,
)
from otlp_receiver import OtlpReceiver
from span_fixtures import FIXTURES

# Measured per run (times, durations, a stack trace with local paths), so never compared.
_MEASURED_ATTRIBUTES = frozenset(
    {
        "ai.response.msToFirstChunk",
        "ai.response.msToFinish",
        "ai.response.avgOutputTokensPerSecond",
        "exception.stacktrace",
    }
)


@pytest.fixture(scope="module")
def receiver() -> Any:
    with OtlpReceiver() as running:
        yield running


@pytest.mark.parametrize(
    ("protocol", "content_type"),
    [("proto", "application/x-protobuf"), ("json", "application/json")],
)
@pytest.mark.parametrize("gzip", [False, True], ids=["identity", "gzip"])
def test_node_otlp_exporters_send_chunked_requests_without_a_length(
    receiver: OtlpReceiver, protocol: str, content_type: str, gzip: bool
) -> None:
    ensure_npm_ci(OTLP_SENDER)
    receiver.clear()
    env = {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip" if gzip else "none"}

    sent = run_otlp_sender(protocol, receiver.traces_url, 9, env=env)

    (request,) = receiver.requests
    assert request.error is None
    assert request.headers["content-type"] == content_type
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    assert request.headers.get("content-encoding") == ("gzip" if gzip else None)
    received = {f"{s.context.span_id:016x}": s for s in request.spans}
    assert set(received) == {s["span_id"] for s in sent["spans"]}
    chats = [s for s in sent["spans"] if s["genai"]]
    assert len(chats) == 3
    for chat in chats:
        attributes = received[chat["span_id"]].attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["user.id"] == "u1"
        assert json.loads(attributes["gen_ai.input.messages"])[0]["role"] == "user"


def _comparable(span: dict[str, Any]) -> dict[str, Any]:
    """A span as JSON without what differs between two honest runs."""

    def stable(attributes: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in attributes.items() if k not in _MEASURED_ATTRIBUTES}

    return {
        **{k: v for k, v in span.items() if k not in ("start_time", "end_time", "resource")},
        "attributes": stable(span["attributes"]),
        "events": [
            {"name": e["name"], "attributes": stable(e["attributes"])} for e in span["events"]
        ],
    }


@pytest.mark.parametrize(
    "case", ["chat", "stream", "error", "tool_call", "stream_tool_call", "object", "nested"]
)
def test_vercel_ai_app_still_emits_the_recorded_spans(receiver: OtlpReceiver, case: str) -> None:
    ensure_npm_ci(VERCEL_AI_APP)
    receiver.clear()
    recorded = json.loads((FIXTURES / "vercel-ai" / f"{case}.json").read_text())["spans"]

    with ExtendedFakeOpenAI() as openai_server:
        run_vercel_ai_app(
            case, otlp_url=receiver.traces_url, openai_url=openai_server.url, sequential_ids=True
        )

    emitted = sorted(receiver.spans, key=lambda s: (s.start_time, s.context.span_id))
    assert [_comparable(span_json(s)) for s in emitted] == [_comparable(s) for s in recorded]
