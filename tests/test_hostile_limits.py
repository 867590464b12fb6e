"""Size limits that hold on their own (issue 25: tests that did not notice a deliberate break).

Each test fails when its one guard is removed, even though another layer would still
answer with the right status: the decompression cap must bound *memory*, not only end in a
413; grpcio's message limit must refuse an oversized message *before* our code sees it.
"""

from __future__ import annotations

import gzip
import tracemalloc

import grpc
import pytest
from conftest import API_KEY
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as to_otlp,
)
from test_bridge import sdk_spans

from trubrics_otel.receive import otlp
from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.receive.grpc import SERVICE
from trubrics_otel.server import LocalServer

LIMIT = 64 << 10


def test_a_gzip_bomb_costs_at_most_the_cap_in_memory():
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)  # 256 MiB in about 250 kB
    tracemalloc.start()
    try:
        with pytest.raises(otlp.PayloadTooLarge):
            otlp.decompress(bomb, "gzip", 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"inflating a 1 MiB-capped bomb allocated {peak >> 20} MiB"


def oversized_request() -> bytes:
    """A valid OTLP request over LIMIT bytes: only a size limit can refuse it."""
    body = to_otlp(sdk_spans(400)).SerializeToString()
    assert len(body) > LIMIT
    return body


def export_over_grpc(address: str, body: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(f"/{SERVICE}/Export")(body, timeout=30)
    return caught.value


def test_serve_grpc_refuses_a_message_over_its_size_limit(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3", max_body_bytes=LIMIT, grpc_port=0) as server:
        error = export_over_grpc(f"127.0.0.1:{server.grpc_port}", oversized_request())
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert server.store.count()["events"] + server.store.count()["llm_events"] == 0


def test_bridge_grpc_refuses_an_oversized_message_before_decoding_it(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="127.0.0.1:0",
                max_body=LIMIT) as bridge:
        error = export_over_grpc(bridge.grpc_address, oversized_request())
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert bridge.stats().get("grpc_requests", 0) == 0  # grpcio refused it, not our 413
    assert endpoint.count() == 0
