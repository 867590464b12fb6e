"""OTLP receiver (HTTP and gRPC) that forwards Trubrics events: run it next to a Collector.

The Collector (or any OTLP exporter) sends traces to the bridge; the bridge decodes the
spans (:mod:`~trubrics_otel.receive.otlp`), turns them into events with the same encoder and the
same redaction :class:`~trubrics_otel.translate.redaction.Policy` as the in-process exporter, sends
them to the Trubrics ingestion API, and only then answers::

    trubrics-otel bridge --listen 127.0.0.1:4319 --grpc-listen 127.0.0.1:4320   # TRUBRICS_API_KEY

    with Bridge(host="http://127.0.0.1:8000", api_key="...", listen="127.0.0.1:0",
                grpc_listen="127.0.0.1:0") as bridge:
        bridge.url            # http://127.0.0.1:<port>; POST /v1/traces, GET /healthz
        bridge.grpc_address   # 127.0.0.1:<port>; TraceService/Export

Both protocols share one core, :meth:`Bridge.export`, whose :class:`Answer` follows the
OTLP/HTTP specification (the gRPC receiver maps it to gRPC codes, see
:mod:`~trubrics_otel.receive.grpc`), so the Collector's retry and sending queue do the
buffering: 200 with an ``ExportTraceServiceResponse`` (``partial_success`` counts spans
that were not valid OTLP); 400 for an undecodable body; 413 past the size limit; 415 for
an unknown content type or encoding; 401 without an API key; 503 (429 when Trubrics said
429) with ``Retry-After`` while Trubrics is failing. Events Trubrics refuses for good (a
422) are counted in ``partial_success`` rather than retried. Events Trubrics already
accepted are remembered by their ``$trace_id``/``$span_id``, so the retried request does
not send them twice. Spans that are neither product events nor LLM calls (HTTP,
database…) are simply not forwarded. HTTP framing (chunked bodies, keep-alive,
``Expect: 100-continue``, gzip, stalled clients) is :mod:`~trubrics_otel.receive.http`'s.

Who may send: on loopback (the default), anyone local. Listening on any other address (HTTP
or gRPC), the bridge refuses to start without ``receive_key``; with it, every export must
present that key as ``x-api-key``, ``Authorization: Bearer <key>`` or the password of
``Authorization: Basic`` (gRPC: the same metadata), else 401 / ``UNAUTHENTICATED``, answered
from the headers before the body is read. ``GET /healthz`` (counters only) stays open for
probes. Without ``api_key``, a sender's ``x-api-key`` that is not the receive key is the
Trubrics key passed on (so send the receive key as ``Authorization: Bearer``).

Configuration, by argument or else environment variable:

================  ================================  =============================================
argument          environment                       default
================  ================================  =============================================
listen            TRUBRICS_BRIDGE_LISTEN            127.0.0.1:4319 (OTLP/HTTP)
grpc_listen       TRUBRICS_BRIDGE_GRPC_LISTEN       none (``off``); the command line's: 127.0.0.1:4320
host              TRUBRICS_HOST                     https://app.trubrics.com/api/ingestion
api_key           TRUBRICS_API_KEY                  none: each request's ``x-api-key`` is passed on
receive_key       TRUBRICS_BRIDGE_RECEIVE_KEY       none; **required when listening off loopback**
max_body          TRUBRICS_BRIDGE_MAX_BODY          32 MiB, on the wire and once decompressed
timeout           TRUBRICS_BRIDGE_TIMEOUT           3 s of trying Trubrics before answering 503
client_timeout    TRUBRICS_BRIDGE_CLIENT_TIMEOUT    30 s: an idle or stalled connection is closed
policy            (the exporter's settings)         ``Policy()``: size limits, content capture
attribute_limit   OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT   1024: attributes, events, links kept per span
allow_insecure    TRUBRICS_ALLOW_INSECURE           False: no API key over ``http://`` off loopback
================  ================================  =============================================
"""

from __future__ import annotations

