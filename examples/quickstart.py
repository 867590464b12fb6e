"""Quickstart: a simulated AI chat app tracked with trubrics_otel, into a local server.

    python3 -m venv .venv && .venv/bin/pip install -q -e .   # from the repo's root, once
    .venv/bin/python examples/quickstart.py       # temporary database, thrown away after
    .venv/bin/python examples/quickstart.py --db chat.sqlite3 --keep-serving   # then open the page

No account and no network beyond 127.0.0.1: the local Trubrics-compatible server starts
in this process on a free port, the app sends its events there exactly as it would to
Trubrics, then the script prints what the server stored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import requests

from trubrics_otel import Trubrics
from trubrics_otel.server import LocalServer
from trubrics_otel.server.cli import format_conversation, format_table

SHOWN = ("$thread_id", "$feedback")  # the special properties the events table shows
# (prompt, answer, input tokens, output tokens, latency s); answer None = the model call failed
SUPPORT_THREAD = [
    ("How do I export my invoices?", "Go to Billing → Invoices and press Export CSV.", 41, 18, 1.4),
    ("Can I get them as PDF instead?", "Yes: pick PDF in the format menu before exporting.", 72, 16, 1.1),
    ("Thanks! Does that include last year?", "It does: choose the date range first, up to 3 years back.", 101, 21, 1.6),
]
RECIPE_THREAD = [
    ("Suggest a quick vegetarian dinner.", "Chickpea curry: 25 minutes, one pan, pantry staples.", 38, 15, 2.3),
    ("What if I have no coconut milk?", None, 64, 0, 30.0),
    ("What if I have no coconut milk?", "Use Greek yoghurt stirred in off the heat.", 64, 13, 1.9),
    ("And a side dish?", "Cucumber raita, or basmati rice with cumin seeds.", 90, 14, 1.2),
]


def run_chat_app(host: str, now: dt.datetime | None = None, spool: Path | None = None) -> None:
    """What an instrumented app does: sign-ups, conversations, feedback, one failed call.
    ``spool``: where undelivered events would wait (default: one directory per host under
    ``~/.cache``; the quickstart keeps it in its temporary directory, as its server is)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    trubrics = Trubrics(api_key="local-dev-key", host=host, flush_interval=0.2, spool=spool)

    def conversation(user: str, thread: str, turns: list, start: dt.datetime, model: str) -> dt.datetime:
        moment = start
        for prompt, answer, tokens_in, tokens_out, latency in turns:
            moment += dt.timedelta(seconds=20 + latency)
            properties = {"input_tokens": tokens_in, "output_tokens": tokens_out, "plan": "pro"}
            if answer is None:
                properties.update({"error.type": "RateLimitError", "error.message": "429: rate limit reached"})
            trubrics.track_llm(
                user_id=user, prompt=prompt, generation=answer or "", assistant_id=model,
                properties=properties, timestamp=moment, latency=latency, thread_id=thread,
            )
        return moment

    # alice: signs up, asks support, comes back an hour later (a new session) to cook
    start = now - dt.timedelta(hours=1, minutes=5)
    trubrics.track(user_id="alice", event="Sign up", properties={"plan": "pro", "country": "FR"},
                   timestamp=start)
    end = conversation("alice", "support-1", SUPPORT_THREAD, start, "gpt-4o-mini")
    # feedback: a product event with a $feedback property (1/true positive, 0/false negative)
    trubrics.track(user_id="alice", event="Thumbs up", timestamp=end + dt.timedelta(seconds=5),
                   properties={"$thread_id": "support-1", "$feedback": 1})
    later = now - dt.timedelta(minutes=5)
    conversation("alice", "recipes-1", RECIPE_THREAD, later, "gpt-4o")
    # bob: signs up and leaves
    trubrics.track(user_id="bob", event="Sign up", properties={"plan": "free", "country": "US"},
                   timestamp=now - dt.timedelta(minutes=2))
    trubrics.close(timeout=30)


def print_store(server: LocalServer) -> None:
    store = server.store
    events = store.events(kind="event", newest_first=False, limit=None)
    llm = store.events(kind="llm", newest_first=False, limit=None)
    print(f"\n== {len(events)} events ==")
    print(format_table(["time", "user", "event", "session", "properties"], [
        [_hhmm(e["timestamp"]), e["user_id"], e["event"], e["session_id"][:8],
         json.dumps({k: v for k, v in e["properties"].items() if not k.startswith("$") or k in SHOWN})]
        for e in events
    ]))
    print(f"\n== {len(llm)} LLM events ==")
    print(format_table(["time", "user", "thread", "model", "latency", "tokens", "prompt", "generation"], [
        [_hhmm(e["timestamp"]), e["user_id"], e["thread_id"], e["model"], f"{e['latency']:.1f}s",
         f"{e['input_tokens']}/{e['output_tokens']}", e["prompt"], e["generation"] or f"ERROR {e['error']}"]
        for e in llm
    ]))
    sessions = store.sessions(limit=None)[::-1]
    print(f"\n== {len(sessions)} sessions (new after {server.session_timeout_s / 60:.0f} min idle) ==")
    print(format_table(["session", "user", "start", "end", "events", "threads"], [
        [s["session_id"][:8], s["user_id"], _hhmm(s["start"]), _hhmm(s["end"]), s["events"], s["threads"]]
        for s in sessions
    ]))
    threads = store.threads(limit=None)[::-1]
    print(f"\n== {len(threads)} threads ==")
    for thread in threads:
        print(f"\n-- thread {thread['thread_id']} ({thread['turns']} turns, {', '.join(thread['models'])}) --")
        print(format_conversation(store.thread(thread["thread_id"])))


def print_feedback(server: LocalServer) -> None:
    """What the server counts as feedback (the Feedback view of the page, `trubrics-otel feedback`)."""
    totals = requests.get(f"{server.url}/api/feedback", timeout=10).json()["totals"]
    print(f"\n== {totals['feedback']} feedback: {totals['positive']} positive, {totals['negative']} negative, "
          f"on {totals['threads_with_feedback']} of {totals['threads']} threads ==")


def _hhmm(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")


def _db_file(text: str) -> Path:
    """A SQLite file the server may create, in a directory that exists (none is made for a typo)."""
    path = Path(text).expanduser()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the directory {str(path.parent)!r} does not exist (create it first)")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the chat app against a fresh server and print what it stored. A busy ``--port`` or a
    ``--db`` that is not SQLite is one line and exit code 2; ``| head`` ends quietly."""
    try:
        return _run(argv)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except sqlite3.DatabaseError as exc:
        print(f"quickstart: --db: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the server names the address it could not listen on
        print(f"quickstart: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=_db_file, help="SQLite file to keep (default: a temporary one)")
    parser.add_argument("--port", type=int, default=0, help="port for the server (default: any free)")
    parser.add_argument("--keep-serving", action="store_true",
                        help="keep the server (and its page) running until Ctrl-C")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        db = args.db or Path(scratch) / "events.sqlite3"
        with LocalServer(db, port=args.port) as server:
            print(f"Local Trubrics-compatible server on {server.url} (db: {db})")
            run_chat_app(server.url, spool=Path(scratch) / "spool")
            print_store(server)
            print_feedback(server)
            if not args.keep_serving:
                print("\nTo look at these in the page, run it again with --keep-serving "
                      "(add --db chat.sqlite3 to keep the data).")
            if args.keep_serving:
                print(f"\nThe page: {server.url}/   (Ctrl-C stops)")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
