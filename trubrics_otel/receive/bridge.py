"""OTLP/HTTP trace receiver that forwards Trubrics events: run it next to a Collector.

The Collector (or any OTLP exporter) posts ``/v1/traces`` to the bridge; the bridge decodes
the spans (:mod:`~trubrics_otel.receive.otlp`), turns them into events with the same encoder as the
in-process exporter, sends them to the Trubrics ingestion API, and only then answers 200::

    trubrics-otel bridge --listen 127.0.0.1:4319          # TRUBRICS_API_KEY, TRUBRICS_HOST

    with Bridge(host="http://127.0.0.1:8000", api_key="...", listen="127.0.0.1:0") as bridge:
        bridge.url        # http://127.0.0.1:<port>; POST /v1/traces, GET /healthz

Answers follow the OTLP/HTTP specification, so the Collector's retry and sending queue do
the buffering: 200 with an ``ExportTraceServiceResponse`` (``partial_success`` counts spans
that were not valid OTLP); 400 for an undecodable body; 413 past the size limit; 415 for
an unknown content type or encoding; 401 without an API key; 503 (429 when Trubrics said
429) with ``Retry-After`` while Trubrics is failing (or while more than
:data:`MAX_CONCURRENT` requests are in hand). Events Trubrics refuses for good (a 422) are
counted in ``partial_success`` rather than retried. Events Trubrics already accepted are
remembered by their ``$trace_id``/``$span_id``, so the retried request does not send them
twice. Spans that are neither product events nor LLM calls (HTTP, database…) are simply
not forwarded.

Configuration, by argument or else environment variable:

===========  ========================  ==============================================
argument     environment               default
===========  ========================  ==============================================
listen       TRUBRICS_BRIDGE_LISTEN    127.0.0.1:4319
host         TRUBRICS_HOST             https://app.trubrics.com/api/ingestion
api_key      TRUBRICS_API_KEY          none: each request's ``x-api-key`` is passed on
max_body     TRUBRICS_BRIDGE_MAX_BODY  32 MiB, on the wire and once decompressed
timeout      TRUBRICS_BRIDGE_TIMEOUT   3 s of trying Trubrics before answering 503
===========  ========================  ==============================================
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel import settings
from trubrics_otel.deliver.transport import (
    EVENTS_PATH,
    LLM_EVENTS_PATH,
    SendResult,
    Transport,
)
from trubrics_otel.receive import otlp
from trubrics_otel.settings import DEFAULT_HOST
from trubrics_otel.translate.encoder import Event, encode_spans
from trubrics_otel.translate.traces import TraceMemory

DEFAULT_LISTEN = "127.0.0.1:4319"
DEFAULT_MAX_BODY = settings.BRIDGE_MAX_BODY.default
DEFAULT_TIMEOUT_S = settings.BRIDGE_TIMEOUT.default
RETRY_AFTER_S = 5
TRACES_PATH = "/v1/traces"
MAX_TRANSPORTS = 16  # distinct passed-through API keys kept warm
REMEMBERED_EVENTS = 200_000  # delivered event ids kept to skip on a retried request
MAX_CONCURRENT = 8  # requests decoded and forwarded at once: bounds memory under a flood
_DRAIN_SECONDS = 2.0  # how long an over-size upload is read and discarded before closing

@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = otlp.PROTOBUF
    headers: dict[str, str] = field(default_factory=dict)


class Bridge:
    def __init__(
        self,
        host: str | None = None,
        api_key: str | None = None,
        *,
        listen: str | None = None,
        max_body: int | None = None,
        timeout: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("trubrics.bridge")
        self.host = settings.read(settings.HOST, host)
        self._api_key = settings.read(settings.API_KEY, api_key) or None
        self._listen = settings.address(listen) if listen else settings.read(settings.BRIDGE_LISTEN)
        self.max_body = int(settings.read(settings.BRIDGE_MAX_BODY, max_body))
        self.timeout = float(settings.read(settings.BRIDGE_TIMEOUT, timeout))
        self._transports: collections.OrderedDict[str, Transport] = collections.OrderedDict()
        self._delivered: collections.OrderedDict[tuple[str, str, str], None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._counts = collections.Counter[str]()
        self._traces = TraceMemory()  # users of ancestors and calls sent, across requests
        self._encode_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never the key
        return f"Bridge(host={self.host!r}, listen={self.url if self._server else self._listen!r})"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Bridge:
        self._server = _Server(self._listen, _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="trubrics-bridge", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
        for transport in transports:
            transport.close()

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the bridge is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    # --- one export request ----------------------------------------------------------

    def export(
        self, body: bytes, content_type: str | None, content_encoding: str | None = None,
        api_key: str | None = None,
    ) -> Answer:
        """Decode, encode, forward; the answer the OTLP client should get."""
        as_json = otlp.media_type(content_type) == otlp.JSON
        self._count("requests")
        try:
            decoded = otlp.decode(
                otlp.decompress(body, content_encoding, self.max_body), content_type
            )
        except otlp.PayloadTooLarge as exc:
            return self._refuse(413, str(exc), as_json)
        except otlp.UnsupportedMediaType as exc:
            return self._refuse(415, str(exc), as_json)
        except otlp.OtlpDecodeError as exc:
            return self._refuse(400, str(exc), as_json)
        key = self._api_key or api_key
        if not key:
            return self._refuse(401, "no Trubrics API key: set TRUBRICS_API_KEY on the bridge "
                                     "or send an x-api-key header", as_json)
        with self._encode_lock:  # one batch at a time through the trace memory
            encoded = encode_spans(decoded.spans, memory=self._traces)
        self._count("merged_duplicates", encoded.merged_duplicates)
        problems = decoded.rejected + encoded.errors
        rejected = len(problems)
        self._count("spans", len(decoded.spans))
        self._count("skipped_spans", encoded.skipped)
        for message in problems[:5]:
            self._logger.warning("Rejected a span: %s", message)
        deadline = time.monotonic() + self.timeout
        for path, events in ((EVENTS_PATH, encoded.events), (LLM_EVENTS_PATH, encoded.llm_events)):
            delivery = self._forward(key, path, events, deadline)
            if delivery.ok:
                continue
            if delivery.retryable or delivery.status in (401, 403):
                return self._upstream_failed(delivery, as_json)
            # Refused for good (e.g. 422): retrying cannot help; tell the sender, don't retry.
            rejected += delivery.rejected
            problems.append(f"Trubrics refused {delivery.rejected} events at /{path} "
                            f"(HTTP {delivery.status}): {delivery.detail}")
        self._count("rejected_spans", rejected)
        self._count("accepted")
        message = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return Answer(200, otlp.response_body(rejected, message, as_json=as_json),
                      otlp.JSON if as_json else otlp.PROTOBUF)

    def _forward(self, key: str, path: str, events: list[Event], deadline: float) -> SendResult:
        """Send what was not delivered before, and remember what is now."""
        with self._lock:
            todo = [e for e in events if _identity(key, path, e) not in self._delivered]
        self._count("duplicates_skipped", len(events) - len(todo))
        if not todo:
            return SendResult(ok=True)
        delivery = self._transport_send(key, path, todo, deadline)
        # Sent, or refused for good; a refused key is not "done": the sender may come back.
        done = todo[: len(todo) - len(delivery.pending)] if delivery.status not in (401, 403) else []
        with self._lock:
            for event in done:
                self._delivered[_identity(key, path, event)] = None
            while len(self._delivered) > REMEMBERED_EVENTS:
                self._delivered.popitem(last=False)
            self._counts["events_sent"] += delivery.sent
            self._counts["events_rejected_upstream"] += delivery.rejected
        return delivery

    def _upstream_failed(self, delivery: SendResult, as_json: bool) -> Answer:
        if delivery.status in (401, 403):
            return self._refuse(delivery.status, f"Trubrics refused the API key: {delivery.detail}", as_json)
        status = 429 if delivery.status == 429 else 503
        self._count(f"answered_{status}")
        self._logger.warning(
            "Trubrics is failing (%s); answered %d so the sender retries later.",
            delivery.detail or delivery.status, status,
        )
        answer = self._refuse(status, f"Trubrics is unavailable: {delivery.detail}", as_json, log=False)
        answer.headers["Retry-After"] = str(RETRY_AFTER_S)
        return answer

    def _refuse(self, status: int, message: str, as_json: bool, *, log: bool = True) -> Answer:
        if log:
            self._count(f"answered_{status}")
            self._logger.error("Answered %d to an OTLP request: %s", status, message)
        return Answer(status, otlp.status_body(status, message, as_json=as_json),
                      otlp.JSON if as_json else otlp.PROTOBUF)

    def _transport_send(self, key: str, path: str, events: list[Event], deadline: float) -> SendResult:
        with self._lock:
            transport = self._transports.pop(key, None)
            if transport is None:
                transport = Transport(self.host, key, timeout=self.timeout, logger=self._logger)
            self._transports[key] = transport  # most recently used last
            evicted = []
            while len(self._transports) > MAX_TRANSPORTS:
                evicted.append(self._transports.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return transport.send(path, events, deadline=deadline)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n


def _identity(key: str, path: str, event: Event) -> tuple[str, str, str]:
    properties = event.get("properties") or {}
    return (key, path, f"{properties.get(sc.PROP_TRACE_ID)}/{properties.get(sc.PROP_SPAN_ID)}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(bridge: Bridge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "trubrics-otel-bridge"
        sys_version = ""
        disable_nagle_algorithm = True
        timeout = 60  # an idle or stalled client does not hold a thread forever

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] != "/healthz":
                return self._answer(Answer(404, b'{"detail":"Not Found"}', otlp.JSON))
            body = json.dumps({"status": "ok", **bridge.stats()}).encode()
            self._answer(Answer(200, body, otlp.JSON))

        def do_POST(self) -> None:  # noqa: N802
            as_json = otlp.media_type(self.headers.get("Content-Type")) == otlp.JSON
            if self.path.split("?", 1)[0] != TRACES_PATH:
                self._discard_body()
                return self._answer(bridge._refuse(404, f"only {TRACES_PATH} is served here", as_json))
            try:
                length = int(self.headers.get("Content-Length", ""))
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                return self._answer(bridge._refuse(411, "a Content-Length is required", as_json))
            if length > bridge.max_body:
                answer = bridge._refuse(
                    413, f"body of {length} bytes exceeds the {bridge.max_body}-byte limit", as_json
                )
                return self._answer_and_drain(answer, length)
            if not bridge._slots.acquire(timeout=1.0):
                answer = bridge._refuse(503, "the bridge is busy", as_json)
                answer.headers["Retry-After"] = "1"
                return self._answer_and_drain(answer, length)
            try:
                body = self.rfile.read(length)
                if len(body) < length:  # the client went away mid-body
                    self.close_connection = True
                    return
                answer = bridge.export(
                    body, self.headers.get("Content-Type"), self.headers.get("Content-Encoding"),
                    self.headers.get("x-api-key"),
                )
            except Exception:  # a bug of ours: say so, and keep serving
                bridge._logger.exception("The bridge failed on an OTLP request")
                answer = bridge._refuse(500, "internal error in the bridge", as_json, log=False)
            finally:
                bridge._slots.release()
            self._answer(answer)

        def handle_expect_100(self) -> bool:
            """Refuse an over-size upload before the client sends it."""
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = 0
            if length > bridge.max_body:
                self.close_connection = True
                self._answer(bridge._refuse(413, f"body of {length} bytes is over the limit", False))
                return False
            return super().handle_expect_100()

        def _answer(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()

        def _answer_and_drain(self, answer: Answer, length: int) -> None:
            """Answer now, then read (bounded in time) what the client still sends and close:
            closing on unread data would reset the connection before the client reads the 413."""
            self.close_connection = True
            self._answer(answer)
            self.connection.settimeout(0.5)
            end = time.monotonic() + _DRAIN_SECONDS
            try:
                while length > 0 and time.monotonic() < end:
                    chunk = self.rfile.read1(min(length, 1 << 16))  # type: ignore[attr-defined]
                    if not chunk:
                        break
                    length -= len(chunk)
            except OSError:
                pass

        def _discard_body(self) -> None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = 0
            if 0 < length <= bridge.max_body:
                self.rfile.read(length)
            elif length:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # access logs would be noise; problems are logged by the bridge

    return Handler


# --- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", help=f"host:port to listen on (TRUBRICS_BRIDGE_LISTEN; {DEFAULT_LISTEN})")
    parser.add_argument("--host", help=f"Trubrics ingestion URL (TRUBRICS_HOST; {DEFAULT_HOST})")
    parser.add_argument(
        "--api-key",
        help="Trubrics API key (better: TRUBRICS_API_KEY); without one, each request's x-api-key is used",
    )
    parser.add_argument("--max-body", type=int, help="largest request in bytes, also once "
                        f"decompressed (TRUBRICS_BRIDGE_MAX_BODY; {DEFAULT_MAX_BODY})")
    parser.add_argument("--timeout", type=float, help="seconds of trying Trubrics before answering "
                        f"503 (TRUBRICS_BRIDGE_TIMEOUT; {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--log-level", default="INFO", help="INFO by default")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("trubrics")
    logger.setLevel(str(args.log_level).upper())
    try:
        bridge = Bridge(args.host, args.api_key, listen=args.listen, max_body=args.max_body,
                        timeout=args.timeout)
    except ValueError as exc:
        logger.error("Bad bridge setting: %s", exc)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        bridge.start()
    except OSError as exc:
        logger.error("Cannot listen on %s: %s", args.listen or DEFAULT_LISTEN, exc)
        return 1
    logger.info("Bridge listening on %s%s, forwarding to %s", bridge.url, TRACES_PATH, bridge.host)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    bridge.stop()
    logger.info("Bridge stopped: %s", bridge.stats())
    return 0

