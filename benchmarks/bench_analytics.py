"""The product analyses at scale: 1M events, 100k users, 200k threads, every analysis timed.

    python benchmarks/bench_analytics.py                     # 1,000,000 events (reuses --db)
    python benchmarks/bench_analytics.py --events 100000 --users 10000 --threads 20000

Generates eight weeks of users coming back (a thread = an app open, LLM turns on one of ten
topics, sometimes a score or a ``$feedback`` event; new users sign up through a funnel), loads
it through ``Store.insert`` (which keeps the analytics tables), then times each analysis as
the CLI and the read API run it (:func:`analytics.api.answer`), best of ``--rounds``; topics
are timed on a fresh fit and again when cached. Last, the ingest rate in batches of 100 with
the analytics tables kept against without them (their maintenance switched off).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from bench_server import ingest_rate  # the same ingest measurement as the server's benchmark
from trubrics_otel.server.analytics import api, schema
from trubrics_otel.server.store import Store

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)  # a Monday
WEEKS = 8
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4")
TOPICS = [t.split() for t in (
    "refund order money back return", "password reset login locked account", "invoice billing pdf vat receipt",
    "shipping parcel tracking delivery customs", "recipe dinner vegetarian cooking oven",
    "flight hotel booking trip cancel", "report chart quarterly revenue export", "translate email french spanish",
    "python error stacktrace bug function", "upgrade plan pricing team seats")]


def generate(events: int, users: int, threads: int, seed: int = 1) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    plain: list[dict] = []
    llm: list[dict] = []
    first = [rng.uniform(0, WEEKS * 7 * 86400) for _ in range(users)]
    per_thread = events / threads
    for n in range(threads):
        u = n % users if n < users else rng.randrange(users)
        user = f"user-{u:06d}"
        offset = first[u] if n < users else first[u] + rng.expovariate(1 / (10 * 86400))
        moment = T0 + dt.timedelta(seconds=offset)
        thread = f"thread-{n}"
        if n < users:
            for k, step in enumerate(("Sign up", "Create project", "Upgrade")):
                if k and rng.random() < 0.4:
                    break
                moment += dt.timedelta(minutes=k * rng.choice((1, 60, 3000)))
                plain.append({"user_id": user, "event": step, "timestamp": moment.isoformat(), "properties": {}})
        plain.append({"user_id": user, "event": "Open app", "timestamp": moment.isoformat(),
                      "properties": {"$thread_id": thread}})
        topic = rng.choice(TOPICS)
        for turn in range(max(1, round(rng.uniform(0.5, 2 * per_thread - 2.5)))):
            moment += dt.timedelta(seconds=rng.expovariate(1 / 60))
            i = len(llm)
            props: dict[str, Any] = {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}", "$thread_id": thread,
                                     "model": rng.choice(MODELS), "cost_usd": round(rng.uniform(1e-4, 1e-2), 6),
                                     "time_to_first_token": round(rng.uniform(0.1, 2), 3)}
            if rng.random() < 0.03:
                props["error.type"] = "RateLimitError"
            words = " ".join(rng.sample(topic, 3) + [rng.choice(TOPICS)[0]])
            llm.append({"user_id": user, "prompt": f"{words} {i}", "generation": "ok", "timestamp": moment.isoformat(),
                        "latency": rng.lognormvariate(0, 0.5), "properties": props})
            if rng.random() < 0.08:
                plain.append({"user_id": user, "event": "Score", "timestamp": moment.isoformat(), "properties": {
                    "observation_type": "score", "name": "helpful", "value": rng.choice((0, 1)),
                    "trace_id": f"{i:032x}", "observation_id": f"{i:016x}", "$thread_id": thread}})
            elif rng.random() < 0.05:
                plain.append({"user_id": user, "event": "Rated", "timestamp": moment.isoformat(),
                              "properties": {"$thread_id": thread, "$feedback": rng.random() < 0.7}})
    return plain, llm


CASES = [("active day", {"period": "day"}), ("active week", {"period": "week"}),
         ("active month", {"period": "month"}), ("active week --model", {"period": "week", "model": "gpt-4o"}),
         ("retention week", {"period": "week"}), ("retention day --since 14d of data",
                                                   {"period": "day", "since": "2026-02-16T00:00:00Z"}),
         ("retention week --event Open app", {"period": "week", "event": "Open app"}),
         ("funnel 3 steps within 7d", {"steps": "Sign up,Create project,Upgrade", "within": "7d"}),
         ("funnel breakdown model", {"steps": "Sign up,Open app", "within": "1d", "breakdown": "model"}),
         ("feedback", {}), ("feedback --model", {"model": "gpt-4o"}), ("conversations", {}),
         ("conversations --user", {"user": "user-000042"})]
"""(label, parameters): every analysis but topics; the label's first word names it."""


def timed(label: str, rounds: int, call: Any) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    print(f"  {label:<52} {best * 1000:9.1f} ms")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("/tmp/trubrics-bench-analytics.sqlite3"))
    args = parser.parse_args()
    store = Store(args.db)
    count = store.count()
    if count["events"] + count["llm_events"] < args.events * 0.9:
        args.db.unlink(missing_ok=True)
        store = Store(args.db)
        plain, llm = generate(args.events, args.users, args.threads)
        started = time.perf_counter()
        for start in range(0, max(len(plain), len(llm)), 200):  # small: derived.threads is quadratic in a batch
            store.insert(plain[start:start + 200], llm[start:start + 200])
        print(f"loaded {len(plain) + len(llm):,} events in {time.perf_counter() - started:.0f} s")
        count = store.count()
    print(f"store: {count['events'] + count['llm_events']:,} events ({count['llm_events']:,} LLM), "
          f"{count['users']:,} users")
    with store.connection() as c:
        threads, prompts = c.execute("SELECT COUNT(*), SUM(turns) FROM threads").fetchone()
    print(f"       {threads:,} threads, {prompts:,} prompts\n")
    worst = 0.0
    for label, params in CASES:
        name = label.split()[0]
        worst = max(worst, timed(f"{name} {label.split(' ', 1)[1] if ' ' in label else ''}", args.rounds,
                                 lambda: api.answer(store, name, params)))
    fit = timed("topics (fresh fit of every prompt)", 1, lambda: api.answer(store, "topics", {"refit": "1"}))
    cached = timed("topics (cached, incremental)", args.rounds, lambda: api.answer(store, "topics", {}))
    print(f"\nslowest analysis: {worst * 1000:.0f} ms (target < 1000); topics fit {fit:.1f} s for "
          f"{prompts:,} prompts (target < 10 s per 100k), cached {cached * 1000:.0f} ms")
    with_tables = ingest_rate(Store(args.db.with_suffix(".ingest1")), seed=7)
    keep, schema.apply = schema.apply, lambda db, after_id: None
    try:
        without = ingest_rate(Store(args.db.with_suffix(".ingest2")), seed=7)
    finally:
        schema.apply = keep
    for suffix in (".ingest1", ".ingest2"):
        for extra in ("", "-wal", "-shm"):
            Path(str(args.db.with_suffix(suffix)) + extra).unlink(missing_ok=True)
    print(f"ingest, batches of 100: {with_tables:,.0f} events/s with the analytics tables, "
          f"{without:,.0f} without ({with_tables / without:.2f}x)")


if __name__ == "__main__":
    main()
