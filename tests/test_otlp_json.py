"""OTLP/JSON gives the very spans OTLP/protobuf gives: the same requests, both ways, field by field.

Each request (recorded real-library spans, and random requests with every value kind, nested
arrays and lists, bytes, events, links, odd ids, flags, trace states, kinds and codes) is
decoded from its protobuf bytes and from its OTLP/JSON forms: protobuf's own JSON mapping
(``json_format.MessageToDict``) with hex ids, in lowerCamelCase and snake_case keys, 64-bit
integers as strings and as numbers, enums as names and as numbers, and with explicit nulls.
A body the real Node exporter (``@opentelemetry/exporter-trace-otlp-http``) posted is read
as protobuf's own JSON parser reads it. Bodies that are not OTLP/JSON raise ``OtlpDecodeError``
naming what was wrong, and only where protobuf's parser refuses them too.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from pathlib import Path

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_otlp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from span_fixtures import FIXTURES, load

from trubrics_otel.receive import otlp
from trubrics_otel.receive.attributes import RawExportTraceServiceRequest

NODE_BODY = Path(__file__).parent / "fixtures" / "otlp-json" / "node-exporter-trace-otlp-http.json"
LIMITS = (None, 2)
_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_INT64_KEYS = {"startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue",
               "start_time_unix_nano", "end_time_unix_nano", "time_unix_nano", "int_value"}


# --- what a decoded span is, every field, typed -----------------------------------------


def _typed(value):
    if isinstance(value, tuple):
        return ("tuple", [_typed(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, float):
        return ("float", repr(value))  # NaN equals itself; -0.0 is not 0.0
    return (type(value).__name__, value)


def _attributes(attributes) -> list:
    return [(key, _typed(value)) for key, value in (attributes or {}).items()]


def _context(context):
    if context is None:
        return None
    return (context.trace_id, context.span_id, context.is_remote, int(context.trace_flags),
            list(context.trace_state.items()), context.is_valid)


def _when(timestamp: int) -> int | str:
    """An event without a time gets the time it is decoded at (the SDK's ``Event``)."""
    return "decoded at" if abs(timestamp - time.time_ns()) < 60 * 10**9 else timestamp


def _span(span) -> dict:
    scope, resource = span.instrumentation_scope, span.resource
    return {
        "class": type(span).__name__, "name": span.name, "context": _context(span.context),
        "parent": _context(span.parent), "kind": span.kind,
        "status": (span.status.status_code, span.status.description),
        "times": (span.start_time, span.end_time), "attributes": _attributes(span.attributes),
        "events": [(e.name, _when(e.timestamp), _attributes(e.attributes)) for e in span.events],
        "links": [(_context(link.context), _attributes(link.attributes)) for link in span.links],
        "resource": (_attributes(resource.attributes), resource.schema_url),
        "scope": (type(scope).__name__, scope.name, scope.version, scope.schema_url, _attributes(scope.attributes)),
    }


def _fields(decoded: otlp.Decoded) -> dict:
    return {"spans": [_span(span) for span in decoded.spans], "rejected": decoded.rejected,
            "dropped": decoded.dropped}


# --- the JSON forms of a request ----------------------------------------------------------


def _hex_ids(document: dict) -> dict:
    """protobuf's JSON mapping writes ids in base64; OTLP/JSON wants hex."""
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_KEYS and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(document)
    return document


def _numbers(node):
    """The same document with its 64-bit integers as JSON numbers, not strings."""
    if isinstance(node, dict):
        return {key: int(value) if key in _INT64_KEYS and isinstance(value, str) else _numbers(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_numbers(item) for item in node]
    return node


def _nulls(node, snake: bool):
    """Every span field it leaves out written as an explicit ``null`` (which means absent)."""
    if isinstance(node, dict):
        node = {key: _nulls(value, snake) for key, value in node.items()}
        if "name" in node and any(key in node for key in _ID_KEYS):
            for key in ("parent_span_id", "trace_state", "status", "events", "links") if snake else \
                    ("parentSpanId", "traceState", "status", "events", "links"):
                node.setdefault(key, None)
        return node
    if isinstance(node, list):
        return [_nulls(item, snake) for item in node]
    return node


def json_forms(request: ExportTraceServiceRequest):
    """(label, body) of every OTLP/JSON spelling of ``request``."""
    for snake, enum_numbers in itertools.product((False, True), repeat=2):
        document = _hex_ids(json_format.MessageToDict(
            request, preserving_proto_field_name=snake, use_integers_for_enums=enum_numbers))
        label = f"{'snake' if snake else 'camel'}, enums as {'numbers' if enum_numbers else 'names'}"
        yield f"{label}, ints as strings", json.dumps(document).encode()
        yield f"{label}, ints as numbers, nulls", json.dumps(_nulls(_numbers(document), snake)).encode()


def assert_json_reads_as_protobuf(request: ExportTraceServiceRequest) -> None:
    body = request.SerializeToString()
    for limit in LIMITS:
        expected = _fields(otlp.decode(body, otlp.PROTOBUF, limit))
        for label, json_body in json_forms(request):
            decoded = otlp.decode(json_body, "application/json", limit)
            assert decoded.json
            assert _fields(decoded) == expected, f"{label}, attribute limit {limit}: {_diff(_fields(decoded), expected)}"


def _diff(got: dict, expected: dict) -> str:
    if got["spans"] and len(got["spans"]) == len(expected["spans"]):
        for mine, theirs in zip(got["spans"], expected["spans"]):
            for key in mine:
                if mine[key] != theirs[key]:
                    return f"{key}: {mine[key]!r:.300} != {theirs[key]!r:.300}"
    return f"{got!r:.600} != {expected!r:.600}"


def reference(body: bytes, limit: int | None = None) -> otlp.Decoded:
    """protobuf's own JSON parser (``json_format``), then the protobuf path: the old decoder."""
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the top level is not a JSON object")
    for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or []:
            for span in scope_spans.get("spans") or []:
                for holder in [span] + list(span.get("links") or []):
                    for key in _ID_KEYS:
                        if isinstance(holder.get(key), str):
                            holder[key] = base64.b64encode(bytes.fromhex(holder[key])).decode()
    request = json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    return otlp.to_spans(RawExportTraceServiceRequest.FromString(request.SerializeToString()), limit)


# --- recorded requests --------------------------------------------------------------------


RECORDED = sorted(FIXTURES.glob("*/*.json"))


@pytest.mark.parametrize("library", sorted({path.parent.name for path in RECORDED}))
def test_recorded_library_spans_read_the_same_as_json_and_protobuf(library):
    for path in RECORDED:
        if path.parent.name == library:
            assert_json_reads_as_protobuf(to_otlp(load(library, path.stem)))


def test_the_node_exporters_json_reads_as_protobufs_own_parser_reads_it():
    body = NODE_BODY.read_bytes()
    for limit in LIMITS:
        assert _fields(otlp.decode(body, "application/json", limit)) == _fields(reference(body, limit))
    decoded = otlp.decode(body, "application/json")
    assert len(decoded.spans) == 8 and not decoded.rejected
    chat = decoded.spans[0]
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12 and chat.end_time > chat.start_time


# --- random requests: every value kind ----------------------------------------------------

keys = st.sampled_from(["a", "b", "", "gen_ai.request.model", "ключ"]) | st.text(max_size=6)
scalars = st.one_of(
    st.text(max_size=12).map(lambda v: AnyValue(string_value=v)),
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    st.integers(-(1 << 63), (1 << 63) - 1).map(lambda v: AnyValue(int_value=v)),
    st.floats().map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=6).map(lambda v: AnyValue(bytes_value=v)),
    st.just(AnyValue()),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
    st.lists(st.tuples(keys, inner), max_size=4).map(
        lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))),
), max_leaves=10)
pairs = st.lists(st.one_of(st.builds(lambda k, v: KeyValue(key=k, value=v), keys, values),
                           keys.map(lambda k: KeyValue(key=k))), max_size=5)
ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.just(b""), st.just(bytes(16)), st.binary(max_size=18))
ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.just(b""), st.just(bytes(8)), st.binary(max_size=10))
times = st.one_of(st.just(0), st.integers(1, (1 << 64) - 1), st.integers(1_700_000_000 * 10**9, 1_800_000_000 * 10**9))
events = st.builds(Span.Event, name=st.text(max_size=6), time_unix_nano=times, attributes=pairs,
                   dropped_attributes_count=st.integers(0, 3))
