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
``GET /``, ``GET /api/...``     the page and the read API it uses: see :mod:`.read_api`
=============================  =================================================================

Ingestion answers like a FastAPI app: 401 without a key (or with the wrong one when
``api_key`` is set), 411 without ``Content-Length``, 413 over ``max_body_bytes``, 422
with a ``detail`` list of ``{index, loc, msg}`` for a body that is not a JSON array or
for invalid events. **Valid events of a batch are stored even when others in it are
invalid**: the answer is then 422 (the bad ones need fixing; the exporter does not
retry a 422) and says how many were stored. An all-valid batch gets 200 with
``{"stored": n, "duplicates": m}``; a retried batch is counted as duplicates, not stored
twice. The read API needs no key on loopback (the default, 127.0.0.1); bound elsewhere it
needs ``api_key``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import zlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trubrics_otel.translate.encoder import encode_spans
from trubrics_otel.translate.traces import TraceMemory
from trubrics_otel.receive.otlp import decode_request
from trubrics_otel.server import read_api
from trubrics_otel.server.store import DEFAULT_SESSION_TIMEOUT_S, Store
from trubrics_otel.server.validation import EVENT, LLM_EVENT, validate_batch, validate_event

DEFAULT_PORT = 8787
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

_POLL_S = 0.05  # how soon stop() is noticed by a background server
_INGESTION = {"publish_events": EVENT, "publish_llm_events": LLM_EVENT}
_DRAIN_LIMIT_FACTOR = 8
"""An oversized body up to this many times the limit is read and discarded, so the client
sees the 413 instead of a reset connection; anything bigger is cut off."""


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
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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
        session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
        logger: logging.Logger | None = None,
        read_needs_key: bool | None = None,
    ) -> None:
        """``read_needs_key``: whether the read API needs ``api_key``; by default, when
        ``host`` is not a loopback address."""
        self.store = db if isinstance(db, Store) else Store(db, session_timeout_s=session_timeout_s)
        self.host = host
        self.port = port
        self._api_key = api_key.encode("utf-8") if api_key else None
        self.max_body_bytes = max_body_bytes
        self.session_timeout_s = session_timeout_s
        self.logger = logger or logging.getLogger("trubrics.server")
        self._traces = TraceMemory()  # ancestors' users and sent calls, across OTLP requests
        self._encode_lock = threading.Lock()
        self._reads = read_api.ReadAPI(self.store, session_timeout_s=session_timeout_s,
                                       api_key=self._api_key,
            needs_key=read_needs_key if read_needs_key is not None else not read_api.is_loopback(host))
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LocalServer(url={self.url!r}, db={str(self.store.path)!r})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------

    def bind(self) -> LocalServer:
        if self._httpd is None:
            self.store.count()  # create the database now: a bad path fails here, not later
            self._httpd = _HTTPServer((self.host, self.port), _handler_for(self))
            self.port = self._httpd.server_address[1]
        return self

    def start(self) -> LocalServer:
        """Serve on a background thread; returns once the port is listening."""
        self.bind()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(_POLL_S,),  # type: ignore[union-attr]
                name="trubrics-local-server", daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until ``stop()`` or Ctrl-C (which propagates, after a clean stop)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        httpd.server_close()

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

    def ingest(self, name: str, body: bytes) -> Response:
        try:
            parsed = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response(422, {"detail": [{"index": None, "loc": ["body"], "msg": f"invalid JSON: {exc}"}]})
        good, errors = validate_batch(parsed, _INGESTION[name])
        if name == "publish_events":
            stored, duplicates = self.store.insert(good, ())
        else:
            stored, duplicates = self.store.insert((), good)
        if errors:
            self.logger.warning(
                "/%s: %d invalid events rejected (first: %s), %d stored",
                name, len({e["index"] for e in errors}), errors[0]["msg"], stored,
            )
            return Response(422, {"detail": errors, "stored": stored, "duplicates": duplicates})
        return Response(200, {"stored": stored, "duplicates": duplicates})

    def ingest_otlp(self, body: bytes, content_type: str) -> Response:
        """OTLP/HTTP traces → the same encoder the exporter uses → the store."""
        try:
            spans = decode_request(body, content_type)
        except Exception as exc:  # a malformed request, whatever the decoder raises
            return Response(400, {"detail": f"invalid OTLP request: {exc}"})
        with self._encode_lock:
            encoded = encode_spans(spans, memory=self._traces)
        events = [e for e, errors in (validate_event(x, EVENT) for x in encoded.events) if not errors]
        llm = [e for e, errors in (validate_event(x, LLM_EVENT) for x in encoded.llm_events) if not errors]
        skipped = len(encoded.events) + len(encoded.llm_events) - len(events) - len(llm)
        if skipped:
            self.logger.warning("/v1/traces: %d encoded events were invalid and not stored", skipped)
        self.store.insert(events, llm)
        if "json" in content_type:
            return Response(200, {})
        return Response(200, b"", "application/x-protobuf")

    def query(self, path: str, params: Mapping[str, str], api_key: str | None = None) -> Response:
        """The page and the read API (:mod:`.read_api`); ``api_key``: the request's ``x-api-key``."""
        status, body, content_type, headers = self._reads.handle(path, params, api_key)
        return Response(status, body, content_type, headers)


BadQuery = read_api.BadQuery


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    logger = server.logger

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "trubrics-otel"
        timeout = 120  # idle keep-alive connections are closed after this
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path.rstrip("/")
            name = path.rsplit("/", 1)[-1]
            is_otlp = path == "/v1/traces"
            if name not in _INGESTION and not is_otlp:
                self._discard_body()
                return self._send(Response(404, {"detail": "Not Found"}))
            # OTLP exporters send no key by default: there, one is needed only when configured
            if (not is_otlp or server.requires_key) and not server.authorised(self.headers.get("x-api-key")):
                self._discard_body()
                return self._send(Response(401, {"detail": "Missing or invalid API key (x-api-key header)"}))
            body = self._read_body()
            if isinstance(body, Response):
                return self._send(body)
            try:
                if is_otlp:
                    response = server.ingest_otlp(body, self.headers.get("Content-Type", ""))
                else:
                    response = server.ingest(name, body)
            except Exception:
                logger.exception("Storing a batch at %s failed", path)
                response = Response(500, {"detail": "internal error while storing events"})
            self._send(response)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                response = server.query(parts.path, params, self.headers.get("x-api-key"))
            except BadQuery as exc:
                response = Response(400, {"detail": str(exc)})
            except Exception:
                logger.exception("Query %s failed", parts.path)
                response = Response(500, {"detail": "internal error"})
            self._send(response)

        def _read_body(self) -> bytes | Response:
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                self.close_connection = True
                return Response(411, {"detail": "Content-Length required"})
            try:
                length = int(length_text)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                return Response(400, {"detail": "invalid Content-Length"})
            if length > server.max_body_bytes:
                self._discard_body()
                return Response(413, {"detail": f"body over {server.max_body_bytes} bytes"})
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                try:
                    body = _gunzip(body, server.max_body_bytes)
                except ValueError as exc:
                    return Response(413, {"detail": str(exc)})
                except (OSError, EOFError, zlib.error):
                    return Response(400, {"detail": "invalid gzip body"})
            return body

        def _discard_body(self) -> None:
            """Read an unwanted body so the client gets our answer, up to a bound."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length > server.max_body_bytes * _DRAIN_LIMIT_FACTOR:
                self.close_connection = True
                return
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)

        def _send(self, response: Response) -> None:
            payload = response.payload()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(f"decompressed body over {limit} bytes")
    return out
