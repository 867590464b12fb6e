"""OTLP decoding: real SDK spans, serialised by the OTLP exporter's own encoder, come back
as spans the Trubrics encoder reads exactly as it reads the originals."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as to_otlp,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from trubrics_otel.receive import otlp
from trubrics_otel.translate.encoder import encode_spans

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
PARENT_HEX = "eee19b7ec3c1b173"


def _sdk_spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app", "deployment": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("my.llm.lib", "1.2.3")
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/chat")
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as llm:
            llm.set_attributes({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}]}]),
                "user.id": "u-7",
                "flag": True,
            })
            llm.add_event("first token", {"gen_ai.token.index": 0})
        with tracer.start_as_current_span("track", attributes={
            "trubrics.event": "Sign up", "trubrics.properties": json.dumps({"plan": "pro"}), "user.id": "u-7",
        }):
            pass
        with tracer.start_as_current_span("fails") as failing:
            failing.set_status(StatusCode.ERROR, "boom")
    provider.shutdown()
    return list(memory.get_finished_spans())


def _hexify(document: dict) -> dict:
    """protobuf's JSON mapping writes ids in base64; OTLP/JSON wants hex."""
    import base64

    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return document


def test_protobuf_round_trip_feeds_the_encoder_identically():
    spans = _sdk_spans()
    body = to_otlp(spans).SerializeToString()
    decoded = otlp.decode(body, "application/x-protobuf")
    assert decoded.rejected == []
    assert encode_spans(decoded.spans) == encode_spans(spans)
    assert len(encode_spans(spans).llm_events) == 1 and len(encode_spans(spans).events) == 1

    by_name = {s.name: s for s in decoded.spans}
    originals = {s.name: s for s in spans}
    for name, span in by_name.items():
        original = originals[name]
        assert span.context.trace_id == original.context.trace_id
        assert span.context.span_id == original.context.span_id
        assert (span.parent and span.parent.span_id) == (original.parent and original.parent.span_id)
        assert span.kind == original.kind
        assert (span.start_time, span.end_time) == (original.start_time, original.end_time)
        assert dict(span.attributes) == dict(original.attributes)
        assert span.status.status_code == original.status.status_code
        assert span.resource.attributes == original.resource.attributes
        assert span.instrumentation_scope.name == "my.llm.lib"
        assert span.instrumentation_scope.version == "1.2.3"
    assert by_name["fails"].status.description == "boom"
    [event] = by_name["chat gpt-4o"].events
    assert event.name == "first token" and dict(event.attributes) == {"gen_ai.token.index": 0}
    assert event.timestamp == originals["chat gpt-4o"].events[0].timestamp


def test_ids_are_written_from_their_wire_bytes_as_from_the_context():
    """A decoded span's event writes its ids from the bytes it came with: the same text as
    formatting its context's integers (leading zeros kept; a parent id of zeros is a parent)."""
    request = to_otlp(_sdk_spans())
    llm = next(span for span in request.resource_spans[0].scope_spans[0].spans if span.name == "chat gpt-4o")
    llm.trace_id, llm.span_id, llm.parent_span_id = bytes(15) + b"\x01", bytes(7) + b"\x05", bytes(8)
    decoded = otlp.decode(request.SerializeToString(), "application/x-protobuf").spans
    [event] = encode_spans(decoded).llm_events
    assert {key: event["properties"][key] for key in ("$trace_id", "$span_id", "$parent_span_id")} == {
        "$trace_id": "0" * 31 + "1", "$span_id": "0" * 15 + "5", "$parent_span_id": "0" * 16}
    for span in decoded:
        span.wire_ids = None  # the context's integers, as for any SDK span
    assert encode_spans(decoded).llm_events == [event]


def test_decoded_spans_read_back_through_the_sdks_own_accessors():
    """The decoded spans keep their fields as plain attributes for speed; the SDK's own
    code (its OTLP encoder, ``to_json``, ``get_span_context``) must still read them whole."""
    spans = _sdk_spans()
    request = to_otlp(spans)
    decoded = otlp.decode(request.SerializeToString(), "application/x-protobuf").spans
    assert to_otlp(decoded) == request
    for span, original in zip(decoded, spans):
        context, sent = span.get_span_context(), original.get_span_context()
        assert (context.trace_id, context.span_id) == (sent.trace_id, sent.span_id)
        # the context's fields as SpanContext() makes them (the SDK's encoder leaves the trace
        # flags out of OTLP's span flags, so those do not come back)
        for got, was in ((context, sent), (span.parent, original.parent)):
            assert (got is None) == (was is None)
            if got is not None:
                assert (got.span_id, got.is_remote, got.trace_state, got.is_valid) == \
                    (was.span_id, was.is_remote, was.trace_state, was.is_valid)
        assert json.loads(span.to_json()) == json.loads(original.to_json())


def test_decode_request_is_the_list_of_valid_spans():
    spans = _sdk_spans()
    request = to_otlp(spans)
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    decoded = otlp.decode_request(request.SerializeToString(), "application/x-protobuf")
    assert isinstance(decoded, list) and len(decoded) == len(spans) - 1
    assert encode_spans(decoded) == encode_spans(s for s in spans if s.name != spans[0].name)


def test_json_round_trip_with_hex_ids():
    spans = _sdk_spans()
    document = _hexify(json_format.MessageToDict(to_otlp(spans)))
    decoded = otlp.decode(json.dumps(document).encode(), "application/json; charset=utf-8")
    assert decoded.json
    assert encode_spans(decoded.spans) == encode_spans(spans)


