"""OTLP trace requests → the SDK's ``ReadableSpan``, so the bridge feeds the same encoder.

Pure: bytes in, spans out; no I/O, no clock::

    body = decompress(raw, request.headers.get("Content-Encoding"), max_size=32 << 20)
    spans = decode_request(body, request.headers["Content-Type"])
    encode_spans(spans)             # exactly what the in-process exporter does

    decode(body, content_type).rejected   # one message per span that was not valid OTLP

Both OTLP/HTTP encodings are read: binary protobuf (``application/x-protobuf``) and
OTLP/JSON (``application/json``: lowerCamelCase keys, enums as names or integers, 64-bit
integers as strings or numbers, and trace / span ids as *hex* strings, not base64 as
protobuf's own JSON mapping would have them).

Attribute values come out as the SDK holds them in-process: string, bool, int, float,
a tuple for an array, a dict for a key-value list, bytes for bytes; an empty value drops
the attribute. A span without a valid trace id, span id or end time is rejected (it could
never become an event with a stable identity) and counted in ``Decoded.rejected`` by :func:`decode`.
Anything that is not an OTLP request at all raises :class:`OtlpDecodeError`.

``attribute_limit`` bounds the work one request can ask for: each span, span event, link,
resource and key-value list keeps its first ``attribute_limit`` attributes, each array its
first ``attribute_limit`` values, each span its first ``attribute_limit`` events and links
(``Decoded.dropped`` counts what was left out), as the OTel SDK's span limits do in-process.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)

from trubrics_otel.receive import otlp_json
from trubrics_otel.receive.attributes import RawExportTraceServiceRequest, attributes_of
from trubrics_otel.receive.received import ReceivedScope, ReceivedSpan, contexts, first, invalid

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# OTLP SpanKind (0 = unspecified) → SDK SpanKind; anything unknown reads as INTERNAL.
_KINDS = {
    trace_pb2.Span.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_SERVER: SpanKind.SERVER,
    trace_pb2.Span.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    trace_pb2.Span.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    trace_pb2.Span.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_STATUS = {
    trace_pb2.Status.STATUS_CODE_OK: StatusCode.OK,
    trace_pb2.Status.STATUS_CODE_ERROR: StatusCode.ERROR,
}
_UNSET = Status(StatusCode.UNSET)
_INTERNAL, _ERROR = SpanKind.INTERNAL, StatusCode.ERROR  # an enum member read costs ~10x a global


class OtlpDecodeError(ValueError):
    """The body is not an OTLP trace request in the encoding it claims (HTTP 400)."""

    status = 400
    """The HTTP status a receiver answers with."""


class UnsupportedMediaType(OtlpDecodeError):
    """A content type or content encoding this receiver does not read (HTTP 415)."""

    status = 415


class PayloadTooLarge(OtlpDecodeError):
    """The body, once decompressed, would exceed the size limit (HTTP 413)."""

    status = 413


@dataclass
class Decoded:
    spans: list[ReadableSpan] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """One message per span left out because it is not valid OTLP."""
    json: bool = False
    """The request was OTLP/JSON: answer in JSON too."""
    dropped: int = 0
    """Span attributes, events and links left out past ``attribute_limit``."""


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``Application/JSON; charset=utf-8``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decompress(body: bytes, content_encoding: str | None, max_size: int) -> bytes:
    """Undo ``gzip`` / ``deflate``, never producing more than ``max_size`` bytes.

    Decompression streams with a bounded output, so a small "bomb" costs at most
    ``max_size`` of memory before it is refused.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_size:
            raise PayloadTooLarge(f"body of {len(body)} bytes exceeds the {max_size}-byte limit")
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":  # RFC 9110 says zlib-wrapped; some clients send raw deflate
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}")
    out = b""
    while True:  # one pass per gzip member: RFC 1952 allows several, concatenated
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(body, max_size + 1 - len(out))
            if len(out) <= max_size and not inflater.unconsumed_tail:
                out += inflater.flush(max_size + 1 - len(out))
        except zlib.error as exc:
            raise OtlpDecodeError(f"body is not valid {encoding}: {exc}") from None
        if len(out) > max_size or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"body decompresses to more than the {max_size}-byte limit")
        if not inflater.eof:
            raise OtlpDecodeError(f"{encoding} body is truncated")
        body = inflater.unused_data
        if not body:
            return out
        if wbits != 16 + zlib.MAX_WBITS or body[:2] != b"\x1f\x8b":
            raise OtlpDecodeError(f"{len(body)} bytes after the end of the {encoding} body")


def decode_request(body: bytes, content_type: str | None) -> list[ReadableSpan]:
    """The valid spans of an ``ExportTraceServiceRequest`` (already decompressed)."""
    return decode(body, content_type).spans


