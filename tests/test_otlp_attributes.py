"""Attributes read from their wire bytes (``receive/attributes.py``) come out exactly as
protobuf's own objects give them: every value kind, every length boundary, pairs written in
an unusual order, pairs met a second time (remembered), and malformed pairs."""

from __future__ import annotations

import math

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from trubrics_otel.receive import otlp


def _reference(pairs) -> dict:
    """The oracle: protobuf's own messages, read the way the SDK holds attributes."""
    found = {}
    for pair in pairs:
        value = _reference_value(pair.value)
        if value is not None:
            found[pair.key] = value
    return found


def _reference_value(value: AnyValue):
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(v for v in map(_reference_value, value.array_value.values) if v is not None)
    if which == "kvlist_value":
        return _reference(value.kvlist_value.values)
    return getattr(value, which)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _request(*pairs: bytes, span_number: int = 1) -> bytes:
    """An export request of one valid span whose attributes are ``pairs``, byte for byte."""
    span = (_field(1, bytes(range(1, 17))) + _field(2, span_number.to_bytes(8, "big")) + _field(5, b"call")
            + b"\x41" + (2_000_000_000).to_bytes(8, "little") + b"\x39" + (1_000_000_000).to_bytes(8, "little")
            + b"".join(_field(9, pair) for pair in pairs))
    return _field(1, _field(2, _field(2, span)))


def _decoded(body: bytes) -> dict:
    decoded = otlp.decode(body, otlp.PROTOBUF)
    assert decoded.rejected == []
    return dict(decoded.spans[0].attributes)


def _expected(body: bytes) -> dict:
    span = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0]
    return _reference(span.attributes)


def _same_both_times(*pairs: bytes) -> dict:
    """Decoded twice (the second time, short pairs are remembered): equal to the oracle, and
    with the value types protobuf gives (``1 == True`` must not hide a bool read as an int)."""
    body = _request(*pairs)
    expected = _expected(body)
    for _ in range(2):
        got = _decoded(body)
        assert got == expected
        assert list(got) == list(expected)  # the order of the keys too
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    return expected


TEXTS = ["", "a", "x" * 125, "x" * 126, "x" * 127, "x" * 128, "x" * 16_380, "x" * 16_383, "x" * 16_384,
         "x" * 100_000, "héllo wörld ✓ 日本", "🙂" * 40]


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"{len(t)}-chars")
def test_texts_of_every_length_boundary(text):
    assert _same_both_times(KeyValue(key="k", value=AnyValue(string_value=text)).SerializeToString()) == {"k": text}


@pytest.mark.parametrize("number", [0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -300, -(2**63)])
def test_integers_signed_as_int64(number):
    assert _same_both_times(KeyValue(key="n", value=AnyValue(int_value=number)).SerializeToString()) == {"n": number}


def test_doubles_booleans_bytes_arrays_and_lists():
    values = [AnyValue(double_value=1.5), AnyValue(double_value=-0.0), AnyValue(double_value=math.inf),
              AnyValue(bool_value=True), AnyValue(bool_value=False), AnyValue(bytes_value=b"\x00\xff"),
              AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop"), AnyValue(int_value=3),
                                                      AnyValue(), AnyValue(string_value="")])),
              AnyValue(array_value=ArrayValue()),
              AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1)),
                                                         KeyValue(key="b", value=AnyValue())]))]
    pairs = [KeyValue(key=f"k{i}", value=v).SerializeToString() for i, v in enumerate(values)]
    expected = _same_both_times(*pairs)
    assert expected["k3"] is True and expected["k4"] is False and expected["k6"] == ("stop", 3, "")