def test_hand_written_otlp_json_per_spec():
    """Enum names and numbers, int64 as strings, unknown fields ignored, every AnyValue kind."""
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{
                "scope": {"name": "lib"},
                "spans": [{
                    "traceId": TRACE_HEX, "spanId": SPAN_HEX, "parentSpanId": PARENT_HEX,
                    "name": "chat", "kind": "SPAN_KIND_CLIENT",
                    "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000001500000000,
                    "attributes": [
                        {"key": "s", "value": {"stringValue": "x"}},
                        {"key": "b", "value": {"boolValue": True}},
                        {"key": "i", "value": {"intValue": "9007199254740993"}},
                        {"key": "d", "value": {"doubleValue": 0.5}},
                        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "p"}, {"stringValue": "q"}]}}},
                        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": 1}}]}}},
                        {"key": "raw", "value": {"bytesValue": "AAE="}},
                        {"key": "empty", "value": {}},
                    ],
                    "events": [{"timeUnixNano": "1700000000100000000", "name": "exception",
                                "attributes": [{"key": "exception.type", "value": {"stringValue": "E"}}]}],
                    "status": {"code": 2, "message": "bad"},
                    "someFutureField": {"x": 1},
                }, {
                    "traceId": TRACE_HEX, "spanId": PARENT_HEX, "name": "root", "kind": 2,
                    "startTimeUnixNano": "1", "endTimeUnixNano": "2",
                }],
            }],
        }]
    }
    decoded = otlp.decode(json.dumps(body).encode(), "application/json")
    chat, root = decoded.spans
    assert f"{chat.context.trace_id:032x}" == TRACE_HEX
    assert f"{chat.context.span_id:016x}" == SPAN_HEX
    assert f"{chat.parent.span_id:016x}" == PARENT_HEX
    assert chat.kind is SpanKind.CLIENT and root.kind is SpanKind.SERVER and root.parent is None
    assert chat.end_time - chat.start_time == 1_500_000_000
    assert dict(chat.attributes) == {
        "s": "x", "b": True, "i": 9007199254740993, "d": 0.5, "a": ("p", "q"),
        "kv": {"k": 1}, "raw": b"\x00\x01",
    }
    assert chat.status.status_code is StatusCode.ERROR and chat.status.description == "bad"
    assert chat.events[0].attributes["exception.type"] == "E"
    assert chat.resource.attributes["service.name"] == "svc"


def test_invalid_spans_are_rejected_one_by_one():
    spans = _sdk_spans()
    request = to_otlp(spans)
    bad = request.resource_spans[0].scope_spans[0].spans
    bad[0].trace_id = b"\x00" * 16
    bad[1].span_id = b"\x01\x02"
    bad[2].end_time_unix_nano = 0
    decoded = otlp.decode(request.SerializeToString(), "application/x-protobuf")
    assert len(decoded.spans) == len(spans) - 3
    assert len(decoded.rejected) == 3
    assert any("trace id" in m for m in decoded.rejected)


@pytest.mark.parametrize("body, content_type", [
    (b"\xff\xff\xff garbage", "application/x-protobuf"),
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(), "application/json"),
    (json.dumps({"resourceSpans": "nope"}).encode(), "application/json"),
    (b"[" * 100_000, "application/json"),
])
def test_undecodable_bodies_raise_decode_error(body, content_type):
    with pytest.raises(otlp.OtlpDecodeError) as caught:
        otlp.decode(body, content_type)
    assert not isinstance(caught.value, (otlp.UnsupportedMediaType, otlp.PayloadTooLarge))


def test_truncated_protobuf_raises():
    body = to_otlp(_sdk_spans()).SerializeToString()
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decode(body[:-7], "application/x-protobuf")


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", None, ""])
def test_unknown_content_types(content_type):
    with pytest.raises(otlp.UnsupportedMediaType):
        otlp.decode(b"", content_type)


def test_decompress_gzip_deflate_and_limits():
    data = b"x" * 10_000
    assert otlp.decompress(gzip.compress(data), "gzip", 10_000) == data
    assert otlp.decompress(zlib.compress(data), "deflate", 10_000) == data
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert otlp.decompress(raw.compress(data) + raw.flush(), "deflate", 10_000) == data
    assert otlp.decompress(data, None, 10_000) == data
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.decompress(gzip.compress(data), "gzip", 9_999)
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.decompress(data, "identity", 9_999)
    with pytest.raises(otlp.UnsupportedMediaType):
        otlp.decompress(data, "br", 10_000)
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decompress(gzip.compress(data)[:-20], "gzip", 10_000)
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decompress(b"not gzip at all", "gzip", 10_000)


def test_gzip_bomb_is_refused_without_inflating_it():
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)  # 256 MiB in about 250 kB
    assert len(bomb) < 2 << 20
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.decompress(bomb, "gzip", 1 << 20)


def test_status_body_is_a_google_rpc_status():
    from google.rpc.status_pb2 import (
        Status,  # googleapis-common-protos, via the OTLP exporter
    )

    status = Status.FromString(otlp.status_body(400, "bad body ✗"))
    assert (status.code, status.message) == (400, "bad body ✗")
    assert json.loads(otlp.status_body(413, "big", as_json=True)) == {"code": 413, "message": "big"}


def test_response_bodies():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    assert otlp.response_body() == b""  # an empty message serialises to nothing
    response = ExportTraceServiceResponse.FromString(otlp.response_body(2, "a; b"))
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "a; b"
    as_json = json.loads(otlp.response_body(1, "a", as_json=True))
    assert as_json["partialSuccess"]["rejectedSpans"] in ("1", 1)
