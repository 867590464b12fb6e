"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpcio.

grpcio is an extra (``pip install -e '.[grpc]'`` from a clone); it is imported when a receiver
is made, and :class:`GrpcUnavailable` names the extra when it is missing. The application
gives one function, the same it answers OTLP/HTTP with::

    def export(body: bytes, metadata: Mapping[str, str]) -> Reply:   # protobuf, already gunzipped
        keys = presented_keys(metadata)     # x-api-key, authorization: Bearer / Basic
        ...
    admit = lambda metadata: None if "x-api-key" in metadata else Reply(401, message="no key")
    with GrpcReceiver(export, ("127.0.0.1", 0), max_body=32 << 20, admit=admit) as receiver:
        receiver.address        # 127.0.0.1:<port>; OTEL_EXPORTER_OTLP_ENDPOINT=http://<address>

and its HTTP-style :class:`~trubrics_otel.receive.request.Reply` becomes a gRPC status as the OTLP
specification asks: 200 → OK with the ``ExportTraceServiceResponse`` (``partial_success``
included); 400 / 415 → ``INVALID_ARGUMENT``; 401 / 403 → ``UNAUTHENTICATED``; 413 →
``RESOURCE_EXHAUSTED``; 429 → ``RESOURCE_EXHAUSTED`` and 503 → ``UNAVAILABLE``, both with a
``google.rpc.RetryInfo`` (from ``Retry-After``) in ``grpc-status-details-bin`` so the sender
retries. gzip is undone by grpcio; a message past ``max_body`` once decompressed is refused
by grpcio itself with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trubrics_otel.extras import install_command
from trubrics_otel.receive.http import DEFAULT_THREADS
from trubrics_otel.receive.request import Reply

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
OTHER_SIGNALS = ("opentelemetry.proto.collector.metrics.v1.MetricsService",
                 "opentelemetry.proto.collector.logs.v1.LogsService")
INSTALL_HINT = f"OTLP/gRPC needs grpcio and googleapis-common-protos: {install_command('grpc')}"

Export = Callable[[bytes, Mapping[str, str]], Reply]
"""``export(body, metadata)``: the request's metadata with lower-case names."""
Admit = Callable[[Mapping[str, str]], "Reply | None"]


class GrpcUnavailable(ImportError):
    """grpcio is not installed; the message says which extra brings it."""


def available() -> bool:
    """Whether grpcio can be imported."""
    try:
        _grpc()
    except GrpcUnavailable:
        return False
    return True


def _grpc() -> Any:
    try:
        import grpc
        from google.rpc import error_details_pb2, status_pb2  # noqa: F401  (the extra's other half)
    except ImportError:
        raise GrpcUnavailable(INSTALL_HINT) from None
    return grpc


