"""The receivers' framing, over raw sockets and a raw gRPC channel: chunked bodies the way
Node.js exporters send them, every broken upload we could think of, and gRPC status codes.
After each bad request the receiver still answers the next good one."""

from __future__ import annotations

import gzip
import re
import socket
import time

import grpc
import pytest
from conftest import API_KEY
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from test_bridge import assert_serves, good_body

from trubrics_otel.extras import install_command
from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.receive.grpc import SERVICE
from trubrics_otel.receive.http import HttpReceiver
from trubrics_otel.receive.request import Reply, Request
from trubrics_otel.server import LocalServer

CAP = 4 << 20
HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"


@pytest.fixture
def bridge(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="127.0.0.1:0",
                max_body=CAP, timeout=1.0, client_timeout=1) as running:
        yield running


def connect(bridge) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(bridge.url.rsplit(":", 1)[1])), timeout=30)


def chunked(body: bytes, size: int = 1000) -> bytes:
    """``body`` in chunks of ``size`` bytes, then the last chunk: what Node's http module writes."""
    pieces = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


def response(conn: socket.socket) -> bytes:
    """One whole response, headers and body (empty if the server closed), nothing more."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)  # byte by byte: never into the next response
        if not chunk:
            return data
        data += chunk
    length = next((int(line.split(b":")[1]) for line in data.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while length > 0:
        chunk = conn.recv(length)
        if not chunk:
            break
        data, length = data + chunk, length - len(chunk)
    return data


def test_an_answer_bigger_than_the_socket_buffers_arrives_whole_to_a_slow_reader():
    """The worker sends what the socket takes; the I/O thread sends the rest once the task ends."""
    answer = bytes(range(256)) * (32 << 10)  # 8 MB
    with HttpReceiver(lambda request: Reply(200, answer, "application/octet-stream"), ("127.0.0.1", 0),
                      max_body=CAP, refuse=lambda status, message, request: Reply(status)) as receiver:
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(10)
        conn.connect(("127.0.0.1", receiver.port))
        with conn:
            for _ in range(2):  # the same keep-alive connection serves the next request after it
                conn.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)  # the worker finds the socket's buffers full and ends its task
                reply = response(conn)
                assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(answer)


def test_a_sized_body_arriving_in_pieces_reaches_the_handler_whole():
    """With its headers or after them, in one read or many (past the 256 KiB a read takes),
    with a pause between pieces, and the next request on the same connection after it."""
    from hashlib import sha256

    body = bytes(range(256)) * 1800  # 460 KB
    seen = lambda request: Reply(200, sha256(request.body).hexdigest().encode(), "text/plain")  # noqa: E731
    with HttpReceiver(seen, ("127.0.0.1", 0), max_body=CAP,
                      refuse=lambda status, message, request: Reply(status)) as receiver:
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as conn:
            for size, cuts in ((len(body), (0, 7, 300_000)), (1, (0,)), (100_000, (5_000, 60_000))):
                sent = body[:size]
                whole = HEAD + b"Content-Length: %d\r\n\r\n" % size + sent
                start = len(whole) - size
                for a, b in zip((0, *(start + cut for cut in cuts)), (*(start + cut for cut in cuts), len(whole))):
                    conn.sendall(whole[a:b])
                    time.sleep(0.05)
                reply = response(conn)
                assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(sha256(sent).hexdigest().encode())


def test_requests_one_after_the_other_stay_on_one_worker_thread():
    """The thread that went idle last takes the next request (its SQLite connection's cache and
    its heap are warm), not each of the pool's threads in turn; requests at once still spread."""
    import threading

    served: list[int] = []
    started = threading.Barrier(3, timeout=10)

    def handle(request: Request) -> Reply:
        served.append(threading.get_ident())
        if request.path == "/together":
            started.wait()  # three requests running at once, on three threads
        return Reply(200, b"ok", "text/plain")

    with HttpReceiver(handle, ("127.0.0.1", 0), max_body=CAP, threads=8,
                      refuse=lambda status, message, request: Reply(status)) as receiver:
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as conn:
            for _ in range(12):
                conn.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
                assert response(conn).startswith(b"HTTP/1.1 200")
                time.sleep(0.05)  # the worker is back waiting before the next one arrives
        assert len(set(served)) <= 2, "one client's requests went round the pool's threads"
        served.clear()
        together = [socket.create_connection(("127.0.0.1", receiver.port), timeout=10) for _ in range(3)]
        for conn in together:
            conn.sendall(b"GET /together HTTP/1.1\r\nHost: x\r\n\r\n")
        for conn in together:
            with conn:
                assert response(conn).startswith(b"HTTP/1.1 200")
        assert len(set(served)) == 3