import argparse
import collections
import hmac
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel import cli_args as checks
from trubrics_otel import settings
from trubrics_otel.deliver.exporter import policy_from_settings, price_and_redact
from trubrics_otel.deliver.prices import load_price_table
from trubrics_otel.deliver.transport import (
    EVENTS_PATH,
    LLM_EVENTS_PATH,
    SendResult,
    Transport,
)
from trubrics_otel.receive import langfuse, otlp
from trubrics_otel.receive.http import HttpReceiver
from trubrics_otel.receive.process import give_back_memory, tune_for_server
from trubrics_otel.receive.request import Reply, Request, key_matches
from trubrics_otel.settings import DEFAULT_HOST
from trubrics_otel.translate.encoder import Event, encode_spans
from trubrics_otel.translate.redaction import Policy
from trubrics_otel.translate.traces import TraceMemory

DEFAULT_LISTEN = "127.0.0.1:4319"
DEFAULT_GRPC_LISTEN = "127.0.0.1:4320"  # next to 4319; a Collector on the same host has 4317
DEFAULT_MAX_BODY = settings.BRIDGE_MAX_BODY.default
DEFAULT_TIMEOUT_S = settings.BRIDGE_TIMEOUT.default
DEFAULT_CLIENT_TIMEOUT_S = settings.BRIDGE_CLIENT_TIMEOUT.default
RETRY_AFTER_S = 5
TRACES_PATH = "/v1/traces"
MAX_TRANSPORTS = 16  # distinct passed-through API keys kept warm
REMEMBERED_EVENTS = 200_000  # delivered event ids kept to skip on a retried request
MAX_CONCURRENT = 8  # requests decoded and forwarded at once, per protocol: bounds memory
LARGE_BODY = 1 << 20  # a request this big (as received) is decoded only LARGE_AT_ONCE at a time
LARGE_AT_ONCE = 2  # a 30 MiB protobuf costs ~3x its size while decoded: this bounds the peak

Answer = Reply
"""What one export request should get back, whatever the protocol."""


