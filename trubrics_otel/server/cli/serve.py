"""``trubrics-otel serve``: run the local server.

::

    trubrics-otel serve                          # http://127.0.0.1:8787, page at /; OTLP/gRPC on 4317
    trubrics-otel serve --workers 4 --db postgresql://trubrics@db.internal/trubrics   # 4 processes, one port
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import sys
from collections.abc import Callable

from trubrics_otel import cli_args as checks
from trubrics_otel import settings
from trubrics_otel.extras import install_command
from trubrics_otel.logs import on_stderr
from trubrics_otel.receive.process import tune_for_server
from trubrics_otel.server.analytics.api import set_feedback_events
from trubrics_otel.server.app import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    LocalServer,
)
from trubrics_otel.server.cli.common import Command, db_argument, session_argument, session_timeout_s
from trubrics_otel.server.store import Store
from trubrics_otel.server.workers import Supervisor, WorkerFailed, listening_socket, terminate_as_interrupt

# --- serve ----------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    db_argument(parser, checks.new_database)
    parser.add_argument("--bind", type=checks.ip_address, default="127.0.0.1",
                        help="IP address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)")
    parser.add_argument("--port", type=checks.port, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--grpc-port", type=checks.port, default=None,
                        help=f"OTLP/gRPC port (default {DEFAULT_GRPC_PORT}, the OTLP default; 0 = any free; "
                        "needs the grpc extra)")
    parser.add_argument("--no-grpc", action="store_true", help="no OTLP/gRPC listener")
    parser.add_argument("--api-key", type=checks.key, default=None,
                        help="accept only this key (x-api-key or Authorization: Bearer) for writes and "
                        "reads; required when --bind is not loopback (default: any non-empty key)")
    parser.add_argument("--max-body-bytes", type=checks.positive_int, default=DEFAULT_MAX_BODY_BYTES,
                        help="larger request bodies get 413 (default 10 MiB)")
    session_argument(parser)
    parser.add_argument("--log-level", type=checks.log_level, default="INFO",
                        help="trubrics.server log level (default INFO)")
    parser.add_argument("--workers", type=checks.positive_int, default=None, metavar="N",
                        help="worker processes accepting on the port at once (default $TRUBRICS_SERVE_WORKERS "
                        "or 1); OTLP/gRPC is served by the first")
    parser.add_argument("--feedback-event", action="append", default=[], metavar="NAME=VALUE",
                        type=feedback_mapping, help='count events NAME as feedback worth VALUE, e.g. "Thumbs up=1"')


def _serve(args: argparse.Namespace) -> int:
    """Serve with the server's log on stderr, given back as it was when serve returns (a
    caller of ``main()`` in its own process, such as a test, keeps its logging)."""
    logger = logging.getLogger("trubrics.server")
    with on_stderr(logger, logging.Formatter("%(asctime)s %(levelname)s %(message)s"), args.log_level,
                   propagate=False):
        return _serve_logged(args, logger)


def _serve_logged(args: argparse.Namespace, logger: logging.Logger) -> int:
    from trubrics_otel.receive import grpc as otlp_grpc

    grpc_port = None if args.no_grpc else DEFAULT_GRPC_PORT if args.grpc_port is None else args.grpc_port
    if grpc_port is not None and not otlp_grpc.available():
        if args.grpc_port is not None:  # asked for: say why it is not there (the default is quiet)
            logger.warning("%s; serving OTLP/HTTP only", otlp_grpc.INSTALL_HINT)
        grpc_port = None
    if not args.api_key and not settings.loopback(args.bind):  # anyone could write and read there
        print(f"trubrics-otel serve: --bind {args.bind} is not loopback: give --api-key", file=sys.stderr)
        return 2
    workers = settings.read(settings.SERVE_WORKERS, args.workers)
    if workers > 1:
        return _serve_workers(args, workers, grpc_port, logger)
    server = _server(args, grpc_port, logger)
    server.store.count()  # the database first: a bad --db is not a port problem (main says so)
    if args.feedback_event:
        set_feedback_events(server.store, dict(args.feedback_event))
    try:
        server.bind()
    except (OSError, OverflowError) as exc:
        return _cannot_listen(exc)
    try:  # Ctrl-C while the banner is written or the price table loads is a stop too, not a traceback
        with terminate_as_interrupt():
            _banner(args, server.port, server.store.location, server.grpc_port)
            tune_for_server()  # our own process: see receive/process.py
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:  # whenever Ctrl-C lands, no listener thread keeps the process alive
        server.stop()
    return 0


def _server(args: argparse.Namespace, grpc_port: int | None, logger: logging.Logger,
            listen_socket: socket.socket | None = None) -> LocalServer:
    return LocalServer(
        args.db, host=args.bind, port=args.port, api_key=args.api_key,
        max_body_bytes=args.max_body_bytes, session_timeout_s=session_timeout_s(args), logger=logger,
        grpc_port=grpc_port, listen_socket=listen_socket,
    )


def _serve_workers(args: argparse.Namespace, workers: int, grpc_port: int | None, logger: logging.Logger) -> int:
    """``--workers N``: the database made ready once, one listening socket, N forked workers
    (:mod:`..workers`); OTLP/gRPC in worker 0 only. The parent holds no thread when it forks."""
    store = Store(args.db, session_timeout_s=session_timeout_s(args), writer=True)
    try:
        store.count()  # created or migrated once, before any worker; a bad --db fails here
        if args.feedback_event:
            set_feedback_events(store, dict(args.feedback_event))
        location = store.location
    finally:
        store.close()
    try:
        listener = listening_socket(args.bind, args.port)
    except (OSError, OverflowError) as exc:
        return _cannot_listen(exc)
    try:
        tune_for_server()  # before forking: the price table loaded once, shared by the workers
    except KeyboardInterrupt:
        return 0
    grpc = [grpc_port]  # worker 0's, fixed once bound: a replaced worker 0 listens on the same port

    def run_worker(slot: int, ready: Callable[[str], None]) -> int:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s worker {slot}: %(message)s"))
        server = _server(args, grpc[0] if slot == 0 else None, logger, listener)
        try:
            server.bind()
        except (OSError, OverflowError) as exc:
            return _cannot_listen(exc)
        ready(str(server.grpc_port if server.grpc_port is not None else ""))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return 0

    handler = logger.handlers[-1]
    supervisor = Supervisor(run_worker, workers=workers, logger=logger)
    try:
        notes = supervisor.start()
    except WorkerFailed as exc:
        print(f"trubrics-otel serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    grpc[0] = int(notes[0]) if notes[0] else None
    _banner(args, listener.getsockname()[1], f"{location}, {workers} workers", grpc[0])
    try:
        return supervisor.run()
    finally:
        listener.close()


def _cannot_listen(exc: OSError | OverflowError) -> int:
    text = checks.cannot_listen(exc, "another server running? --port picks another, 0 any free",
                                "in use? --grpc-port picks another, 0 any free; --no-grpc turns it off")
    print(f"trubrics-otel serve: {text}", file=sys.stderr)
    return 2


def _banner(args: argparse.Namespace, port: int, location: str, grpc_port: int | None) -> None:
    host = checks.reachable_host(args.bind)  # 0.0.0.0 listens everywhere but is no address to dial
    url = f"http://{host}:{port}"
    print(f"trubrics-otel local server: {url}  (db: {location})", flush=True)
    if checks.every_interface(args.bind):
        print(f"  listening on every interface ({args.bind}): from another machine use this one's address",
              flush=True)
    key = args.api_key or "local-dev-key"  # the operator's own key, shown on their own terminal
    print(f"  send events:  Trubrics(api_key=\"{key}\", host=\"{url}\")", flush=True)
    print(f"  OTLP traces:  {url}/v1/traces", flush=True)
    if grpc_port is not None:
        usual = "  (opentelemetry-instrument's default)" if grpc_port == DEFAULT_GRPC_PORT else ""
        print(f"  OTLP/gRPC:    {host}:{grpc_port}{usual}", flush=True)
    elif not args.no_grpc:
        print(f"  OTLP/gRPC:    off ({install_command('grpc')} to receive it)", flush=True)
    print(f"  look at them: {url}/   (Ctrl-C stops)", flush=True)
    if not settings.loopback(args.bind):
        print("  not loopback: every write (ingestion, OTLP/HTTP, OTLP/gRPC) and every read needs the "
              "--api-key as x-api-key or Authorization: Bearer", flush=True)


serve = Command("Run the local Trubrics-compatible server (SQLite or PostgreSQL + page).", _serve_arguments, _serve)


def feedback_mapping(text: str) -> tuple[str, float]:
    """``"Thumbs up=1"`` → ``("Thumbs up", 1.0)``."""
    name, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not name.strip() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, e.g. \"Thumbs up=1\", got {text!r}")
    return name.strip(), number