links = st.builds(Span.Link, trace_id=ids16, span_id=ids8, attributes=pairs,
                  trace_state=st.sampled_from(["", "k=v"]), flags=st.integers(0, 0x3FF))
spans = st.builds(
    Span, trace_id=ids16, span_id=ids8, parent_span_id=ids8, name=st.text(max_size=8),
    kind=st.integers(0, 7), start_time_unix_nano=times, end_time_unix_nano=times,
    flags=st.integers(0, (1 << 32) - 1), trace_state=st.sampled_from(["", "a=1", "vendor=x,other=y"]),
    attributes=pairs, events=st.lists(events, max_size=3), links=st.lists(links, max_size=3),
    status=st.builds(Status, code=st.integers(0, 3), message=st.text(max_size=6)),
    dropped_attributes_count=st.integers(0, 5),
)
scopes = st.builds(InstrumentationScope, name=st.text(max_size=6), version=st.text(max_size=4), attributes=pairs)
requests = st.builds(ExportTraceServiceRequest, resource_spans=st.lists(st.builds(
    ResourceSpans, resource=st.builds(Resource, attributes=pairs), schema_url=st.sampled_from(["", "https://s/1"]),
    scope_spans=st.lists(st.builds(ScopeSpans, scope=scopes, spans=st.lists(spans, max_size=3),
                                   schema_url=st.sampled_from(["", "https://s/2"])), max_size=2),
), max_size=2))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_random_requests_read_the_same_as_json_and_protobuf(request):
    assert_json_reads_as_protobuf(request)