def decode(body: bytes, content_type: str | None, attribute_limit: int | None = None) -> Decoded:
    """Like :func:`decode_request`, also telling which spans were rejected and why."""
    kind = media_type(content_type)
    if kind == PROTOBUF:
        request = RawExportTraceServiceRequest()  # attribute pairs as bytes: see .attributes
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise OtlpDecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
        try:
            return to_spans(request, attribute_limit)
        except DecodeError as exc:  # a malformed attribute pair
            raise OtlpDecodeError(f"body is not a protobuf ExportTraceServiceRequest: {_whole(body, exc)}") from None
    if kind != JSON:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or {JSON}"
        )
    try:  # read straight from the JSON: the same spans as to_spans makes of the protobuf
        spans, rejected, dropped = otlp_json.read(body, attribute_limit)
    except otlp_json.OtlpJsonError as exc:
        raise OtlpDecodeError(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return Decoded(spans, rejected, json=True, dropped=dropped)


def _whole(body: bytes, exc: Exception) -> Exception:
    """What parsing the whole request says (a malformed attribute pair names the request,
    as before pairs were read apart), else ``exc``."""
    try:
        ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError, ValueError) as whole:
        return whole
    return exc


def to_spans(request: ExportTraceServiceRequest, attribute_limit: int | None = None) -> Decoded:
    decoded = Decoded()
    limit = attribute_limit
    for resource_spans in request.resource_spans:
        resource = Resource(
            attributes_of(resource_spans.resource.attributes, limit), resource_spans.schema_url or None
        )
        for scope_spans in resource_spans.scope_spans:
            scope = _scope(scope_spans.scope, scope_spans.schema_url, limit)
            for span in scope_spans.spans:
                received = _span(span, resource, scope, limit, decoded)
                if received is not None:
                    decoded.spans.append(received)
    return decoded


def response_body(rejected: int = 0, message: str = "", *, as_json: bool = False) -> bytes:
    """An ``ExportTraceServiceResponse``, with ``partial_success`` when spans were rejected."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


def status_body(code: int, message: str, *, as_json: bool = False) -> bytes:
    """A ``google.rpc.Status`` (the OTLP/HTTP error body), written by hand: two fields."""
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


# --- helpers ---------------------------------------------------------------------------


def _span(span: trace_pb2.Span, resource: Resource, scope: InstrumentationScope,
          limit: int | None, decoded: Decoded) -> ReceivedSpan | None:
    """The span, or None (its problem added to ``decoded.rejected``). Each field is read once:
    every read of a upb message from Python makes a new object."""
    trace_bytes, span_bytes, parent_bytes = span.trace_id, span.span_id, span.parent_span_id
    end_time = span.end_time_unix_nano
    problem = invalid(trace_bytes, span_bytes, parent_bytes, end_time)
    if problem:
        decoded.rejected.append(f"span {span.name!r}: {problem}")
        return None
    context, parent = contexts(trace_bytes, span_bytes, parent_bytes, span.flags, span.trace_state)
    pb_status = span.status
    code = _STATUS.get(pb_status.code)
    if code is None:  # unset, or a code OTLP does not define
        status = _UNSET
    else:  # the SDK only keeps a description on ERROR
        status = Status(code, pb_status.message if code is _ERROR else None)
    pairs, pb_events, pb_links = span.attributes, span.events, span.links
    if limit is not None and (len(pairs) > limit or len(pb_events) > limit or len(pb_links) > limit):
        decoded.dropped += sum(max(0, len(many) - limit) for many in (pairs, pb_events, pb_links))
    events = tuple(
        Event(e.name, attributes_of(e.attributes, limit), e.time_unix_nano or None, limit=None)
        for e in first(pb_events, limit)
    ) if pb_events else ()
    links = tuple(
        Link(
            SpanContext(int.from_bytes(link.trace_id, "big"), int.from_bytes(link.span_id, "big"), True),
            attributes_of(link.attributes, limit),
        )
        for link in first(pb_links, limit)
        if len(link.trace_id) == 16 and len(link.span_id) == 8
    ) if pb_links else ()
    received = ReceivedSpan(
        span.name, context, parent, resource, attributes_of(pairs, limit), events, links,
        _KINDS.get(span.kind, _INTERNAL), status, span.start_time_unix_nano or None,
        end_time, scope,
    )
    received.wire_ids = trace_bytes, span_bytes, parent_bytes
    return received


def _scope(scope: PbScope, schema_url: str, limit: int | None = None) -> InstrumentationScope:
    return ReceivedScope(
        scope.name, scope.version or None, schema_url or None, attributes_of(scope.attributes, limit)
    )


def _varint(number: int) -> bytes:
    out = bytearray()
    number &= (1 << 64) - 1  # int32 negatives are sign-extended to ten bytes
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
