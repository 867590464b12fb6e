"""What the commands share: the ``Command`` holder, the source arguments (``--db``, ``--url``),
fetching from a store or a running server, and the plain-text formatting of tables and threads.

::

    from trubrics_otel.server.cli.common import format_table
    print(format_table(["user", "events"], [["alice", 3]]))
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from trubrics_otel import cli_args as checks
from trubrics_otel.server.read_api import strict_json
from trubrics_otel.server.store import (
    DEFAULT_SESSION_TIMEOUT_S,
    Store,
    default_db_path,
    parse_time,
)


class Command:
    """One subcommand: its help line (``doc``), its arguments and what it runs (exit code)."""

    def __init__(self, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                 run: Callable[[argparse.Namespace], int]) -> None:
        self.__doc__ = doc
        self.add_arguments = add_arguments
        self.run = run


def usd(cost: float | None) -> str:
    """A cost for a table: empty when unknown (never a 0 that reads as free)."""
    return "" if cost is None else f"{cost:.4f}"


def seconds(value: float | None) -> str:
    """A duration in seconds for a table, in hundredths; empty when unknown."""
    return "" if value is None else f"{value:.2f}"


# --- formatting (pure) -------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> str:
    """A plain-text table fitting ``width`` columns: the widest column is cut with ``…``."""
    if not rows:
        return "(none)"  # filters may hide what is stored: never "nothing stored"
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
    """A thread's turns as a transcript: time, user and prompt, then the model's answer or error."""
    lines: list[str] = []
    for turn in turns:
        lines.append(f"[{local_time(turn['timestamp'])}] {turn['user_id']} ({turn['prompt_event_name']}):")
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


def _one_line(value: Any) -> str:
    return " ".join(str("" if value is None else value).split())


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in str(text).splitlines() or [""])


def local_time(iso_time: str | None) -> str:
    """A stored (UTC) time in the reader's time zone, to the second; empty when unknown."""
    if not iso_time:
        return ""
    return _dt.datetime.fromisoformat(iso_time).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_duration(seconds: float) -> str:
    """``42s``, ``5m`` or ``1.5h``: the unit that keeps the number short."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# --- sources -----------------------------------------------------------------------------------


def db_argument(parser: argparse.ArgumentParser, check: Callable[[str], str]) -> None:
    parser.set_defaults(db_check=check)  # TRUBRICS_DB_URL's file is checked as --db's (cli_args.database_setting)
    parser.add_argument("--db", type=check, default=None, metavar="PATH|URL",
                        help="SQLite file (or sqlite:///path) or postgresql://user@host:port/database "
                             f"(default $TRUBRICS_DB_URL, $TRUBRICS_DB or {default_db_path()})")


def session_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session-timeout", type=checks.positive_number, default=None, metavar="MINUTES",
                        help="a new session starts after this long without an event (default: the one the "
                             f"store keeps, {DEFAULT_SESSION_TIMEOUT_S // 60:g} for a new store)")


def session_timeout_s(args: argparse.Namespace) -> float | None:
    """``--session-timeout`` in seconds; None: the store's (a ``serve`` without it never
    rebuilds the sessions another worker of the same database keeps)."""
    return None if args.session_timeout is None else args.session_timeout * 60


def source_arguments(parser: argparse.ArgumentParser) -> None:
    db_argument(parser, checks.existing_database)
    parser.add_argument("--url", type=checks.http_url, help="ask a running server (e.g. http://127.0.0.1:8787) instead of the file")
    parser.add_argument("--api-key", type=checks.key, help="with --url: the server's --api-key (needed when it is not on loopback)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def filter_arguments(parser: argparse.ArgumentParser) -> None:
    """``--since --until --user --model --event``: the filters of ``stats`` and every analysis,
    defined once so they read and mean the same in each command's ``--help``."""
    parser.add_argument("--since", type=time_argument, help="ISO 8601 time or a duration ago (15m, 2h, 7d)")
    parser.add_argument("--until", type=time_argument, help="ISO 8601 time or a duration ago")
    parser.add_argument("--user", type=checks.non_empty, help="only this user_id")
    parser.add_argument("--model", type=checks.non_empty, help="only LLM events of this model")
    parser.add_argument("--event", type=checks.non_empty,
                        help="only this event name (an LLM event's is its generation name; "
                             "the analyses also match its prompt name)")


def time_argument(text: str) -> _dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


NOT_STORED = "nothing stored there yet (pass --db or --url, or send events to trubrics-otel serve)"
"""What a reading command says of a store never written (the default, before ``serve`` ran;
the quickstart keeps its own): where it looked and how events get there."""


def stored_yet(args: argparse.Namespace) -> bool:
    """Whether ``--db`` (or the default store) exists; a ``--url`` server is asked instead."""
    if args.url:
        return True
    store = Store(args.db)
    try:
        return store.exists()
    finally:
        store.close()


class UnexpectedAnswer(Exception):
    """``--url`` answered something our server does not (a 404, a page, other JSON): the CLI
    shows this one line, never "nothing found" for a typo in the URL."""


def fetch(args: argparse.Namespace, endpoint: str, params: dict[str, Any],
          local: Callable[[Store], Any], expect: type = list) -> Any:
    """``local(store)`` on ``--db``, or ``GET <--url>/api/<endpoint>?<params>``, which must be
    JSON of type ``expect`` (no database file is ``[]``). Our 404 naming what it misses
    (``{"detail": "no thread 'x'"}``) is ``None``; our 401, 403 or 5xx raises
    ``requests.HTTPError``; a 400 or any answer that is not our read API's (a 404, a page, other
    JSON) raises :class:`UnexpectedAnswer`: the CLI shows either as one line."""
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
    url = f"{args.url.rstrip('/')}/api/{endpoint}"
    response = requests.get(url, params=query, headers=headers, timeout=30)
    body = _json_body(response)
    if response.status_code == 404 and isinstance(body, dict) and str(body.get("detail", "")).startswith("no "):
        return None  # our server: that thread (user, trace) does not exist
    if response.status_code == 400 and isinstance(body, dict) and body.get("detail"):
        raise UnexpectedAnswer(f"{args.url} refused the query: {body['detail']}")
    if response.status_code in (401, 403) or (response.status_code >= 500 and isinstance(body, dict)):
        response.raise_for_status()  # ours, refusing: the CLI says which key to pass
    if response.status_code != 200 or not isinstance(body, expect):
        raise unexpected(url, _what(response, body))
    return body


def unexpected(url: str, what: str) -> UnexpectedAnswer:
    """The one line for an answer that is not our read API's: the URL asked and what came back."""
    return UnexpectedAnswer(f"{url} answered {what}: not a trubrics-otel server's read API "
                            "(is --url the address serve printed, without a path?)")


def _json_body(response: Any) -> Any:
    """The answer's JSON, or None when it is not JSON (a page, plain text, nothing)."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _what(response: Any, body: Any) -> str:
    """What came back, in a few words: ``HTTP 404 (text/html)``, ``JSON of another shape``."""
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    if response.status_code == 200 and body is not None:
        return f"JSON of another shape ({type(body).__name__})"
    return f"HTTP {response.status_code} ({kind})"


def print_json(rows: Any) -> int:
    """``--json``: the answer as the read API gives it (strict JSON, costs as money)."""
    print(strict_json(rows, indent=2))  # an overflowed sum: null + <key>_overflow, never Infinity
    return 0
