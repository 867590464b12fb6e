"""The bridge's memory per request is bounded and given back (issue 25, case 10).

The bridge runs in its own process so its peak RSS is its own; the test process sends
requests of 200,000 attributes each (~9 MiB of protobuf), six at once. Without the bound
(the OTel SDK's attribute-count limit, large decodes two at a time, ``malloc_trim``) each
such request grew the bridge by a few hundred MiB and kept much of it.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import requests
from conftest import API_KEY
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

BRIDGE = """
import sys
from trubrics_otel.receive.bridge import Bridge

def rss_mib(field):
    status = open("/proc/self/status").read()
    return int(status.split(field + ":")[1].split()[0]) / 1024

with Bridge(host=sys.argv[1], api_key=sys.argv[2], listen="127.0.0.1:0", timeout=30) as bridge:
    base = rss_mib("VmRSS")
    print(bridge.url, flush=True)
    sys.stdin.readline()
    print(base, rss_mib("VmHWM"), rss_mib("VmRSS"), flush=True)
"""


def wide_span_request(attributes: int) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    span.name, span.start_time_unix_nano, span.end_time_unix_nano = "Signed up", 1, 2
    span.attributes.extend([KeyValue(key="trubrics.event", value=AnyValue(string_value="Signed up")),
                            KeyValue(key="trubrics.user_id", value=AnyValue(string_value="u"))])
    span.attributes.extend(KeyValue(key=f"attribute.{i:07d}", value=AnyValue(string_value="v" * 20))
                           for i in range(attributes))
    return request.SerializeToString()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_wide_requests_cost_bounded_memory_and_give_it_back(endpoint, tmp_path):
    body = wide_span_request(200_000)
    bridge = subprocess.Popen([sys.executable, "-c", BRIDGE, endpoint.url, API_KEY], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        url = bridge.stdout.readline().strip()
        statuses = []

        def send() -> None:
            statuses.append(requests.post(f"{url}/v1/traces", data=body, timeout=120,
                                          headers={"Content-Type": "application/x-protobuf"}).status_code)

        senders = [threading.Thread(target=send) for _ in range(6)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        health = requests.get(f"{url}/healthz", timeout=10).json()
        out, _ = bridge.communicate("done\n", timeout=60)
    finally:
        bridge.kill()
    base, peak, after = map(float, out.split())
    assert statuses == [200] * 6
    assert endpoint.count() >= 1
    assert health["dropped_attributes"] == 6 * (200_002 - 1024)  # kept: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT's 1024
    assert all(len(e["properties"]) < 2_000 for e in endpoint.events())  # the first ones, not 200,000
    print(f"bridge RSS: base {base:.0f} MiB, peak +{peak - base:.0f} MiB, after +{after - base:.0f} MiB")
    assert peak - base < 150, f"peak grew by {peak - base:.0f} MiB for 4 x {len(body) >> 20} MiB requests"
    assert after - base < 40, f"{after - base:.0f} MiB still held after the requests"
