"""Fuzz the bridge: the OTLP decoder and the whole request path, on garbage and wrong shapes.

Skipped while ``trubrics_otel.receive.otlp`` (``decode_request(body, content_type)``, from the bridge
work) is not merged; it runs as soon as the module exists.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trubrics_otel.translate.encoder import encode_span

otlp = pytest.importorskip("trubrics_otel.receive.otlp", reason="trubrics_otel.receive.otlp (the bridge) not merged yet")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=4096), st.sampled_from([
    "application/x-protobuf", "application/json", "application/protobuf", "text/plain", "",
]))
def test_otlp_decoder_never_crashes_on_garbage(body, content_type):
    try:
        spans = otlp.decode_request(body, content_type)
    except ValueError:
        return  # a clean, documented refusal (the bridge answers 400)
    for span in spans:
        kind, event = encode_span(span)  # whatever decoded must also encode
        if kind is not None:
            json.dumps(event, allow_nan=False)


def _otlp_json(name: str, attributes: list) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0" * 31 + "1", "spanId": "0" * 15 + "2", "name": name,
        "startTimeUnixNano": "1", "endTimeUnixNano": "2", "attributes": attributes,
    }]}]}]}).encode()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(), c, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.lists(st.fixed_dictionaries({"key": st.text(), "value": json_values}), max_size=6))
def test_otlp_decoder_survives_structured_junk(name, attributes):
    """Well-formed JSON with wrong shapes inside (a value that is not an AnyValue…)."""
    try:
        spans = otlp.decode_request(_otlp_json(name, attributes), "application/json")
    except ValueError:
        return
    for span in spans:
        encode_span(span)




def test_bridge_request_handling_never_crashes():
    """The bridge's whole request path (decompress, decode, encode, forward, answer) on junk."""
    bridge_module = pytest.importorskip("trubrics_otel.receive.bridge")
    from trubrics_endpoint import TrubricsEndpoint

    with TrubricsEndpoint() as endpoint:
        bridge = bridge_module.Bridge(host=endpoint.url, api_key="k", listen="127.0.0.1:0",
                                      max_body=1 << 16, timeout=2)

        @settings(max_examples=300, deadline=None)
        @given(
            st.one_of(st.binary(max_size=2048), st.builds(_otlp_json, st.text(), st.lists(
                st.fixed_dictionaries({"key": st.text(), "value": json_values}), max_size=4)),
                st.binary(max_size=64).map(lambda b: __import__("gzip").compress(b))),
            st.sampled_from([None, "", "application/x-protobuf", "application/json",
                             "application/json; charset=utf-8", "text/html"]),
            st.sampled_from([None, "", "gzip", "deflate", "br", "identity"]),
        )
        def run(body, content_type, content_encoding):
            answer = bridge.export(body, content_type, content_encoding)
            assert answer.status in (200, 400, 401, 413, 415, 429, 500, 503)

        run()
