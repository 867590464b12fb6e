"""Content log records joined onto the right span, when a library emits one on another span.

OpenLLMetry's events mode emits a stream's ``gen_ai.choice`` while the app's span is current
(the recorded ``openllmetry-events/stream`` case checks the whole path); these check the rule's
edges with records made here.
"""

from __future__ import annotations

from span_fixtures import to_log_record, to_span

from trubrics_otel.translate.genai_logs import GenAIContentJoiner

TRACE = "0000000000000000000000000000abcd"


def span(span_id: str, parent: str | None = None) -> dict[str, object]:
    return {"name": "openai.chat" if parent else "handle request", "trace_id": TRACE,
            "span_id": span_id, "parent_span_id": parent, "attributes": {}, "events": [],
            "kind": "CLIENT" if parent else "SERVER", "status": {"code": "UNSET"},
            "start_time": 1, "end_time": 2}


def record(name: str, span_id: str, body: dict[str, object]) -> object:
    return to_log_record({"event_name": name, "trace_id": TRACE, "span_id": span_id,
                          "attributes": {"gen_ai.provider.name": "openai"}, "body": body})


def replies(joiner: GenAIContentJoiner, *span_ids: str) -> list[object]:
    return [joiner.join(to_span(span(i, "00000000000000a1"))).attributes.get("gen_ai.output.messages")
            for i in span_ids]


def test_a_reply_on_the_app_span_goes_to_the_one_call_waiting_for_it() -> None:
    joiner = GenAIContentJoiner()
    joiner.on_emit(record("gen_ai.user.message", "00000000000000b1", {"content": "Hi"}))
    joiner.on_emit(record("gen_ai.choice", "00000000000000a1",
                          {"index": 0, "message": {"content": "Echo: Hi"}, "finish_reason": "stop"}))
    (reply,) = replies(joiner, "00000000000000b1")
    assert "Echo: Hi" in str(reply)


def test_with_two_calls_waiting_it_goes_to_neither() -> None:
    joiner = GenAIContentJoiner()
    for call in ("00000000000000b1", "00000000000000b2"):
        joiner.on_emit(record("gen_ai.user.message", call, {"content": "Hi"}))
    joiner.on_emit(record("gen_ai.choice", "00000000000000a1",
                          {"index": 0, "message": {"content": "Echo: Hi"}, "finish_reason": "stop"}))
    assert replies(joiner, "00000000000000b1", "00000000000000b2") == [None, None]


def test_a_reply_with_its_own_span_stays_there() -> None:
    joiner = GenAIContentJoiner()
    joiner.on_emit(record("gen_ai.user.message", "00000000000000b1", {"content": "Hi"}))
    joiner.on_emit(record("gen_ai.user.message", "00000000000000b2", {"content": "Yo"}))
    joiner.on_emit(record("gen_ai.choice", "00000000000000b2",
                          {"index": 0, "message": {"content": "Echo: Yo"}, "finish_reason": "stop"}))
    assert replies(joiner, "00000000000000b1")[0] is None
    assert "Echo: Yo" in str(replies(joiner, "00000000000000b2")[0])
