"""``trubrics-otel events | sessions | threads | users``: query the store.

::

    trubrics-otel events --user u1 --since 2h    # newest 50, as a table (--json for JSON)
    trubrics-otel sessions
    trubrics-otel threads                        # list; ``threads <id>`` shows one conversation

The query commands read the store directly (``--db``: a SQLite file or a PostgreSQL URL, else
``$TRUBRICS_DB_URL``, ``$TRUBRICS_DB``, the same per-user default as ``serve``), or a running
server's JSON API with ``--url``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from trubrics_otel import cli_args as checks
from trubrics_otel.server.cli.common import (
    NOT_STORED,
    Command,
    fetch,
    format_conversation,
    format_table,
    local_time,
    print_json,
    session_argument,
    session_timeout_s,
    short_duration,
    source_arguments,
    stored_yet,
    time_argument,
    unexpected,
    usd,
)
from trubrics_otel.server.store import Store
from trubrics_otel.server.store.dialect import NO_LIMIT


def _limit_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--limit", type=_limit, default=50, help=f"{what} (default 50)")


def _limit(text: str) -> int:
    """A whole number of rows; one larger than a database can count means all of them."""
    return min(checks.positive_int(text), NO_LIMIT - 1)


# --- events ------------------------------------------------------------------------------------


def _events_arguments(parser: argparse.ArgumentParser) -> None:
    source_arguments(parser)
    parser.add_argument("--user", type=checks.non_empty, help="only this user_id")
    parser.add_argument("--event", type=checks.non_empty,
                        help="only this event name (LLM events: prompt or generation name)")
    parser.add_argument("--thread", type=checks.non_empty, help="only this thread_id")
    parser.add_argument("--kind", choices=("event", "llm"), help="only product events or LLM events")
    parser.add_argument("--since", type=time_argument, help="ISO 8601 time or a duration ago (15m, 2h, 7d)")
    parser.add_argument("--until", type=time_argument, help="ISO 8601 time or a duration ago")
    _limit_argument(parser, "newest N events")
    session_argument(parser)


def _events(args: argparse.Namespace) -> int:
    filters = {"user": args.user, "event": args.event, "thread": args.thread, "kind": args.kind,
               "since": args.since, "until": args.until, "limit": args.limit}
    rows = fetch(args, "events", filters, lambda store: store.events(
        session_timeout_s=session_timeout_s(args), **filters))
    return _show(args, "events", rows, ["time", "user", "event", "thread", "session", "details"], lambda e: [
        local_time(e["timestamp"]), e["user_id"], _event_name(e), e["thread_id"] or "",
        (e["session_id"] or "")[:8], _details(e)])


events = Command("Recent events from the local store, as a table or JSON.", _events_arguments, _events)


# --- sessions ----------------------------------------------------------------------------------


def _sessions_arguments(parser: argparse.ArgumentParser) -> None:
    source_arguments(parser)
    parser.add_argument("--user", type=checks.non_empty, help="only this user_id")
    _limit_argument(parser, "most recent N sessions")
    session_argument(parser)


def _sessions(args: argparse.Namespace) -> int:
    rows = fetch(args, "sessions", {"user": args.user, "limit": args.limit}, lambda store: store.sessions(
        user=args.user, timeout_s=session_timeout_s(args), limit=args.limit))
    headers = ["session", "user", "start", "duration", "events", "llm", "threads", "event names"]
    return _show(args, "sessions", rows, headers, lambda s: [
        s["session_id"][:8], s["user_id"], local_time(s["start"]), short_duration(s["duration_s"]),
        s["events"], s["llm_events"], s["threads"], ", ".join(s["event_names"])])


sessions = Command("Sessions (a new one after 30 min without an event) from the local store.",
                   _sessions_arguments, _sessions)


# --- threads -----------------------------------------------------------------------------------


def _threads_arguments(parser: argparse.ArgumentParser) -> None:
    source_arguments(parser)
    parser.add_argument("thread_id", nargs="?", type=checks.non_empty, help="show this thread as a conversation")
    parser.add_argument("--user", type=checks.non_empty, help="only threads of this user_id")
    _limit_argument(parser, "most recent N threads")


def _threads(args: argparse.Namespace) -> int:
    if args.thread_id:
        found = fetch(args, f"threads/{quote(args.thread_id, safe='')}", {},
                      lambda store: {"turns": store.thread(args.thread_id)}, expect=dict)
        turns = found.get("turns") if isinstance(found, dict) else None
        if found and not isinstance(turns, list):
            raise unexpected(f"{args.url}/api/threads/…", "JSON of another shape (no turns)")
        if not turns:  # a typo in the id: an error, like a --db that does not exist
            source = args.url or Store(args.db).location
            print(f"trubrics-otel threads: no thread {args.thread_id!r} in {source}", file=sys.stderr)
            return 2
        if args.json:
            return print_json(turns)
        print(format_conversation(turns))
        return 0
    rows = fetch(args, "threads", {"user": args.user, "limit": args.limit},
                  lambda store: store.threads(user=args.user, limit=args.limit))
    headers = ["thread", "users", "turns", "last", "models", "tokens in/out", "cost $", "errors", "first prompt"]
    return _show(args, "threads", rows, headers, lambda t: [
        t["thread_id"], ", ".join(t["users"]), t["turns"], local_time(t["end"]), ", ".join(t["models"]),
        _tokens(t), usd(t.get("cost_usd")), t["errors"] or "", t["title"] or ""])


threads = Command("Conversation threads from the local store; give an id to read one.",
                  _threads_arguments, _threads)


# --- users -------------------------------------------------------------------------------------


def _users_arguments(parser: argparse.ArgumentParser) -> None:
    source_arguments(parser)
    _limit_argument(parser, "most recently seen N users")


def _users(args: argparse.Namespace) -> int:
    rows = fetch(args, "users", {"limit": args.limit}, lambda store: store.users(limit=args.limit))
    headers = ["user", "events", "llm", "threads", "tokens in/out", "cost $", "errors", "last seen"]
    return _show(args, "users", rows, headers, lambda u: [
        u["user_id"], u["events"], u["llm_events"], u.get("threads", ""), _tokens(u), usd(u.get("cost_usd")),
        u["errors"] or "", local_time(u["last_seen"])])


users = Command("Users from the local store: events, LLM calls, tokens and what they cost.",
                _users_arguments, _users)


def _show(args: argparse.Namespace, what: str, rows: list[dict[str, Any]], headers: list[str],
          cells: Callable[[dict[str, Any]], list[Any]]) -> int:
    """A listing (fetched newest first) shown oldest first: JSON, a table, or one line naming
    the database or URL that had nothing."""
    rows = list(reversed(rows))
    if args.json:
        return print_json(rows)
    if not rows:
        return _nothing(what, args)
    try:
        table = [cells(row) for row in rows]
    except (KeyError, TypeError, AttributeError):
        if not args.url:
            raise  # our own store: a bug
        raise unexpected(f"{args.url}/api/{what}", "rows without our columns") from None
    print(format_table(headers, table))
    return 0


def _tokens(row: dict[str, Any]) -> str:
    return f"{row['input_tokens'] or 0}/{row['output_tokens'] or 0}"



def _event_name(event: dict[str, Any]) -> str:
    if event["kind"] == "llm":
        return f"{event['prompt_event_name']} → {event['generation_event_name']}"
    return event["event"]


def _details(event: dict[str, Any]) -> str:
    if event["kind"] == "llm":
        text = f"{event['prompt']!r} → {event['generation']!r}"
        return f"{text}  ERROR {event['error']}" if event.get("error") else text
    own = {k: v for k, v in (event.get("properties") or {}).items() if not k.startswith("$") or k in SHOWN}
    return json.dumps(own, ensure_ascii=False) if own else ""


SHOWN = ("$feedback", "$text")
"""The special properties the details column keeps: the others are ids shown elsewhere (the
thread column) or nowhere ($trace_id, $span_id)."""


def _nothing(what: str, args: argparse.Namespace) -> int:
    """An empty result says where it looked: the wrong --db or --url is the usual cause."""
    source = args.url or Store(args.db).location
    why = f": {NOT_STORED}" if not stored_yet(args) else " (filters applied)" if _filtered(args) else ""
    print(f"no {what} found in {source}{why}")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("user", "event", "thread", "kind", "since", "until"))