# --- what is not OTLP/JSON ----------------------------------------------------------------


def _body(span: dict | None = None, **value) -> bytes:
    span = span or {"traceId": "0" * 31 + "1", "spanId": "0" * 15 + "2", "endTimeUnixNano": "2",
                    "attributes": [{"key": "k", "value": value}]}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def _nested(depth: int) -> dict:
    value: dict = {"stringValue": "deep"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


MALFORMED = [
    (b"{not json", "JSON"),
    (b"", "JSON"),
    (b"[1, 2]", "top level"),
    (b'"resourceSpans"', "top level"),
    (json.dumps({"resourceSpans": "nope"}).encode(), "resourceSpans"),
    (json.dumps({"resourceSpans": [None]}).encode(), "resourceSpans"),
    (json.dumps({"resourceSpans": [{"resource": {"attributes": 7}}]}).encode(), "attributes"),
    (_body({"traceId": "zz", "spanId": "0" * 16}), "traceId 'zz' is not hex"),
    (_body({"traceId": 12, "spanId": "0" * 16}), "traceId"),
    (_body({"spanId": "abc"}), "spanId"),
    (_body({"name": 5}), "name"),
    (_body({"startTimeUnixNano": "soon"}), "startTimeUnixNano"),
    (_body({"endTimeUnixNano": -1}), "endTimeUnixNano"),
    (_body({"endTimeUnixNano": 1.5}), "endTimeUnixNano"),
    (_body({"flags": True}), "flags"),
    (_body({"kind": {"x": 1}}), "kind"),
    (_body({"status": "ERROR"}), "status is not a JSON object"),  # json_format: an empty status
    (_body({"events": {}}), "events"),
    (_body({"links": [{"traceId": "xyz"}]}), "link traceId"),
    (_body(stringValue=5), "stringValue"),
    (_body(intValue="12abc"), "intValue"),
    (_body(intValue=2.5), "intValue"),
    (_body(intValue=str(1 << 63)), "out of range"),
    (_body(boolValue="true"), "boolValue"),
    (_body(doubleValue="nan"), "doubleValue"),
    (_body(doubleValue=[1.0]), "doubleValue"),
    (_body(bytesValue=5), "bytesValue"),
    (_body(bytesValue="A"), "bytesValue of 'k' is not base64"),
    (_body(stringValue="a", intValue=1), "more than one"),
    (_body(arrayValue={"values": [None]}), "not a JSON object"),
    (_body(arrayValue={"values": "abc"}), "not a list"),
    (_body(kvlistValue={"values": [{"key": 3, "value": {}}]}), "attribute key"),
    (_body(**_nested(60)), "nested too deep"),
    (b"[" * 100_000, "JSON"),
    (b'{"resourceSpans": [' * 5_000, "JSON"),
]


@pytest.mark.parametrize("body, named", MALFORMED, ids=[named for _, named in MALFORMED])
def test_what_is_not_otlp_json_is_a_decode_error_naming_it(body, named):
    with pytest.raises(otlp.OtlpDecodeError) as caught:
        otlp.decode(body, "application/json")
    assert not isinstance(caught.value, (otlp.UnsupportedMediaType, otlp.PayloadTooLarge))
    assert named in str(caught.value) and str(caught.value).startswith("body is not an OTLP/JSON")
    if "is not a JSON object" not in named:  # where protobuf's parser reads an empty message
        with pytest.raises(Exception):  # protobuf's own parser refuses it too
            reference(body)


def test_the_depth_protobufs_parser_allows_is_the_depth_read():
    """Nested arrays and key-value lists: refused from the same depth ``json_format`` refuses."""
    for depth in range(40, 50):
        for value in (_nested(depth), _kvlists(depth)):
            body = _body(**value)
            try:
                expected = _fields(reference(body))
            except json_format.ParseError:
                expected = None
            try:
                got = _fields(otlp.decode(body, "application/json"))
            except otlp.OtlpDecodeError:
                got = None
            assert got == expected, depth


def _kvlists(depth: int) -> dict:
    value: dict = {"intValue": 1}
    for _ in range(depth * 2 // 3):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 65), 1 << 65), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=6), st.sampled_from(["NaN", "Infinity", "1e3", "12", "-3", "0x10", "AAE=", "ab" * 8])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from([
        "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue", "arrayValue", "kvlistValue",
        "string_value", "values", "key", "value"]), inner, max_size=3)),
    max_leaves=12,
)
span_fields = st.fixed_dictionaries({}, optional={
    "traceId": st.sampled_from(["0" * 31 + "1", "", "00", "zz"]) | json_junk,
    "spanId": st.sampled_from(["0" * 15 + "2", "0" * 16]) | json_junk,
    "parentSpanId": st.sampled_from(["0" * 15 + "3", ""]) | json_junk,
    "name": json_junk, "kind": json_junk, "flags": json_junk, "traceState": json_junk,
    "startTimeUnixNano": json_junk, "endTimeUnixNano": st.sampled_from(["5", 5]) | json_junk,
    "status": st.fixed_dictionaries({}, optional={"code": json_junk, "message": json_junk}) | json_junk,
    "attributes": st.lists(st.fixed_dictionaries({"key": st.text(max_size=3), "value": json_junk})) | json_junk,
    "events": st.lists(st.fixed_dictionaries({}, optional={"name": json_junk, "timeUnixNano": json_junk})) | json_junk,
})


@settings(max_examples=300, deadline=None)
@given(span_fields)
def test_junk_in_any_field_reads_as_protobufs_parser_reads_it(span):
    """Wrong types anywhere: an ``OtlpDecodeError`` where protobuf's parser refuses the body,
    the same spans where it reads it. (This decoder is stricter in one way: a string or a
    list where a message belongs, which protobuf's parser reads as an empty message.)"""
    body = _body(span)
    try:
        expected = _fields(reference(body))
    except (json_format.ParseError, ValueError, TypeError, AttributeError):
        expected = None
    try:
        got = _fields(otlp.decode(body, "application/json"))
    except otlp.OtlpDecodeError as error:
        assert expected is None or "is not a JSON object" in str(error), error
    else:
        assert got == expected
