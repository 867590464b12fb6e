"""``trubrics-otel active | retention | funnel | feedback | conversations | topics``: product analytics.

::

    trubrics-otel active --period week --since 90d
    trubrics-otel retention --period week --json     # {"period": "week", "cohorts": [...]}
    trubrics-otel funnel --steps "Sign up,Create project,Upgrade" --within 7d --breakdown model
    trubrics-otel feedback --model gpt-4o
    trubrics-otel conversations --user alice --json
    trubrics-otel topics

Each reads the SQLite file (``--db``) or a running server (``--url``) and takes the filters of
``stats`` (``--since --until --user --model --event``); the definitions are in
:mod:`trubrics_otel.server.analytics`. A bad argument is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any, Callable

from trubrics_otel import cli_args as checks
from trubrics_otel.server.analytics.api import answer, duration_us
from trubrics_otel.server.analytics.query import PERIODS, AnalyticsError
from trubrics_otel.server.cli import common as cli
from trubrics_otel.server.read_api import MONEY_KEYS
from trubrics_otel.server.store import Store


def _params(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The analysis' text parameters (:mod:`~trubrics_otel.server.analytics.api`)."""
    values = {n: getattr(args, n, None) for n in ("since", "until", "user", "model", "event", *names)}
    return {n: v.isoformat() if isinstance(v, datetime) else v for n, v in values.items() if v not in (None, False)}


class _Command:
    def __init__(self, name: str, doc: str, extra: Callable[[argparse.ArgumentParser], None],
                 names: tuple[str, ...], show: Callable[[dict[str, Any]], str]) -> None:
        self.name, self.__doc__, self._extra, self._names, self._show = name, doc, extra, names, show

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        cli.source_arguments(parser)
        cli.filter_arguments(parser)
        self._extra(parser)

    def run(self, args: argparse.Namespace) -> int:
        params = _params(args, *self._names)
        try:
            result = self._fetch(args, params)
        except AnalyticsError as exc:
            print(f"trubrics-otel {self.name}: {exc}", file=sys.stderr)
            return 2
        if result.get("notice"):  # topics without the [topics] extra
            print(f"trubrics-otel {self.name}: {result['notice']}", file=sys.stderr)
            return 2
        if args.json:
            return cli.print_json(result)
        try:
            shown = self._show(result)
        except (KeyError, TypeError, AttributeError):
            if not args.url:
                raise  # our own store: a bug
            raise cli.unexpected(f"{args.url}/api/{self.name}", "JSON of another shape") from None
        print(shown)
        return 0

    def _fetch(self, args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
        if args.url:
            return cli.fetch(args, self.name, params, lambda store: None, expect=dict)
        store = Store(args.db)
        try:
            if not store.exists():  # never create a database just to read it
                raise AnalyticsError(f"no database at {store.location}: {cli.NOT_STORED}")
            return answer(store, self.name, params)
        finally:
            store.close()


def _period(default: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--period", choices=PERIODS, default=default, help=f"bucket (default {default}, UTC)")
    return add


def _funnel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", required=True, type=checks.non_empty,
                        help='comma-separated event names, e.g. "Sign up,Upgrade"')
    parser.add_argument("--within", type=_duration, default="7d", help="window from the first step (default 7d)")
    parser.add_argument("--breakdown", type=checks.non_empty, help="model, or property:NAME of the first step's event")


def _duration(text: str) -> str:
    try:
        duration_us(text)
    except AnalyticsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("within must be ")) from None
    return text


def _topics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refit", action="store_true", help="cluster every prompt again")


def _day(text: str | None) -> str:
    return (text or "")[:16].replace("T", " ")


def _show_active(r: dict[str, Any]) -> str:
    return cli.format_table(["start (UTC)", "active", "new", "returning"],
                            [[_day(b["start"]), b["active"], b["new"], b["returning"]] for b in r["buckets"]])


def _show_retention(r: dict[str, Any]) -> str:
    return cli.format_table(["cohort (UTC)", "users", "retained (per period after)"],
                            [[_day(c["start"]), c["users"], " ".join(str(n) for n in c["retained"])] for c in r["cohorts"]])


def _show_funnel(r: dict[str, Any]) -> str:
    steps = cli.format_table(["step", "users", "conversion"],
                             [[s["event"], s["users"], "" if s["conversion"] is None else f"{s['conversion']:.1%}"]
                              for s in r["steps"]])
    if not r.get("breakdown_by"):
        return steps
    # --breakdown: users at each step per value, one column per step (as the JSON's "breakdown")
    return steps + "\n\n" + cli.format_table([r["breakdown_by"], *(s["event"] for s in r["steps"])],
                                              [[b["value"], *b["steps"]] for b in r["breakdown"]])


def _show_feedback(r: dict[str, Any]) -> str:
    t = r["totals"]
    head = cli.format_table(["feedback", "positive", "negative", "threads rated", "turns rated"],
                            [[t["feedback"], t["positive"], t["negative"], f"{t['threads_with_feedback']}/{t['threads']}",
                              f"{t['turns_with_feedback']}/{t['llm_turns']}"]])
    return head + "\n\n" + cli.format_table(["model", "feedback", "positive", "negative", "mean"],
                                            [[m["model"], m["feedback"], m["positive"], m["negative"], m["mean_value"]]
                                             for m in r["by_model"]])


def _show_conversations(r: dict[str, Any]) -> str:
    keys = ["threads", "turns_p50", "turns_p90", "cost_p50", "cost_p90", "duration_p50_s", "abandoned", "errors"]
    cells = [cli.usd(r[k]) if k in MONEY_KEYS else cli.seconds(r[k]) if k.endswith("_s")
             else "" if r[k] is None else r[k] for k in keys]
    return cli.format_table(keys, [cells]) + "\n\n" + cli.format_table(
        ["user", "threads", "turns", "cost $", "abandoned"],
        [[u["user_id"], u["threads"], u["turns"], cli.usd(u["cost_usd"]), u["abandoned"]] for u in r["per_user"]])


def _show_topics(r: dict[str, Any]) -> str:
    return cli.format_table(["topic", "terms", "prompts", "users", "errors", "neg. feedback", "rephrases", "retries"],
                            [[t["label"], ", ".join(t["terms"]), t["prompts"], t["users"], t["errors"],
                              t["negative_feedback"], t["rephrases"], t["retries"]] for t in r["topics"]])


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """An analysis with only the common filters."""


active = _Command("active", "Active users per day, week or month: new and returning, stickiness.",
                  _period("day"), ("period",), _show_active)
retention = _Command("retention", "Retention cohorts: users of each period's cohort active k periods later.",
                     _period("week"), ("period",), _show_retention)
funnel = _Command("funnel", "A funnel: users reaching each ordered step within a window of the first.",
                  _funnel_arguments, ("steps", "within", "breakdown"), _show_funnel)
feedback = _Command("feedback", "Feedback (scores, $feedback events): counts, sentiment, rates by model and day.",
                    _no_arguments, (), _show_feedback)
conversations = _Command("conversations", "Conversations: turns, cost, duration percentiles, abandonment, per user.",
                         _no_arguments, (), _show_conversations)
topics = _Command("topics", "Prompt topics with their users, errors, negative feedback and rephrasing.",
                  _topics_arguments, ("refit",), _show_topics)