def test_the_handler_sees_the_request_as_sent_and_its_exception_is_a_500(caplog):
    """Path still percent-encoded, the last value of each query parameter, lower-case header
    names, the body de-chunked; an exception in the handler is logged and answered with
    ``refuse``'s 500, and the connection serves the next request."""
    seen: list[Request] = []

    def handle(request: Request) -> Reply:
        seen.append(request)
        if request.path == "/boom":
            raise RuntimeError("a bug")
        return Reply(200, b"ok", "text/plain")

    refuse = lambda status, message, request: Reply(status, f"{status} {message}".encode(), "text/plain")  # noqa: E731
    with HttpReceiver(handle, ("127.0.0.1", 0), max_body=CAP, refuse=refuse) as receiver:
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as conn:
            conn.sendall(b"POST /a%20b/?x=1&x=2&y=3 HTTP/1.1\r\nHost: x\r\nX-Api-Key: k1\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"hello world", 4))
            assert response(conn).startswith(b"HTTP/1.1 200")
            conn.sendall(b"POST /boom HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            failed = response(conn)
            assert failed.startswith(b"HTTP/1.1 500") and failed.endswith(b"500 internal error")
            conn.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert response(conn).startswith(b"HTTP/1.1 200")
    first = seen[0]
    assert (first.method, first.path, dict(first.query), first.body) == ("POST", "/a%20b/", {"x": "2", "y": "3"},
                                                                          b"hello world")
    assert first.header("X-API-KEY") == "k1" and first.headers["content-length"] == "11"
    assert [r.path for r in seen] == ["/a%20b/", "/boom", "/after"]
    assert any("Failed on POST /boom" in r.getMessage() and r.exc_info for r in caplog.records)


# --- chunked HTTP --------------------------------------------------------------------------


def test_chunked_gzip_without_content_length_like_node(bridge, endpoint):
    """The Node.js OTLP exporters' request: chunked, gzipped, no Content-Length; twice on one
    keep-alive connection."""
    with connect(bridge) as conn:
        for n in (1, 2):
            conn.sendall(HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: keep-alive\r\n\r\n" + chunked(gzip.compress(good_body(3)), 700))
            head = response(conn)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert endpoint.wait_for_events(3 * n) == 3 * n


def test_expect_100_continue_with_a_chunked_body(bridge, endpoint):
    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        assert response(conn).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(chunked(good_body(2)))
        assert response(conn).startswith(b"HTTP/1.1 200")
    assert endpoint.wait_for_events(2) == 2


def test_endless_chunked_body_gets_413_before_the_end(bridge, endpoint):
    """A chunked upload 16x the cap: 413 arrives while the client is still sending."""
    piece = b"%x\r\n" % 65536 + b"\0" * 65536 + b"\r\n"
    sent, answer = 0, b""
    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        conn.setblocking(False)
        try:
            while sent < 16 * CAP and not answer:
                try:
                    answer = conn.recv(4096)
                except BlockingIOError:
                    conn.setblocking(True)
                    conn.sendall(piece)
                    conn.setblocking(False)
                    sent += len(piece)
        except OSError:  # the server closed after answering; the answer is still readable
            pass
        conn.settimeout(30)
        answer = answer or conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 16 * CAP
    assert bridge.stats()["answered_413"] == 1
    assert_serves(bridge, endpoint)


def test_truncated_mid_chunk(bridge, endpoint):
    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(good_body(1))[:-30])
    assert_serves(bridge, endpoint)
    assert endpoint.count() == 1  # the broken one was never forwarded


@pytest.mark.parametrize("size_line, status", [
    (b"zz", b"400"), (b"-5", b"400"), (b"5;=", b"400"), (b"\r\nqq", b"400"),
    (b"1" * 40, b"413"),  # announced past the cap: refused at once, not waited for
])
def test_malformed_chunk_size(bridge, endpoint, size_line, status):
    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\nabcde\r\n0\r\n\r\n")
        assert response(conn).startswith(b"HTTP/1.1 " + status)
    assert_serves(bridge, endpoint)


def test_stalled_client_is_cut_off_and_others_are_served(bridge, endpoint):
    with connect(bridge) as stalled:
        stalled.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(good_body(1))[:40])
        assert_serves(bridge, endpoint)  # while one client stalls mid-body
        assert stalled.recv(4096) == b""  # closed by the bridge after client_timeout (1 s)
    assert endpoint.count() == 1


def test_connections_cost_no_thread_each(bridge, endpoint):
    """100 clients stalled mid-body: served on the fixed pool, no thread per connection."""
    import threading

    assert_serves(bridge, endpoint)
    threads_before = threading.active_count()
    stalled = [connect(bridge) for _ in range(100)]
    try:
        for conn in stalled:
            conn.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b"\0" * 10)
        assert_serves(bridge, endpoint)
        assert threading.active_count() - threads_before < 10
    finally:
        for conn in stalled:
            conn.close()


