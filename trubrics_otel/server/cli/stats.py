"""``trubrics-otel stats``: events, users, tokens, cost, errors and latency over time.

::

    trubrics-otel stats                              # per day, everything stored
    trubrics-otel stats --since 7d --by hour --model gpt-4o
    trubrics-otel stats --json                       # {"totals": {...}, "buckets": [...]}

Reads the store (``--db`` path or URL, ``$TRUBRICS_DB_URL``, ``$TRUBRICS_DB``, the default) or a running server
(``--url``); the numbers are the page's dashboard's (:mod:`.stats` says how they are counted).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trubrics_otel.server.cli import common as cli
from trubrics_otel.server.stats import BUCKETS, StatsError, StatsQuery, stats
from trubrics_otel.server.store import Store, to_us


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.source_arguments(parser)
    cli.filter_arguments(parser)
    parser.add_argument("--by", choices=tuple(BUCKETS), default="day", help="bucket width (default day, UTC)")


def run(args: argparse.Namespace) -> int:
    query = StatsQuery(since_us=to_us(args.since) if args.since else None,
                       until_us=to_us(args.until) if args.until else None,
                       by=args.by, user=args.user, model=args.model, event=args.event)
    try:
        result = _stats(args, query)
    except StatsError as exc:
        print(f"trubrics-otel stats: {exc}", file=sys.stderr)
        return 2
    if args.json:
        return cli.print_json(result)
    if not cli.stored_yet(args):  # not two empty tables
        print(f"no events found in {Store(args.db).location}: {cli.NOT_STORED}")
        return 0
    print(cli.format_table(
        ["start (UTC)", "events", "llm", "users", "tokens in/out", "cost $", "errors", "p50 s", "p95 s"],
        [_cells(b, b["start"]) for b in result["buckets"] if b["events"]]))
    print()
    print(cli.format_table(["total", "events", "llm", "users", "tokens in/out", "cost $", "errors", "p50 s", "p95 s"],
                           [_cells(result["totals"], "all")]))  # the whole range, not one bucket
    return 0


def _stats(args: argparse.Namespace, query: StatsQuery) -> dict[str, Any]:
    if args.url:
        params = {"since": args.since, "until": args.until, "by": args.by, "user": args.user,
                  "model": args.model, "event": args.event}
        result = cli.fetch(args, "analytics", params, lambda store: None, expect=dict)
        if "buckets" in result and "totals" in result:
            return result
        raise cli.unexpected(f"{args.url}/api/analytics", "JSON of another shape (no buckets)")
    store = Store(args.db)
    try:
        if not store.exists():  # never create a database just to read it
            return {"totals": {"since": None, "until": None, "by": args.by, "events": 0, "llm_events": 0,
                               "users": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None,
                               "errors": 0, "latency_p50": None, "latency_p95": None}, "buckets": []}
        with store.connection() as connection:
            return stats(connection, query)
    finally:
        store.close()


def _cells(row: dict[str, Any], label: str) -> list[Any]:
    return [
        label[:16].replace("T", " "), row["events"], row["llm_events"], row["users"],
        f"{row['input_tokens']}/{row['output_tokens']}", cli.usd(row["cost_usd"]), row["errors"] or "",
        cli.seconds(row["latency_p50"]), cli.seconds(row["latency_p95"]),
    ]