def test_keys_long_empty_repeated_and_values_missing():
    pairs = [KeyValue(key="k" * 200, value=AnyValue(string_value="long key")).SerializeToString(),
             KeyValue(key="", value=AnyValue(string_value="no key")).SerializeToString(),
             KeyValue(key="gone", value=AnyValue()).SerializeToString(),  # an empty value: left out
             KeyValue(key="gone too").SerializeToString(),
             KeyValue(key="twice", value=AnyValue(string_value="first")).SerializeToString(),
             KeyValue(key="twice", value=AnyValue(string_value="second")).SerializeToString(),
             KeyValue(key="kept", value=AnyValue(string_value="first")).SerializeToString(),
             KeyValue(key="kept", value=AnyValue()).SerializeToString()]  # an empty value later: the first stays
    assert _same_both_times(*pairs) == {"k" * 200: "long key", "": "no key", "twice": "second", "kept": "first"}


def test_the_attribute_limit_bounds_arrays_inside_values_whatever_was_read_before():
    array = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=str(i)) for i in range(5)]))
    pairs = [KeyValue(key="a", value=array).SerializeToString(), KeyValue(key="b", value=array).SerializeToString()]
    body = _request(*pairs)
    for limit, expected in ((None, {"a": ("0", "1", "2", "3", "4"), "b": ("0", "1", "2", "3", "4")}),
                            (3, {"a": ("0", "1", "2"), "b": ("0", "1", "2")}), (1, {"a": ("0",)}),
                            (None, {"a": ("0", "1", "2", "3", "4"), "b": ("0", "1", "2", "3", "4")})):
        assert otlp.decode(body, otlp.PROTOBUF, limit).spans[0].attributes == expected


def test_pairs_written_in_an_unusual_order_read_as_protobuf_reads_them():
    value = AnyValue(string_value="v").SerializeToString()
    pairs = [
        _field(2, value) + _field(1, b"value first"),  # fields out of order
        _field(1, b"key twice") + _field(1, b"key again") + _field(2, value),  # the last key wins
        _field(1, b"value twice") + _field(2, value) + _field(2, AnyValue(int_value=7).SerializeToString()),
        _field(1, b"unknown field") + _field(2, value) + _field(9, b"ignored"),
        _field(1, b"string twice") + _field(2, _field(1, b"a") + _field(1, b"b")),
        _field(1, b"trailing") + _field(2, _field(1, b"t") + b"\x18\x05"),  # a text then an int
        _field(1, b"long varint") + b"\x12\x83\x80\x00" + _field(1, b"x"),  # a length in 3 bytes
    ]
    assert _same_both_times(*pairs)["key again"] == "v"


def test_a_value_read_from_a_list_is_not_shared_between_spans():
    pair = KeyValue(key="m", value=AnyValue(kvlist_value=KeyValueList(
        values=[KeyValue(key="a", value=AnyValue(int_value=1))]))).SerializeToString()
    first, second = otlp.decode(_request(pair), otlp.PROTOBUF).spans, otlp.decode(_request(pair), otlp.PROTOBUF).spans
    first[0].attributes["m"]["a"] = 2
    assert second[0].attributes["m"] == {"a": 1}


@pytest.mark.parametrize("pair", [
    _field(1, b"\xff\xfe") + _field(2, _field(1, b"v")),  # a key that is not UTF-8
    _field(1, b"k") + _field(2, _field(1, b"\xc3")),  # a text cut inside a character
    _field(1, b"k") + _field(2, _field(1, b"vvv")[:-1]),  # a value cut short
    _field(1, b"k") + b"\x12\x05\x0a",  # a length past the end
    _field(1, b"k") + b"\x12\x05" + _field(1, b"v"),  # a value shorter than it says
    _field(1, b"k") + b"\x12\x02" + _field(1, b"v"),  # a value longer than it says
], ids=["bad-key", "bad-text", "short-value", "past-the-end", "value-too-short", "value-too-long"])
def test_a_malformed_pair_rejects_the_request_as_protobuf_would(pair):
    body = _request(pair)
    with pytest.raises(DecodeError) as whole:
        ExportTraceServiceRequest.FromString(body)
    for _ in range(2):
        with pytest.raises(otlp.OtlpDecodeError) as raised:
            otlp.decode(body, otlp.PROTOBUF)
        assert str(raised.value) == f"body is not a protobuf ExportTraceServiceRequest: {whole.value}"
