"""Slow and greedy clients against the HTTP layer both servers share (issue 25, case 7).

Real sockets to 127.0.0.1: hundreds of connections trickling their headers, requests that
never finish, and more uploads at once than the buffering budget. Every test is bounded in
time; the one bound on a read (10 s while 600 connections trickle) is a functional check:
without shedding, that read waits until the tricklers give up (~90 s).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from conftest import API_KEY
from test_bridge import assert_serves

from trubrics_otel.receive.bridge import MAX_CONCURRENT, Bridge
from trubrics_otel.receive.http import MAX_CONNECTIONS
from trubrics_otel.server import LocalServer

CAP = 1 << 20


@pytest.fixture
def bridge(endpoint):
    with Bridge(host=endpoint.url, api_key=API_KEY, listen="127.0.0.1:0", max_body=CAP, timeout=1.0,
                client_timeout=1) as running:
        yield running


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def closed_within(conn: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``conn`` (reading whatever it answers) within ``seconds``."""
    conn.settimeout(seconds)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset: closed as well
        pass
    return True


class Tricklers:
    """``n`` connections each sending one more header line every ``every`` s, never finishing."""

    def __init__(self, port: int, n: int, every: float = 1.0) -> None:
        self.sockets = []
        for _ in range(n):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.setblocking(False)
            self._send(conn, b"GET /api/stats HTTP/1.1\r\nHost: x\r\n")
            self.sockets.append(conn)
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        try:
            conn.send(data)
        except OSError:  # shed by the server: fine, it keeps trickling elsewhere
            pass

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            for conn in self.sockets:
                self._send(conn, b"X-Slow: 1\r\n")

    def __enter__(self) -> Tricklers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.sockets:
            conn.close()


def test_600_trickling_connections_do_not_keep_a_read_waiting(tmp_path):
    assert MAX_CONNECTIONS < 600
    with LocalServer(tmp_path / "e.sqlite3") as server, Tricklers(server.port, 600):
        started = time.monotonic()
        try:
            response = requests.get(f"{server.url}/api/stats", timeout=10)
        except requests.Timeout:
            pytest.fail("a read waited over 10 s behind trickling connections")
        assert response.status_code == 200
        assert time.monotonic() - started < 10


def test_headers_trickled_past_their_deadline_are_cut_off(bridge, endpoint):
    """A header line every 0.3 s keeps a connection 'active' for ever; its deadline closes it."""
    with Tricklers(port_of(bridge.url), 1, every=0.3) as trickler:
        assert closed_within(trickler.sockets[0], 8)
    assert_serves(bridge, endpoint)


def test_a_body_trickled_past_its_deadline_is_cut_off(bridge, endpoint):
    conn = socket.create_connection(("127.0.0.1", port_of(bridge.url)), timeout=5)
    with conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        deadline = time.monotonic() + 8
        conn.settimeout(0.3)
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                conn.send(b"\0")  # one byte at a time: always active, never done
                closed = conn.recv(4096) == b""
            except TimeoutError:
                pass
            except OSError:
                closed = True
        assert closed, "a body trickled for 8 s was still being waited for"
    assert_serves(bridge, endpoint)


def test_uploads_held_at_once_are_bounded(bridge, endpoint):
    """Past ``(threads + 1) * max_body`` bytes of uploads in flight, a new one gets 503 with
    Retry-After from its headers, instead of its body being buffered (to memory or /tmp)."""
    budget = (MAX_CONCURRENT + 1) * CAP
    size = CAP - 1
    head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: %d\r\n\r\n" % size)
    held = []
    try:
        for _ in range(budget // size):  # each sends its headers and half its body, then stalls
            conn = socket.create_connection(("127.0.0.1", port_of(bridge.url)), timeout=5)
            conn.sendall(head + b"\0" * (size // 2))
            held.append(conn)
        time.sleep(0.2)
        one_more = socket.create_connection(("127.0.0.1", port_of(bridge.url)), timeout=5)
        with one_more:
            one_more.sendall(head)
            try:
                answer = one_more.recv(4096)
            except TimeoutError:
                pytest.fail("an upload past the buffering budget was accepted")
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.3)  # the held uploads' connections are closed: the budget is free again
    assert_serves(bridge, endpoint)
