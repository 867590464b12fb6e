"""``trubrics-otel serve | events | sessions | threads``: run the local server, query its store.

::

    trubrics-otel serve                          # http://127.0.0.1:8787, page at /; OTLP/gRPC on 4317
    trubrics-otel events --user u1 --since 2h    # newest 50, as a table (--json for JSON)
    trubrics-otel sessions
    trubrics-otel threads                        # list; ``threads <id>`` shows one conversation

The query commands read the SQLite file directly (``--db``, else ``$TRUBRICS_DB``, else
the same per-user default as ``serve``), or a running server's JSON API with ``--url``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from trubrics_otel import cli_args as checks
from trubrics_otel.receive.process import tune_for_server
from trubrics_otel.server.app import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    LocalServer,
    strict_json,
)
from trubrics_otel.server.analytics.api import set_feedback_events
from trubrics_otel.server.read_api import is_loopback
from trubrics_otel.server.store import (
    DEFAULT_SESSION_TIMEOUT_S,
    Store,
    default_db_path,
    parse_time,
)


class Command:
    def __init__(self, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                 run: Callable[[argparse.Namespace], int]) -> None:
        self.__doc__ = doc
        self.add_arguments = add_arguments
        self.run = run


# --- serve ----------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _db_argument(parser, checks.new_database)
    parser.add_argument("--bind", type=checks.ip_address, default="127.0.0.1",
                        help="IP address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)")
    parser.add_argument("--port", type=checks.port, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--grpc-port", type=checks.port, default=None,
                        help=f"OTLP/gRPC port (default {DEFAULT_GRPC_PORT}, the OTLP default; 0 = any free; "
                        "needs the grpc extra)")
    parser.add_argument("--no-grpc", action="store_true", help="no OTLP/gRPC listener")
    parser.add_argument("--api-key", default=None,
                        help="accept only this key (x-api-key or Authorization: Bearer) for writes and "
                        "reads; required when --bind is not loopback (default: any non-empty key)")
    parser.add_argument("--max-body-bytes", type=checks.positive_int, default=DEFAULT_MAX_BODY_BYTES,
                        help="larger request bodies get 413 (default 10 MiB)")
    _session_argument(parser)
    parser.add_argument("--log-level", type=checks.log_level, default="INFO",
                        help="trubrics.server log level (default INFO)")
    parser.add_argument("--feedback-event", action="append", default=[], metavar="NAME=VALUE",
                        type=feedback_mapping, help='count events NAME as feedback worth VALUE, e.g. "Thumbs up=1"')


def _serve(args: argparse.Namespace) -> int:
    logger = logging.getLogger("trubrics.server")
    logger.setLevel(args.log_level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    from trubrics_otel.receive import grpc as otlp_grpc

    grpc_port = None if args.no_grpc else DEFAULT_GRPC_PORT if args.grpc_port is None else args.grpc_port
    if grpc_port is not None and not otlp_grpc.available():
        if args.grpc_port is not None:  # asked for: say why it is not there (the default is quiet)
            logger.warning("%s; serving OTLP/HTTP only", otlp_grpc.INSTALL_HINT)
        grpc_port = None
    if not args.api_key and not is_loopback(args.bind):  # anyone could write and read there
        print(f"trubrics-otel serve: --bind {args.bind} is not loopback: give --api-key", file=sys.stderr)
        return 2
    server = LocalServer(
        args.db, host=args.bind, port=args.port, api_key=args.api_key,
        max_body_bytes=args.max_body_bytes, session_timeout_s=args.session_timeout * 60, logger=logger,
        grpc_port=grpc_port,
    )
    server.store.count()  # the database first: a bad --db is not a port problem (main says so)
    if args.feedback_event:
        set_feedback_events(server.store, dict(args.feedback_event))
    try:
        server.bind()
    except (OSError, OverflowError) as exc:
        print(f"trubrics-otel serve: {exc}", file=sys.stderr)  # the receivers name the address
        return 2
    host = checks.reachable_host(args.bind)  # 0.0.0.0 listens everywhere but is no address to dial
    url = f"http://{host}:{server.port}"
    print(f"trubrics-otel local server: {url}  (db: {server.store.location})", flush=True)
    if host != args.bind:
        print(f"  listening on every interface ({args.bind}): from another machine use this one's address",
              flush=True)
    key = args.api_key or "local-dev-key"  # the operator's own key, shown on their own terminal
    print(f"  send events:  Trubrics(api_key=\"{key}\", host=\"{url}\")", flush=True)
    print(f"  OTLP traces:  {url}/v1/traces", flush=True)
    if server.grpc_port is not None:
        print(f"  OTLP/gRPC:    {host}:{server.grpc_port}  (opentelemetry-instrument's default)", flush=True)
    elif not args.no_grpc:
        print("  OTLP/gRPC:    off (pip install 'trubrics-otel[grpc]' to receive it)", flush=True)
    print(f"  look at them: {url}/   (Ctrl-C stops)", flush=True)
    if not is_loopback(args.bind):
        print("  not loopback: every write (ingestion, OTLP/HTTP, OTLP/gRPC) and every read needs the "
              "--api-key as x-api-key or Authorization: Bearer", flush=True)
    try:  # Ctrl-C while the price table loads is a stop too, not a traceback
        tune_for_server()  # our own process: see receive/process.py
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:  # whenever Ctrl-C lands, no listener thread keeps the process alive
        server.stop()
    return 0


serve = Command("Run the local Trubrics-compatible server (SQLite or PostgreSQL + page).", _serve_arguments, _serve)


# --- events ------------------------------------------------------------------------------------


def _events_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("--user", help="only this user_id")
    parser.add_argument("--event", help="only this event name (LLM events: prompt or generation name)")
    parser.add_argument("--thread", help="only this thread_id")
    parser.add_argument("--kind", choices=("event", "llm"), help="only product events or LLM events")
    parser.add_argument("--since", type=_time_argument, help="ISO 8601 time or a duration ago (15m, 2h, 7d)")
    parser.add_argument("--until", type=_time_argument, help="ISO 8601 time or a duration ago")
    parser.add_argument("--limit", type=checks.positive_int, default=50, help="newest N events (default 50)")
    _session_argument(parser)


def _events(args: argparse.Namespace) -> int:
    filters = {"user": args.user, "event": args.event, "thread": args.thread, "kind": args.kind,
               "since": args.since, "until": args.until, "limit": args.limit}
    rows = _fetch(args, "events", filters, lambda store: store.events(
        session_timeout_s=args.session_timeout * 60, **filters))
    return _show(args, "events", rows, ["time", "user", "event", "thread", "session", "details"], lambda e: [
        _local(e["timestamp"]), e["user_id"], _event_name(e), e["thread_id"] or "",
        (e["session_id"] or "")[:8], _details(e)])


events = Command("Recent events from the local store, as a table or JSON.", _events_arguments, _events)


# --- sessions ----------------------------------------------------------------------------------


def _sessions_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("--user", help="only this user_id")
    parser.add_argument("--limit", type=checks.positive_int, default=50, help="most recent N sessions (default 50)")
    _session_argument(parser)


def _sessions(args: argparse.Namespace) -> int:
    rows = _fetch(args, "sessions", {"user": args.user, "limit": args.limit}, lambda store: store.sessions(
        user=args.user, timeout_s=args.session_timeout * 60, limit=args.limit))
    headers = ["session", "user", "start", "duration", "events", "llm", "threads", "event names"]
    return _show(args, "sessions", rows, headers, lambda s: [
        s["session_id"][:8], s["user_id"], _local(s["start"]), _duration(s["duration_s"]),
        s["events"], s["llm_events"], s["threads"], ", ".join(s["event_names"])])


sessions = Command("Sessions (a new one after 30 min without an event) from the local store.",
                   _sessions_arguments, _sessions)


# --- threads -----------------------------------------------------------------------------------


def _threads_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("thread_id", nargs="?", help="show this thread as a conversation")
    parser.add_argument("--user", help="only threads of this user_id")
    parser.add_argument("--limit", type=checks.positive_int, default=50, help="most recent N threads (default 50)")


def _threads(args: argparse.Namespace) -> int:
    if args.thread_id:
        turns = _fetch(args, f"threads/{quote(args.thread_id, safe='')}", {}, lambda store: store.thread(args.thread_id))
        if isinstance(turns, dict):
            turns = turns.get("turns", [])
        if not turns:
            print(f"no thread {args.thread_id!r}", file=sys.stderr)
            return 1
        if args.json:
            return _print_json(turns)
        print(format_conversation(turns))
        return 0
    rows = _fetch(args, "threads", {"user": args.user, "limit": args.limit},
                  lambda store: store.threads(user=args.user, limit=args.limit))
    headers = ["thread", "users", "turns", "last", "models", "tokens in/out", "cost $", "errors", "first prompt"]
    return _show(args, "threads", rows, headers, lambda t: [
        t["thread_id"], ", ".join(t["users"]), t["turns"], _local(t["end"]), ", ".join(t["models"]),
        _tokens(t), _usd(t.get("cost_usd")), t["errors"] or "", t["title"] or ""])


threads = Command("Conversation threads from the local store; give an id to read one.",
                  _threads_arguments, _threads)


# --- users -------------------------------------------------------------------------------------


def _users_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("--limit", type=checks.positive_int, default=50,
                        help="most recently seen N users (default 50)")


def _users(args: argparse.Namespace) -> int:
    rows = _fetch(args, "users", {"limit": args.limit}, lambda store: store.users(limit=args.limit))
    headers = ["user", "events", "llm", "threads", "tokens in/out", "cost $", "errors", "last seen"]
    return _show(args, "users", rows, headers, lambda u: [
        u["user_id"], u["events"], u["llm_events"], u.get("threads", ""), _tokens(u), _usd(u.get("cost_usd")),
        u["errors"] or "", _local(u["last_seen"])])


users = Command("Users from the local store: events, LLM calls, tokens and what they cost.",
                _users_arguments, _users)


def _show(args: argparse.Namespace, what: str, rows: list[dict[str, Any]], headers: list[str],
          cells: Callable[[dict[str, Any]], list[Any]]) -> int:
    """A listing (fetched newest first) shown oldest first: JSON, a table, or one line naming
    the database or URL that had nothing."""
    rows = list(reversed(rows))
    if args.json:
        return _print_json(rows)
    if not rows:
        return _nothing(what, args)
    print(format_table(headers, [cells(row) for row in rows]))
    return 0


def _tokens(row: dict[str, Any]) -> str:
    return f"{row['input_tokens'] or 0}/{row['output_tokens'] or 0}"


def _usd(cost: float | None) -> str:
    """A cost for a table: empty when unknown (never a 0 that reads as free)."""
    return "" if cost is None else f"{cost:.4f}"


# --- formatting (pure) -------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> str:
    """A plain-text table fitting ``width`` columns: the widest column is cut with ``…``."""
    if not rows:
        return "(nothing stored yet)"
    width = width or shutil.get_terminal_size((160, 24)).columns
    cells = [[_one_line(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 12:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(_fit(c, w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def format_conversation(turns: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for turn in turns:
        lines.append(f"[{_local(turn['timestamp'])}] {turn['user_id']} ({turn['prompt_event_name']}):")
        lines.append(_indent(turn["prompt"]))
        meta = [turn["generation_event_name"]]
        if turn.get("latency") is not None:
            meta.append(f"{turn['latency']:.2f} s")
        if turn.get("input_tokens") is not None or turn.get("output_tokens") is not None:
            meta.append(f"{turn.get('input_tokens') or 0}→{turn.get('output_tokens') or 0} tokens")
        who = turn.get("model") or turn.get("assistant_id") or "assistant"
        lines.append(f"  {who} ({', '.join(meta)}):")
        if turn.get("error"):
            lines.append(_indent(f"ERROR {turn['error']}"))
        if turn.get("generation"):
            lines.append(_indent(turn["generation"]))
        lines.append("")
    return "\n".join(lines).rstrip()


def _event_name(event: dict[str, Any]) -> str:
    if event["kind"] == "llm":
        return f"{event['prompt_event_name']} → {event['generation_event_name']}"
    return event["event"]


def _details(event: dict[str, Any]) -> str:
    if event["kind"] == "llm":
        text = f"{event['prompt']!r} → {event['generation']!r}"
        return f"{text}  ERROR {event['error']}" if event.get("error") else text
    own = {k: v for k, v in (event.get("properties") or {}).items() if not k.startswith("$")}
    return json.dumps(own, ensure_ascii=False) if own else ""


def _one_line(value: Any) -> str:
    return " ".join(str("" if value is None else value).split())


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in str(text).splitlines() or [""])


def _local(iso_time: str | None) -> str:
    if not iso_time:
        return ""
    return _dt.datetime.fromisoformat(iso_time).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# --- sources -----------------------------------------------------------------------------------


def _db_argument(parser: argparse.ArgumentParser, check: Callable[[str], str]) -> None:
    parser.add_argument("--db", type=check, default=None, metavar="PATH|URL",
                        help="SQLite file (or sqlite:///path) or postgresql://user@host:port/database "
                             f"(default $TRUBRICS_DB_URL, $TRUBRICS_DB or {default_db_path()})")


def _session_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session-timeout", type=checks.positive_number, default=DEFAULT_SESSION_TIMEOUT_S / 60,
                        metavar="MINUTES", help="a new session starts after this long without an event (30)")


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    _db_argument(parser, checks.existing_database)
    parser.add_argument("--url", type=checks.http_url, help="ask a running server (e.g. http://127.0.0.1:8787) instead of the file")
    parser.add_argument("--api-key", help="with --url: the server's --api-key (needed when it is not on loopback)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


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


def _time_argument(text: str) -> _dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fetch(args: argparse.Namespace, endpoint: str, params: dict[str, Any],
           local: Callable[[Store], Any]) -> Any:
    if not args.url:
        store = Store(args.db)
        try:
            if not store.exists():
                return []  # never create a database just to read it
            return local(store)
        finally:
            store.close()
    import requests

    query = {k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in params.items() if v is not None}
    headers = {"x-api-key": args.api_key} if args.api_key else {}
    response = requests.get(f"{args.url.rstrip('/')}/api/{endpoint}", params=query, headers=headers, timeout=30)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return response.json()


def _nothing(what: str, args: argparse.Namespace) -> int:
    """An empty result says where it looked: the wrong --db or --url is the usual cause."""
    source = args.url or Store(args.db).location
    print(f"no {what} found in {source}" + (" (filters applied)" if _filtered(args) else ""))
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("user", "event", "thread", "kind", "since", "until"))


def _print_json(rows: Any) -> int:
    print(strict_json(rows, indent=2))  # an overflowed sum: null + <key>_overflow, never Infinity
    return 0
