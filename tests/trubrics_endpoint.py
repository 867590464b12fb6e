"""A local stand-in for the Trubrics ingestion API, for tests and benchmarks.

It speaks the real wire format on 127.0.0.1 and can be told to misbehave::

    with TrubricsEndpoint() as endpoint:
        endpoint.reply(429, headers={"Retry-After": "1"})   # next request only
        endpoint.fail_for(5.0, status=503)                  # every request for 5 s
        endpoint.go_down_for(5.0)                           # socket closed: connection refused
        endpoint.reply(trickle=0.5)                         # a header line every 0.5 s, forever
        endpoint.reply(body_bytes=512 << 20)                # a 200 with a 512 MiB body, streamed
        endpoint.misbehave(stop_event)                      # random faults until stop_event
        ...
        endpoint.wait_for_events(10)
        endpoint.events("publish_events")                   # what it accepted, in order

Accepted batches are recorded; every request (accepted or not) is in ``requests``.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loopback_server import QuietHandler

PATHS = ("publish_events", "publish_llm_events")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    """Close the connection without answering."""
    trickle: float = 0.0
    """Send the status line, then a header line every ``trickle`` s until stopped."""
    body_bytes: int = 0
    """Answer with this many bytes of body, streamed (never held in memory)."""


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


class TrubricsEndpoint:
    def __init__(self, api_key: str | None = None, port: int = 0) -> None:
        self.api_key = api_key
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._replies: collections.deque[Reply] = collections.deque()
        self._failing_until = 0.0
        self._failing_reply = Reply(503)
        self.batches: dict[str, list[list[dict[str, Any]]]] = {p: [] for p in PATHS}
        self.requests: list[Request] = []
        self.arrived = 0
        """Requests received so far, counted before any delay (a hung one included)."""
        self.body_bytes_sent = 0
        """Bytes of ``body_bytes`` answers the client took before it hung up."""
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> TrubricsEndpoint:
        self._stopped.clear()
        self._server = _Server(("127.0.0.1", self._port), _handler_for(self))
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections, as a crashed server would."""
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> TrubricsEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # --- misbehaviour ----------------------------------------------------------------

    def reply(self, status: int = 200, *, body: Any = None, headers: dict[str, str] | None = None,
              delay: float = 0.0, drop: bool = False, trickle: float = 0.0, body_bytes: int = 0,
              times: int = 1) -> None:
        """Answer the next ``times`` requests this way (then back to 200)."""
        with self._lock:
            for _ in range(times):
                self._replies.append(Reply(status, body, headers or {}, delay, drop, trickle, body_bytes))

    def fail_for(self, seconds: float, status: int = 503, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failing_until = time.monotonic() + seconds
            self._failing_reply = Reply(status, {"detail": "unavailable"}, headers or {})

    def misbehave(self, stop: threading.Event, seed: int = 25) -> None:
        """Until ``stop``: 503s, dropped connections, 429s and slow answers at random (every
        0.2 s a draw), then healthy again. Run it on a thread of its own."""
        import random

        rng = random.Random(seed)
        while not stop.wait(0.2):
            fault = rng.choice(["ok", "ok", "503", "drop", "slow", "429"])
            if fault == "503":
                self.fail_for(0.4, status=503)
            elif fault == "429":
                self.reply(429, headers={"Retry-After": "0.3"})
            elif fault == "drop":
                self.reply(drop=True, times=2)
            elif fault == "slow":
                self.reply(delay=0.6)
        self.heal()

    def heal(self) -> None:
        """Answer every request normally from now on (what is already hung stays hung)."""
        with self._lock:
            self._replies.clear()
            self._failing_until = 0.0

    def go_down_for(self, seconds: float) -> threading.Thread:
        """Close the listening socket (connection refused), then listen again on the same port."""
        self.stop()

        def come_back() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=come_back, daemon=True)
        thread.start()
        return thread

    # --- what arrived ----------------------------------------------------------------

    def events(self, path: str = "publish_events") -> list[dict[str, Any]]:
        with self._lock:
            return [e for batch in self.batches[path] for e in batch]

    def count(self) -> int:
        with self._lock:
            return sum(len(b) for batches in self.batches.values() for b in batches)

    def wait_for_events(self, n: int, timeout: float = 30.0) -> int:
        """Wait (bounded) until ``n`` events were accepted in all; return the count."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                have = sum(len(b) for batches in self.batches.values() for b in batches)
                left = end - time.monotonic()
                if have >= n or left <= 0:
                    return have
                self._changed.wait(min(left, 0.5))

    # --- request handling --------------------------------------------------------------

    def _plan(self) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            if time.monotonic() < self._failing_until:
                return self._failing_reply
        return Reply()

    def wait_for_arrivals(self, n: int, timeout: float = 30.0) -> int:
        """Wait (bounded) until ``n`` requests have arrived, answered or not yet."""
        end = time.monotonic() + timeout
        with self._lock:
            while self.arrived < n and (left := end - time.monotonic()) > 0:
                self._changed.wait(min(left, 0.5))
            return self.arrived

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        with self._lock:
            self.arrived += 1
            self._changed.notify_all()
        plan = self._plan()
        if plan.delay and self._stopped.wait(plan.delay):
            plan = Reply(drop=True)  # stopped meanwhile: the answer never leaves
        name = path.rstrip("/").rsplit("/", 1)[-1]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if plan.status == 200 and not plan.drop:
            key = headers.get("x-api-key")
            if not key or (self.api_key is not None and key != self.api_key):
                plan = Reply(401, {"detail": "Invalid API key"})
            elif name not in PATHS:
                plan = Reply(404, {"detail": "Not Found"})
            elif not isinstance(body, list):
                plan = Reply(422, {"detail": "body must be a JSON array"})
        unanswered = plan.drop or plan.trickle  # never a whole answer: nothing is accepted
        with self._lock:
            self.requests.append(Request(name, headers, body, 0 if unanswered else plan.status))
            if plan.status == 200 and not unanswered and body:
                self.batches[name].append(body)
                self._changed.notify_all()
        return plan


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 refused bursts of concurrent senders' connects


def _handler_for(endpoint: TrubricsEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        wbufsize = 1 << 16  # headers and body leave in one segment (no Nagle/delayed-ACK stall)
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with endpoint._lock:
                endpoint._connections.add(self.connection)

        def finish(self) -> None:
            with endpoint._lock:
                endpoint._connections.discard(self.connection)
            super().finish()

        def do_POST(self) -> None:  # noqa: N802
            raw = self.read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            plan = endpoint._handle(self.path, headers, raw)
            if plan.drop:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if plan.trickle:
                self._trickle(plan.trickle)
                return
            if plan.body_bytes:
                self._stream(plan.status, plan.body_bytes)
                return
            body = json.dumps(plan.body if plan.body is not None else {"status": "ok"}).encode()
            self.send_response(plan.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in plan.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _trickle(self, every: float) -> None:
            """Headers that never end: each line comes before any read timeout would."""
            self.close_connection = True
            try:
                self.connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not endpoint._stopped.wait(every):
                    self.connection.sendall(b"X-Still-Thinking: 1\r\n")
            except OSError:
                pass

        def _stream(self, status: int, size: int) -> None:
            self.close_connection = True
            chunk = bytes(1 << 20)
            try:
                self.connection.sendall(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {size}\r\n\r\n".encode()
                )
                while size > 0 and not endpoint._stopped.is_set():
                    part = chunk[: min(size, len(chunk))]
                    self.connection.sendall(part)
                    size -= len(part)
                    with endpoint._lock:
                        endpoint.body_bytes_sent += len(part)
            except OSError:
                pass

    return Handler