def test_gzip_bomb_in_a_chunked_body(bridge, endpoint):
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(bomb, 8192))
        assert response(conn).startswith(b"HTTP/1.1 413")
    assert_serves(bridge, endpoint)


def test_deflate_body(bridge, endpoint):
    import zlib

    with connect(bridge) as conn:
        conn.sendall(HEAD + b"Content-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(zlib.compress(good_body(2))))
        assert response(conn).startswith(b"HTTP/1.1 200")
    assert endpoint.wait_for_events(2) == 2


def test_serve_takes_chunked_gzip_on_every_route(tmp_path):
    """The local server shares the layer: OTLP, the ingestion API and the read API on one
    keep-alive connection, chunked and gzipped like a Node.js sender; its 413 is its JSON."""
    import json

    from test_server_ingestion import event

    with LocalServer(tmp_path / "e.sqlite3", max_body_bytes=1 << 20) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(gzip.compress(good_body(2))))
        assert response(conn).startswith(b"HTTP/1.1 200")
        batch = gzip.compress(json.dumps([event(1)]).encode())
        conn.sendall(b"POST /publish_events HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: application/json\r\n"
                     b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(batch, 10))
        assert response(conn).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        stats = response(conn)
        assert stats.startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as big:
            try:
                big.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"\0" * (3 << 19), 65536))
            except OSError:  # closed after its 413, which is still there to read
                pass
            head = response(big)
            assert head.startswith(b"HTTP/1.1 413") and b"application/json" in head
        counts = server.store.count()
    assert (counts["events"], counts["llm_events"]) == (1, 2)


# --- gRPC ----------------------------------------------------------------------------------


def export_call(bridge, channel_options=()):
    channel = grpc.insecure_channel(bridge.grpc_address, options=list(channel_options))
    return channel, channel.unary_unary(f"/{SERVICE}/Export")  # raw bytes both ways


def assert_grpc_serves(bridge, endpoint) -> None:
    before = endpoint.count()
    channel, export = export_call(bridge)
    with channel:
        answer = ExportTraceServiceResponse.FromString(export(good_body(1), timeout=30))
    assert not answer.HasField("partial_success")
    assert endpoint.count() == before + 1


def grpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_grpc_garbage_is_invalid_argument(bridge, endpoint):
    channel, export = export_call(bridge)
    with channel:
        error = grpc_error(lambda: export(b"\xff\x00garbage" * 100, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf" in error.details()
    assert_grpc_serves(bridge, endpoint)
    assert_serves(bridge, endpoint)  # and HTTP too


def test_grpc_while_trubrics_is_down_is_unavailable_with_retry_info(bridge, endpoint):
    endpoint.fail_for(60, status=503)
    channel, export = export_call(bridge)
    with channel:
        error = grpc_error(lambda: export(good_body(1), timeout=30))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1


def test_grpc_too_large_is_resource_exhausted(bridge, endpoint):
    channel, export = export_call(bridge, [("grpc.max_send_message_length", 64 << 20)])
    with channel:
        error = grpc_error(lambda: export(b"\0" * (CAP + 1), timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_grpc_serves(bridge, endpoint)


def test_grpc_gzip_bomb_is_resource_exhausted(bridge, endpoint):
    """grpcio checks the size once decompressed: a small gzip of 64 MiB is refused."""
    channel = grpc.insecure_channel(bridge.grpc_address, compression=grpc.Compression.Gzip)
    with channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        error = grpc_error(lambda: export(b"\0" * (64 << 20), timeout=60))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_grpc_serves(bridge, endpoint)


def test_grpc_without_a_key_is_unauthenticated(endpoint):
    with Bridge(host=endpoint.url, listen="127.0.0.1:0", grpc_listen="127.0.0.1:0") as keyless:
        channel, export = export_call(keyless)
        with channel:
            error = grpc_error(lambda: export(good_body(1), timeout=30))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            export(good_body(1), metadata=[("x-api-key", API_KEY)], timeout=30)  # passed through
    assert endpoint.count() == 1


def test_grpc_partial_success(bridge, endpoint):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(good_body(2))
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    channel, export = export_call(bridge)
    with channel:
        answer = ExportTraceServiceResponse.FromString(export(request.SerializeToString(), timeout=30))
    assert answer.partial_success.rejected_spans == 1
    assert "trace id" in answer.partial_success.error_message


# --- without grpcio ----------------------------------------------------------------------------


def test_without_grpcio_the_error_names_the_extra(tmp_path, monkeypatch):
    from trubrics_otel.receive.grpc import GrpcUnavailable

    monkeypatch.setitem(__import__("sys").modules, "grpc", None)  # as if not installed
    with pytest.raises(GrpcUnavailable, match=re.escape(install_command("grpc"))):
        LocalServer(tmp_path / "e.sqlite3", grpc_port=0).bind()


@pytest.mark.parametrize("asked", [False, True], ids=["default", "--grpc-port given"])
def test_serve_without_grpcio_says_so_once_and_keeps_http(tmp_path, asked):
    """Without the extra, the default gRPC listener is simply off (the banner says how to get it);
    a WARNING only when --grpc-port asked for it."""
    import signal
    import subprocess
    import sys

    import requests

    argv = ['serve', '--port', '0', '--db', str(tmp_path / 'e.sqlite3')] + (['--grpc-port', '0'] if asked else [])
    # Ctrl-C is a KeyboardInterrupt even when pytest runs where SIGINT is ignored (a background job)
    hide_grpc = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "sys.modules['grpc'] = None; from trubrics_otel.cli import main; "
                 f"sys.exit(main({argv!r}))")
    child = subprocess.Popen([sys.executable, "-c", hide_grpc], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        banner = [child.stdout.readline() for _ in range(5)]
        url = banner[0].split()[3]
        assert requests.post(f"{url}/v1/traces", data=good_body(1), timeout=10,
                             headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    finally:
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # say what it was doing rather than only "timed out"
            child.kill()
            out, err = child.communicate()
            pytest.fail(f"serve did not stop on Ctrl-C:\n{out}\n{err}")
    assert child.returncode == 0
    (banner,) = [line for line in banner if "OTLP/gRPC" in line]
    assert f"off ({install_command('grpc')} to receive it)" in banner
    warnings = [line for line in err.splitlines() if "grpc" in line.lower()]
    if asked:
        (line,) = warnings
        assert " WARNING " in line and install_command("grpc") in line
    else:
        assert warnings == []


@pytest.mark.parametrize("asked", [False, True], ids=["default", "--grpc-listen given"])
def test_bridge_without_grpcio_says_so_once_and_keeps_http(endpoint, asked):
    import subprocess
    import sys

    import requests
    from rotel_collector import free_port

    port = free_port()
    argv = ["bridge", "--listen", f"127.0.0.1:{port}", "--api-key", API_KEY, "--host", endpoint.url]
    argv += ["--grpc-listen", "127.0.0.1:0"] if asked else []
    hide_grpc = ("import sys; sys.modules['grpc'] = None; from trubrics_otel.cli import main; "
                 f"sys.exit(main({argv!r}))")
    child = subprocess.Popen([sys.executable, "-c", hide_grpc], stderr=subprocess.PIPE, text=True)
    try:
        lines = [child.stderr.readline() for _ in range(2)]  # the warning, then "listening"
        assert requests.post(f"http://127.0.0.1:{port}/v1/traces", data=good_body(1), timeout=10,
                             headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    finally:
        child.terminate()
        child.communicate(timeout=15)
    assert child.returncode == 0 and endpoint.count() == 1
    assert install_command("grpc") in lines[0] and "OTLP/HTTP only" in lines[0]
    assert (" WARNING " in lines[0]) == asked  # not asked for: said at INFO, no warning
    assert "listening" in lines[1] and "gRPC" not in lines[1]