class Bridge:
    def __init__(
        self,
        host: str | None = None,
        api_key: str | None = None,
        *,
        listen: str | None = None,
        grpc_listen: str | None = None,
        max_body: int | None = None,
        timeout: float | None = None,
        client_timeout: float | None = None,
        policy: Policy | None = None,
        logger: logging.Logger | None = None,
        receive_key: str | None = None,
        attribute_limit: int | None = None,
        allow_insecure: bool | None = None,
    ) -> None:
        """``ValueError`` for a malformed host, a listener off loopback without ``receive_key``,
        or for a plain ``http://`` host off loopback (the API key would cross the network readable)."""
        self._logger = logger or logging.getLogger("trubrics.bridge")
        self.host = settings.read(settings.HOST, host)
        if refusal := settings.host_refusal(self.host, host, "host", allow_insecure):
            raise ValueError(refusal)
        self._api_key = settings.read(settings.API_KEY, api_key) or None
        self._listen = settings.address(listen) if listen else settings.read(settings.BRIDGE_LISTEN)
        grpc = settings.address_or_off(grpc_listen) if grpc_listen else settings.read(settings.BRIDGE_GRPC_LISTEN)
        self._grpc_listen = grpc or None
        key = settings.read(settings.BRIDGE_RECEIVE_KEY, receive_key) or None
        self._receive_key = key.encode("utf-8") if key else None
        exposed = [a for a in (self._listen, self._grpc_listen) if a is not None and not settings.loopback(a[0])]
        if exposed and self._receive_key is None:
            raise ValueError(f"listening on {exposed[0][0]} (not loopback) needs a key senders must present: "
                             "--receive-key or TRUBRICS_BRIDGE_RECEIVE_KEY")
        self.max_body = int(settings.read(settings.BRIDGE_MAX_BODY, max_body))
        self.timeout = float(settings.read(settings.BRIDGE_TIMEOUT, timeout))
        self.client_timeout = float(settings.read(settings.BRIDGE_CLIENT_TIMEOUT, client_timeout))
        self.policy = policy or policy_from_settings(logger=self._logger)
        self.attribute_limit = attribute_limit or settings.received_attribute_limit()
        self._prices = load_price_table()  # custom prices now; the maintained table on first use
        self._transports: collections.OrderedDict[str, Transport] = collections.OrderedDict()
        self._delivered: collections.OrderedDict[tuple[str, str, str], None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._counts = collections.Counter[str]()
        self._http: HttpReceiver | None = None
        self._grpc: Any = None  # a GrpcReceiver, once started
        self._traces = TraceMemory()  # users of ancestors and calls sent, across requests
        self._encode_lock = threading.Lock()
        self._large = threading.BoundedSemaphore(LARGE_AT_ONCE)

    def __repr__(self) -> str:  # never the key
        return f"Bridge(host={self.host!r}, listen={self.url if self._http else self._listen!r})"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Bridge:
        """Listen (HTTP, and gRPC when ``grpc_listen`` is set); an ``OSError`` if a port is taken.

        gRPC needs the ``grpc`` extra: without it, :class:`~trubrics_otel.receive.grpc.GrpcUnavailable`.
        """
        self._http = HttpReceiver(
            self._serve_http, self._listen, max_body=self.max_body, refuse=self._refuse_http,
            threads=MAX_CONCURRENT, client_timeout=self.client_timeout, name="trubrics-bridge",
            logger=self._logger, admit=self._admit,
        )
        try:
            if self._grpc_listen is not None:
                from trubrics_otel.receive.grpc import GrpcReceiver

                self._grpc = GrpcReceiver(self._export_grpc, self._grpc_listen, max_body=self.max_body,
                                          threads=MAX_CONCURRENT, logger=self._logger,
                                          admit=self._admit_grpc).start()
        except BaseException:
            self._http.stop()
            self._http = None
            raise
        self._http.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop()
            self._grpc = None
        if self._http is not None:
            self._http.stop()
            self._http = None
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
        if self._http is None:
            raise RuntimeError("the bridge is not started")
        return self._http.url

    @property
    def grpc_address(self) -> str | None:
        """``host:port`` of the OTLP/gRPC receiver, or None when it is not running."""
        return self._grpc.address if self._grpc is not None else None

    @property
    def requires_key(self) -> bool:
        """Whether senders must present the receive key."""
        return self._receive_key is not None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    # --- one export request ----------------------------------------------------------

    def export(self, body: bytes, content_type: str | None, content_encoding: str | None = None,
               api_key: str | None = None) -> Answer:
        """Decode, encode, forward; the answer the OTLP client should get."""
        self._count("requests")
        if len(body) < LARGE_BODY:
            return self._export(body, content_type, content_encoding, api_key)
        with self._large:
            try:
                return self._export(body, content_type, content_encoding, api_key)
            finally:
                give_back_memory()

    def _export(self, body: bytes, content_type: str | None, content_encoding: str | None,
                api_key: str | None) -> Answer:
        as_json = otlp.media_type(content_type) == otlp.JSON
        try:
            decoded = otlp.decode(otlp.decompress(body, content_encoding, self.max_body), content_type,
                                  self.attribute_limit)
        except otlp.OtlpDecodeError as exc:  # 400, 413 (too large), 415 (unknown type)
            return self._refuse(exc.status, str(exc), as_json)
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
        if decoded.dropped:
            self._count("dropped_attributes", decoded.dropped)
            self._logger.warning("Kept the first %d attributes, events and links of each span: "
                                 "%d more were left out (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT)",
                                 self.attribute_limit, decoded.dropped)
        self._count("skipped_spans", encoded.skipped)
        for message in problems[:5]:
            self._logger.warning("Rejected a span: %s", message)
        events, llm_events = price_and_redact(encoded, self._prices, self.policy)
        deadline = time.monotonic() + self.timeout
        for path, events in ((EVENTS_PATH, events), (LLM_EVENTS_PATH, llm_events)):
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
        identities = [_identity(key, path, e) for e in events]
        with self._lock:
            delivered = self._delivered
            fresh = [i for i, identity in enumerate(identities) if identity not in delivered]
        self._count("duplicates_skipped", len(events) - len(fresh))
        if not fresh:
            return SendResult(ok=True)
        todo = events if len(fresh) == len(events) else [events[i] for i in fresh]
        delivery = self._transport_send(key, path, todo, deadline)
        # Sent, or refused for good; a refused key is not "done": the sender may come back.
        done = len(todo) - len(delivery.pending) if delivery.status not in (401, 403) else 0
        with self._lock:
            for i in fresh[:done]:
                self._delivered[identities[i]] = None
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
        self._logger.warning("Trubrics is failing (%s); answered %d so the sender retries later.",
                             delivery.detail or delivery.status, status)
        answer = self._refuse(status, f"Trubrics is unavailable: {delivery.detail}", as_json, log=False)
        answer.headers["Retry-After"] = str(RETRY_AFTER_S)
        return answer

    def _refuse(self, status: int, message: str, as_json: bool, *, log: bool = True) -> Answer:
        if log:
            self._count(f"answered_{status}")
            self._logger.error("Answered %d to an OTLP request: %s", status, message)
        return Answer(status, otlp.status_body(status, message, as_json=as_json),
                      otlp.JSON if as_json else otlp.PROTOBUF, message=message)

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

    # --- the two protocols onto export() ---------------------------------------------

    def _serve_http(self, request: Request) -> Answer:
        path = langfuse.traces_path(request.path.rstrip("/")) or "/"
        if request.method in ("GET", "HEAD") and path == "/healthz":
            return Answer(200, json.dumps({"status": "ok", **self.stats()}).encode(), otlp.JSON)
        if request.method != "POST" or path != TRACES_PATH:
            return self._refuse_http(404, f"{request.method} {request.path[:200]!r}: only POST {TRACES_PATH} and "
                                     "GET /healthz are served here (a Collector's metrics or logs pipeline?)", request)
        # The receiver already undid Content-Encoding (with the same size cap), and admitted it.
        return self.export(request.body, request.header("content-type"), None, self._passed_on(request.headers))

    def _admit(self, request: Request) -> Answer | None:
        """Before the body is read: an export must carry the receive key when one is set."""
        if request.method != "POST" or self._may_send(request.headers):
            return None
        return self._refuse_http(401, self._WRONG_KEY, request)

    _WRONG_KEY = "missing or wrong key for this bridge (x-api-key or Authorization: Bearer)"

    def _may_send(self, headers: Mapping[str, str]) -> bool:
        return self._receive_key is None or key_matches(self._receive_key, headers)

    def _passed_on(self, headers: Mapping[str, str]) -> str | None:
        """The sender's key (x-api-key, else a Langfuse SDK's secret key) as the Trubrics key,
        unless it is the bridge's receive key."""
        key = langfuse.api_key(headers)
        if key and self._receive_key is not None and hmac.compare_digest(key.encode("utf-8"), self._receive_key):
            return None
        return key

    def _refuse_http(self, status: int, message: str, request: Request) -> Answer:
        return self._refuse(status, message, otlp.media_type(request.header("content-type")) == otlp.JSON)

    def _admit_grpc(self, metadata: Mapping[str, str]) -> Answer | None:
        return None if self._may_send(metadata) else self._refuse(401, self._WRONG_KEY, False)

    def _export_grpc(self, body: bytes, metadata: Mapping[str, str]) -> Answer:
        self._count("grpc_requests")
        return self.export(body, otlp.PROTOBUF, None, self._passed_on(metadata))


def _identity(key: str, path: str, event: Event) -> tuple[str, str, str]:
    properties = event.get("properties") or {}
    return (key, path, f"{properties.get(sc.PROP_TRACE_ID)}/{properties.get(sc.PROP_SPAN_ID)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", type=checks.address,
                        help=f"host:port to listen on (TRUBRICS_BRIDGE_LISTEN; {DEFAULT_LISTEN})")
    parser.add_argument("--grpc-listen", type=checks.address_or_off,
                        help="host:port for OTLP/gRPC, or off (TRUBRICS_BRIDGE_GRPC_LISTEN; "
                        f"{DEFAULT_GRPC_LISTEN}; needs the grpc extra)")
    parser.add_argument("--host", type=checks.http_url, help=f"Trubrics ingestion URL (TRUBRICS_HOST; {DEFAULT_HOST})")
    parser.add_argument(
        "--api-key", type=checks.key,
        help="Trubrics API key (better: TRUBRICS_API_KEY); without one, each request's x-api-key is used",
    )
    parser.add_argument("--receive-key", type=checks.key, help="the key senders must present (x-api-key or Authorization: "
                        "Bearer); required off loopback (better: TRUBRICS_BRIDGE_RECEIVE_KEY)")
    parser.add_argument("--max-body", type=checks.positive_int, help="largest request in bytes, also once "
                        f"decompressed (TRUBRICS_BRIDGE_MAX_BODY; {DEFAULT_MAX_BODY})")
    parser.add_argument("--timeout", type=checks.positive_number, help="seconds of trying Trubrics before answering "
                        f"503 (TRUBRICS_BRIDGE_TIMEOUT; {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--client-timeout", type=checks.positive_number, help="seconds before an idle or stalled "
                        f"connection is closed (TRUBRICS_BRIDGE_CLIENT_TIMEOUT; {DEFAULT_CLIENT_TIMEOUT_S:g})")
    parser.add_argument("--log-level", type=checks.log_level, default="INFO", help="INFO by default")


def run(args: argparse.Namespace) -> int:
    from trubrics_otel.receive import grpc as otlp_grpc

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("trubrics")
    logger.setLevel(args.log_level)
    configured = settings.read(settings.BRIDGE_GRPC_LISTEN)
    grpc_listen = args.grpc_listen or ("off" if configured is False else
                                       f"{configured[0]}:{configured[1]}" if configured else DEFAULT_GRPC_LISTEN)
    no_grpc = grpc_listen != "off" and not otlp_grpc.available()
    try:
        bridge = Bridge(args.host, args.api_key, listen=args.listen, grpc_listen="off" if no_grpc else grpc_listen,
                        max_body=args.max_body, timeout=args.timeout, client_timeout=args.client_timeout,
                        receive_key=args.receive_key)
    except ValueError as exc:  # a bad setting: one line, like a bad argument, before anything is said
        print(f"trubrics-otel bridge: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tune_for_server()  # our own process: see receive/process.py
    try:
        bridge.start()
    except (OSError, OverflowError) as exc:  # one line, as a bad setting: nothing said before it
        print("trubrics-otel bridge: " + checks.cannot_listen(exc, "another bridge running? --listen picks another, "
              "port 0 any free", "in use? --grpc-listen picks another, port 0 any free, off none"), file=sys.stderr)
        return 2
    try:  # from here a Ctrl-C is a stop, even one landing while the banner is written
        if no_grpc:
            asked = args.grpc_listen or configured  # a warning when asked for; the default is quiet
            logger.log(logging.WARNING if asked else logging.INFO, "%s; serving OTLP/HTTP only",
                       otlp_grpc.INSTALL_HINT)
        logger.info("Bridge listening on %s%s%s, forwarding to %s; %s", bridge.url, TRACES_PATH,
                    f" and OTLP/gRPC {bridge.grpc_address}" if bridge.grpc_address else "", bridge.host,
                    "senders must present the receive key (x-api-key or Authorization: Bearer)"
                    if bridge.requires_key else "loopback only, so no key is asked of senders")
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    bridge.stop()
    logger.info("Bridge stopped: %s", bridge.stats() or "nothing received")
    return 0