class GrpcReceiver:
    """One gRPC port serving ``TraceService/Export`` on a bounded thread pool."""

    def __init__(
        self,
        export: Export,
        listen: tuple[str, int],
        *,
        max_body: int,
        threads: int = DEFAULT_THREADS,
        drop_other_signals: bool = False,
        logger: logging.Logger | None = None,
        admit: Admit | None = None,
    ) -> None:
        """``drop_other_signals``: also answer metrics and logs exports with success and drop
        them, so an app with all-default OTLP settings logs no error for them. ``admit(metadata)``:
        a Reply refuses the call from its metadata, before its message is read."""
        grpc = _grpc()
        self._grpc = grpc
        self._export = export
        self._admit = admit or (lambda metadata: None)
        self._logger = logger or logging.getLogger("trubrics.receive")
        self._routes = {f"/{SERVICE}/Export": grpc.unary_unary_rpc_method_handler(self._handle)}  # bytes
        if drop_other_signals:  # an empty Export…ServiceResponse is b""
            drop = grpc.unary_unary_rpc_method_handler(lambda body, context: b"")
            self._routes.update({f"/{name}/Export": drop for name in OTHER_SIGNALS})
        self._server = grpc.server(
            ThreadPoolExecutor(threads, thread_name_prefix="trubrics-grpc"),
            handlers=[self],  # grpcio asks service() for each call's handler
            # No maximum_concurrent_rpcs: grpcio would answer RESOURCE_EXHAUSTED without
            # RetryInfo, which OTLP senders must not retry. Calls past the busy threads wait.
            options=[
                ("grpc.max_receive_message_length", max_body),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not shared
            ],
        )
        host, port = listen
        _refuse_if_taken(host, port)
        try:
            self.port = self._server.add_insecure_port(f"{_bracketed(host)}:{port}")
        except RuntimeError as exc:  # grpcio's way of saying the bind failed
            raise OSError(f"cannot listen on {host}:{port} for OTLP/gRPC: {exc}") from None
        if not self.port:
            raise OSError(f"cannot listen on {host}:{port} for OTLP/gRPC")
        self.host = host

    @property
    def address(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"

    def start(self) -> GrpcReceiver:
        self._server.start()
        return self

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait(grace + 5)

    def __enter__(self) -> GrpcReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def service(self, call: Any) -> Any:
        """The handler for one call (grpcio's generic-handler protocol), on grpcio's own thread
        as the call arrives: a call ``admit`` refuses is answered without reading its message."""
        handler = self._routes.get(call.method)
        if handler is None:
            return None
        refused = self._admit(_metadata(call.invocation_metadata))
        if refused is None:
            return handler
        code, _ = self._status_of(refused.status)
        message = refused.message or f"HTTP-equivalent status {refused.status}"

        def refuse(messages: Any, context: Any) -> bytes:  # streaming in: the message is never read
            context.abort(code, message)
            raise AssertionError("unreachable: abort raises")

        return self._grpc.stream_unary_rpc_method_handler(refuse)

    def _handle(self, body: bytes, context: Any) -> bytes:
        metadata = _metadata(context.invocation_metadata())
        try:
            reply = self._export(body, metadata)
        except Exception:  # a bug of ours: say so, and keep serving
            self._logger.exception("Failed on an OTLP/gRPC export")
            reply = Reply(500, message="internal error")
        if reply.status == 200:
            return reply.body
        code, retry = self._status_of(reply.status)
        message = reply.message or f"HTTP-equivalent status {reply.status}"
        if retry:
            delay = int(reply.headers.get("Retry-After") or 1)
            context.set_trailing_metadata((("grpc-status-details-bin", _status_details(code, message, delay)),))
        context.abort(code, message)
        raise AssertionError("unreachable: abort raises")

    def _status_of(self, status: int) -> tuple[Any, bool]:
        """The gRPC code for an HTTP-style status, and whether the sender should retry."""
        codes = self._grpc.StatusCode
        if status in (400, 404, 415):
            return codes.INVALID_ARGUMENT, False
        if status in (401, 403):
            return codes.UNAUTHENTICATED, False
        if status == 413:
            return codes.RESOURCE_EXHAUSTED, False
        if status == 429:
            return codes.RESOURCE_EXHAUSTED, True
        if status in (502, 503, 504):
            return codes.UNAVAILABLE, True
        return codes.INTERNAL, False


def _status_details(code: Any, message: str, retry_after_s: int) -> bytes:
    """A ``google.rpc.Status`` carrying a ``RetryInfo``: what OTLP senders read the delay from."""
    from google.protobuf.duration_pb2 import Duration
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=retry_after_s)))
    return status.SerializeToString()


def _metadata(pairs: Any) -> dict[str, str]:
    """gRPC metadata with lower-case names, without the binary (-bin) entries."""
    return {key.lower(): value for key, value in pairs or () if isinstance(value, str)}


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refuse_if_taken(host: str, port: int) -> None:
    """Raise the bind error for a port something already listens on, before grpcio tries it:
    grpcio's own failure also writes a C-level ``E… add_port.cc`` line to the process's stderr,
    a second line under the CLI's one-line error."""
    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpcio binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} for OTLP/gRPC: {exc.strerror or exc}") from None
