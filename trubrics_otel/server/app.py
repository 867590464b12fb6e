"""A local Trubrics ingestion API: SQLite storage, a JSON query API and a page.

::

    from trubrics_otel.server import LocalServer

    with LocalServer("events.sqlite3") as server:        # port 0: an ephemeral port
        trubrics = Trubrics(api_key="local-dev-key", host=server.url)
        ...
        server.store.threads()

Routes (all on one port, stdlib ``http.server`` only):

=============================  =================================================================
``POST /publish_events``       Trubrics ingestion API (also under any prefix, e.g.
``POST /publish_llm_events``   ``/api/ingestion/publish_events``); needs a non-empty ``x-api-key``
``POST /v1/traces``            OTLP/HTTP traces (protobuf or JSON), stored as Trubrics events
``POST /v1/metrics|logs``      answered OK and dropped, so an app exporting every signal logs no error
``GET /``, ``GET /api/...``     the page and the read API it uses: see :mod:`.read_api`
gRPC ``TraceService/Export``   on ``grpc_port``; gRPC metrics and logs are answered OK and dropped
=============================  =================================================================

Ingestion answers like a FastAPI app: 401 without a key (or with the wrong one when
``api_key`` is set), 411 without ``Content-Length``, 413 over ``max_body_bytes``, 422
with a ``detail`` list of ``{index, loc, msg}`` for a body that is not a JSON array or
for invalid events. **Valid events of a batch are stored even when others in it are
invalid**: the answer is then 422 (the bad ones need fixing; the exporter does not
retry a 422) and says how many were stored. An all-valid batch gets 200 with
``{"stored": n, "duplicates": m}``; a retried batch is counted as duplicates, not stored
twice.

Who may write and read: on a loopback address (the default, 127.0.0.1) the ingestion API
takes any non-empty ``x-api-key``, OTLP needs none, and the read API is open. **Bound
anywhere else the server needs ``api_key`` (``serve --api-key``), or it refuses to start**,
and then every write and read (ingestion, OTLP/HTTP, OTLP/gRPC, the read API) must present
that key: ``x-api-key: <key>`` (header or gRPC metadata), ``Authorization: Bearer <key>``, or
``Authorization: Basic`` with the key as password. A write is refused (401) from its headers,
before its body is read.
OTLP spans pass the same redaction :class:`~trubrics_otel.translate.redaction.Policy` as the
in-process exporter's (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, size limits).
HTTP framing (Content-Length or chunked, gzip, keep-alive, slow clients) is
:mod:`trubrics_otel.receive.http`'s.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

from trubrics_otel import settings
from trubrics_otel.receive import langfuse, otlp
from trubrics_otel.receive.http import HttpReceiver
from trubrics_otel.receive.request import Reply, Request, presented_keys
from trubrics_otel.server import read_api
from trubrics_otel.server.ingest import ROUTES, Intake
from trubrics_otel.server.store import DEFAULT_SESSION_TIMEOUT_S, Store, StoreUnavailable
from trubrics_otel.translate.redaction import Policy

RETRY_AFTER_S = 1
"""Retry-After of a 503 while the database is down: clients back off from there."""

DEFAULT_PORT = 8787
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_GRPC_PORT = 4317  # the OTLP default: an app with all-default OTLP settings lands here


class Response:
    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int, body: Any = None, content_type: str = "application/json",
                 headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return read_api.strict_json(self.body).encode("utf-8")


class LocalServer:
    """The server as an object: start in-process (tests, quickstart) or ``serve_forever``."""

    def __init__(
        self,
        db: str | os.PathLike[str] | Store | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        session_timeout_s: float | None = DEFAULT_SESSION_TIMEOUT_S,
        logger: logging.Logger | None = None,
        grpc_port: int | None = None,
        policy: Policy | None = None,
        read_needs_key: bool | None = None,
        listen_socket: socket.socket | None = None,
    ) -> None:
        """``read_needs_key``: whether the read API needs ``api_key``; by default, when
        ``host`` is not a loopback address. Off loopback without ``api_key``: ``ValueError``.
        ``listen_socket``: one already listening, shared by several worker processes (``serve
        --workers``, :mod:`.workers`), instead of binding ``host:port``. ``session_timeout_s``:
        the timeout the store keeps sessions for, every reader's (None: the store's own)."""
        local = settings.loopback(host)  # a *.localhost name is resolved: once
        if not api_key and not local:
            raise ValueError(f"{host} is not a loopback address: anyone could write and read "
                             "there, so give an API key (serve --api-key)")
        self.store = db if isinstance(db, Store) else Store(db, session_timeout_s=session_timeout_s, writer=True)
        self.host = host
        self.port = port
        self._listen_socket = listen_socket
        self._api_key = api_key.encode("utf-8") if api_key else None
        self.max_body_bytes = max_body_bytes
        self.session_timeout_s = session_timeout_s
        self.logger = logger or logging.getLogger("trubrics.server")
        self.grpc_port = grpc_port
        """OTLP/gRPC port (0 = any free; None = no gRPC); the bound one once listening."""
        self.intake = Intake(self.store, policy=policy, logger=self.logger)
        """Validation and the write path of the ingestion API and OTLP (:mod:`.ingest`)."""
        self._http: HttpReceiver | None = None
        self._grpc: Any = None  # a receive.grpc.GrpcReceiver
        self._stopped = threading.Event()
        self._reads = read_api.ReadAPI(
            self.store, api_key=self._api_key,
            needs_key=read_needs_key if read_needs_key is not None else not local)

    def __repr__(self) -> str:
        return f"LocalServer(url={self.url!r}, db={self.store.location!r})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------

    def bind(self) -> LocalServer:
        """Listen on every port, or raise ``OSError`` (gRPC without grpcio: ``GrpcUnavailable``)."""
        if self._http is None:
            self.store.count()  # create the database now: a bad path fails here, not later
            self._http = HttpReceiver(
                self._serve_http, self._listen_socket or (self.host, self.port), max_body=self.max_body_bytes,
                refuse=lambda status, message, _: Reply(status, Response(status, {"detail": message}).payload(),
                                                         "application/json"),
                name="trubrics-local-server", logger=self.logger, admit=self._admit,
            )
            self.port = self._http.port
            if self.grpc_port is not None:
                try:
                    from trubrics_otel.receive.grpc import GrpcReceiver

                    self._grpc = GrpcReceiver(self._export_grpc, (self.host, self.grpc_port),
                                              max_body=self.max_body_bytes, drop_other_signals=True,
                                              logger=self.logger, admit=self._admit_grpc)
                except BaseException:
                    self._http.stop()
                    self._http = None
                    raise
                self.grpc_port = self._grpc.port
        return self

    def start(self) -> LocalServer:
        """Serve on background threads; returns once the ports are listening."""
        self.bind()
        self._stopped.clear()
        if self._grpc is not None:
            self._grpc.start()
        self._http.start()  # type: ignore[union-attr]
        return self

    def serve_forever(self) -> None:
        """Serve until ``stop()`` or Ctrl-C (which propagates, after a clean stop)."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        http, self._http = self._http, None
        grpc, self._grpc = self._grpc, None
        self._stopped.set()
        if grpc is not None:
            grpc.stop()
        if http is not None:
            http.stop()
        self.store.close()  # pooled database connections (PostgreSQL); reopened if used again

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- request handling (called from the handler threads) ---------------------------------

    @property
    def requires_key(self) -> bool:
        """True when only one exact key is accepted."""
        return self._api_key is not None

    def authorised(self, key: str | None) -> bool:
        if not key:
            return False
        return self._api_key is None or hmac.compare_digest(key.encode("utf-8"), self._api_key)

    def _may_write(self, headers: Mapping[str, str], *, otlp_request: bool) -> bool:
        """With ``api_key``, one presented key must be it; without (loopback only), the
        ingestion API wants some key as Trubrics does, and OTLP none (exporters send none)."""
        keys = presented_keys(headers)
        if otlp_request and not self.requires_key:
            return True
        return any(self.authorised(key) for key in keys)
    def ingest(self, name: str, body: bytes) -> Response:
        """The ingestion API: ``name`` is ``publish_events`` or ``publish_llm_events``."""
        return Response(*self.intake.publish(name, body))

    def ingest_otlp(self, body: bytes, content_type: str) -> Response:
        """OTLP traces → the same encoder and policy the exporter uses → the store."""
        return Response(*self.intake.traces(body, content_type))

    def query(self, path: str, params: Mapping[str, str], api_key: str | None = None) -> Response:
        """The page and the read API (:mod:`.read_api`); ``api_key``: the request's ``x-api-key``."""
        status, body, content_type, headers = self._reads.handle(path, params, api_key)
        return Response(status, body, content_type, headers)

    # --- HTTP and gRPC onto the methods above (called from the receivers' threads) -------

    def _serve_http(self, request: Request) -> Reply:
        try:
            if request.method == "POST":
                response = self._post(request)
            elif request.method in ("GET", "HEAD"):
                keys = request.keys()
                key = next((k for k in keys if self.authorised(k)), keys[0] if keys else None)
                response = self.query(request.path, request.query, key)
            else:
                response = Response(405, {"detail": "Method Not Allowed"})
        except BadQuery as exc:
            response = Response(400, {"detail": str(exc)})
        except StoreUnavailable as exc:  # nothing of this request was committed: the client retries
            response = self._unavailable(exc)
        except Exception:
            self.logger.exception("%s %s failed", request.method, request.path)
            response = Response(500, {"detail": "internal error"})
        return Reply(response.status, response.payload(), response.content_type, response.headers)

    def _admit(self, request: Request) -> Reply | None:
        """Before the body is read: a POST to a route we serve, with a key that may write."""
        if request.method != "POST":
            return None
        path = langfuse.traces_path(request.path.rstrip("/"))
        is_otlp = path == "/v1/traces" or path in OTHER_SIGNALS
        if path.rsplit("/", 1)[-1] not in ROUTES and not is_otlp:
            response = Response(404, {"detail": "Not Found"})
        elif not self._may_write(request.headers, otlp_request=is_otlp):
            response = Response(401, {"detail": "Missing or invalid API key (x-api-key header)"})
        else:
            return None
        return Reply(response.status, response.payload(), response.content_type)

    def _post(self, request: Request) -> Response:
        """Routed and authorised by ``_admit`` already (the receiver calls it first)."""
        path = langfuse.traces_path(request.path.rstrip("/"))
        if path == "/v1/traces":
            return self.ingest_otlp(request.body, request.header("content-type"))
        if path in OTHER_SIGNALS:  # an empty Export…ServiceResponse, as gRPC answers them
            as_json = otlp.media_type(request.header("content-type")) == otlp.JSON
            return Response(200, otlp.response_body(as_json=as_json), otlp.JSON if as_json else otlp.PROTOBUF)
        return self.ingest(path.rsplit("/", 1)[-1], request.body)

    def _admit_grpc(self, metadata: Mapping[str, str]) -> Reply | None:
        if self._may_write(metadata, otlp_request=True):
            return None
        return Reply(401, message="Missing or invalid API key (x-api-key metadata)")

    def _export_grpc(self, body: bytes, metadata: Mapping[str, str]) -> Reply:
        """Admitted by ``_admit_grpc`` already (the receiver calls it first)."""
        try:
            response = self.ingest_otlp(body, otlp.PROTOBUF)
        except StoreUnavailable as exc:
            response = self._unavailable(exc)  # UNAVAILABLE: OTLP/gRPC exporters retry it
        detail = response.body.get("detail") if isinstance(response.body, dict) else None
        return Reply(response.status, response.payload() if response.status == 200 else b"",
                     message=str(detail or ""))


    def _unavailable(self, exc: StoreUnavailable) -> Response:
        self.logger.warning("%s; answering 503", exc)
        return Response(503, {"detail": "the database is unavailable; retry later"},
                        headers={"Retry-After": str(RETRY_AFTER_S)})


BadQuery = read_api.BadQuery
OTHER_SIGNALS = ("/v1/metrics", "/v1/logs")  # OTLP/HTTP paths answered OK and dropped
