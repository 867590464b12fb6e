"""Off loopback, nobody writes or reads without the key (issue 25, case 6).

Both servers (``serve`` and ``bridge``) bind 0.0.0.0 here so that the off-loopback rule
applies, but the tests connect only through 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys

import grpc
import pytest
import requests
from conftest import API_KEY
from test_bridge import good_body

from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.receive.grpc import SERVICE
from trubrics_otel.server import LocalServer

KEY = "s3rver-key"
EVENT = [{"user_id": "u", "event": "Signed up", "timestamp": "2024-05-01T10:00:00Z"}]
BASIC = "Basic " + base64.b64encode(f"pk-lf-public:{KEY}".encode()).decode()
OTLP = {"Content-Type": "application/x-protobuf"}

# (headers presented, whether they carry the server's key)
CREDENTIALS = [
    ({}, False),
    ({"x-api-key": "made-up"}, False),
    ({"Authorization": "Bearer made-up"}, False),
    ({"Authorization": "Bearer"}, False),
    ({"Authorization": "Basic !!not base64"}, False),
    ({"x-api-key": KEY}, True),
    ({"Authorization": f"Bearer {KEY}"}, True),
    ({"Authorization": BASIC}, True),
]


def grpc_export(export, headers: dict[str, str], valid: bool) -> None:
    """One gRPC export with ``headers`` as metadata: OK with the key, UNAUTHENTICATED without."""
    metadata = [(name.lower(), value) for name, value in headers.items()]
    if valid:
        export(good_body(1), metadata=metadata, timeout=10)
        return
    with pytest.raises(grpc.RpcError) as caught:
        export(good_body(1), metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def local(url: str) -> str:
    """The same port, reached through 127.0.0.1 only."""
    return "http://127.0.0.1:" + url.rsplit(":", 1)[1]


@pytest.mark.parametrize("command", [
    ["serve", "--bind", "0.0.0.0", "--port", "0", "--no-grpc"],
    ["bridge", "--listen", "0.0.0.0:0", "--grpc-listen", "off"],
    ["bridge", "--listen", "127.0.0.1:0", "--grpc-listen", "0.0.0.0:0"],
], ids=["serve", "bridge-http", "bridge-grpc"])
def test_off_loopback_without_a_key_refuses_to_start(command, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRUBRICS_API_KEY": API_KEY}
    db = ["--db", str(tmp_path / "x.sqlite3")] if command[0] == "serve" else []
    try:
        done = subprocess.run([sys.executable, "-m", "trubrics_otel", *command, *db], env=env,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command[0]} started off loopback without a key")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert ("--api-key" if command[0] == "serve" else "--receive-key") in lines[0]


def test_the_classes_refuse_too():
    with pytest.raises(ValueError, match="api-key"):
        LocalServer(":memory:", host="0.0.0.0")
    with pytest.raises(ValueError, match="receive-key"):
        Bridge(host="http://127.0.0.1:1", listen="0.0.0.0:0")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("auth") / "e.sqlite3", host="0.0.0.0", api_key=KEY,
                     grpc_port=0) as running:
        yield running


@pytest.mark.parametrize(("headers", "valid"), CREDENTIALS)
@pytest.mark.parametrize("route", ["/publish_events", "/v1/traces", "/api/stats", "/api/events"])
def test_serve_off_loopback_every_write_and_read_needs_the_key(server, route, headers, valid):
    before = server.store.count()
    url = local(server.url) + route
    if route.startswith("/api/"):
        response = requests.get(url, headers=headers, timeout=10)
    elif route == "/v1/traces":
        response = requests.post(url, data=good_body(1), headers={**OTLP, **headers}, timeout=10)
    else:
        response = requests.post(url, json=EVENT, headers=headers, timeout=10)
    assert response.status_code == (200 if valid else 401), response.text
    if not valid:
        assert server.store.count() == before  # nothing written
        assert KEY not in response.text


@pytest.mark.parametrize(("headers", "valid"), CREDENTIALS)
def test_serve_off_loopback_grpc_needs_the_key(server, headers, valid):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        before = server.store.count()["events"]
        grpc_export(channel.unary_unary(f"/{SERVICE}/Export"), headers, valid)
        if not valid:
            assert server.store.count()["events"] == before


def test_a_refused_upload_is_answered_from_its_headers(server):
    """401 before the body: a client announcing 30 MiB without the key sends none of it."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /publish_events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"x-api-key: made-up\r\nContent-Length: %d\r\n\r\n" % (30 << 20))
        try:
            answer = conn.recv(4096)
        except TimeoutError:
            pytest.fail("the server waited for the body of an unauthorised upload")
    assert answer.startswith(b"HTTP/1.1 401")


def test_bridge_off_loopback_every_export_needs_the_receive_key(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="0.0.0.0:0", grpc_listen="0.0.0.0:0",
                receive_key=KEY) as bridge:
        url = local(bridge.url) + "/v1/traces"
        grpc_port = bridge.grpc_address.rsplit(":", 1)[1]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            export = channel.unary_unary(f"/{SERVICE}/Export")
            for headers, valid in CREDENTIALS:
                before = endpoint.count()
                response = requests.post(url, data=good_body(1), headers={**OTLP, **headers}, timeout=10)
                assert response.status_code == (200 if valid else 401), headers
                grpc_export(export, headers, valid)
                assert endpoint.count() == before + (2 if valid else 0), headers
        health = requests.get(local(bridge.url) + "/healthz", timeout=10)
        assert health.status_code == 200 and KEY not in health.text and "accepted" in json.loads(health.text)


def test_bridge_passes_the_senders_trubrics_key_on_beside_the_receive_key(endpoint):
    """Without its own Trubrics key, the bridge forwards the sender's x-api-key; the receive
    key then travels as Authorization: Bearer, and is never forwarded."""
    with Bridge(host=endpoint.url, listen="0.0.0.0:0", receive_key=KEY) as bridge:
        url = local(bridge.url) + "/v1/traces"
        both = {**OTLP, "x-api-key": API_KEY, "Authorization": f"Bearer {KEY}"}
        assert requests.post(url, data=good_body(1), headers=both, timeout=10).status_code == 200
        only_receive_key = {**OTLP, "x-api-key": KEY}
        assert requests.post(url, data=good_body(1), headers=only_receive_key, timeout=10).status_code == 401
    assert endpoint.count() == 1


def test_a_grpc_export_without_the_key_is_refused_before_its_message_is_read(server, endpoint):
    """UNAUTHENTICATED even for a message over the size limit: the metadata was enough, so
    grpcio never read (nor buffered) the 11 MiB message, which it would refuse as too large."""
    oversized = b"\0" * (11 << 20)
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="0.0.0.0:0",
                receive_key=KEY, max_body=10 << 20) as bridge:
        for port in (server.grpc_port, bridge.grpc_address.rsplit(":", 1)[1]):
            with grpc.insecure_channel(f"127.0.0.1:{port}",
                                       options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
                with pytest.raises(grpc.RpcError) as caught:
                    channel.unary_unary(f"/{SERVICE}/Export")(oversized, timeout=30)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, port
