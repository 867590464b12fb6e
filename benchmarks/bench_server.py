"""The local server's read side at scale: every page query and ``stats`` call, timed.

    python benchmarks/bench_server.py                       # 1,000,000 events, 10,000 users
    python benchmarks/bench_server.py --events 100000 --users 1000 --db /tmp/bench.sqlite3

Generates a realistic store (users come back in sessions; a session is a few page views, a
chat thread of LLM turns, sometimes feedback on the thread; 30 days), loads it through
``Store.insert`` in large batches (one transaction each), then times each query the page and
the CLI make (through :class:`ReadAPI`, without HTTP), best of ``--rounds``, and the ingest
rate in batches of 100 into the full store against an empty one. An existing ``--db`` with
the right size is reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from trubrics_otel.server.store import Store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4")
WORDS = ("invoice refund password export recipe dinner flight hotel budget report chart error "
         "upgrade plan billing account login team invite csv pdf summary translate email").split()


def generate(events: int, users: int, seed: int = 1) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    plain: list[dict] = []
    llm: list[dict] = []
    n = 0
    while n < events:
        user = f"user-{rng.randrange(users):05d}"
        moment = T0 + dt.timedelta(seconds=rng.uniform(0, 30 * 86400))
        thread = f"thread-{n}"
        for i in range(rng.randint(4, 16)):
            moment += dt.timedelta(seconds=rng.expovariate(1 / 90))
            span = f"{n:016x}"
            ids = {"$trace_id": f"{n // 8:032x}", "$span_id": span}
            roll = rng.random()
            if roll < 0.5:
                model = rng.choice(MODELS)
                words = " ".join(rng.choice(WORDS) for _ in range(6))
                props: dict[str, Any] = {**ids, "model": model, "input_tokens": rng.randint(20, 900),
                                         "output_tokens": rng.randint(5, 400),
                                         "cost_usd": round(rng.uniform(0.0001, 0.01), 6)}
                if rng.random() < 0.02:
                    props["error.type"] = "RateLimitError"
                llm.append({"user_id": user, "prompt": f"{words} #{n}", "generation": f"Answer about {words}",
                            "thread_id": thread, "latency": rng.lognormvariate(0, 0.6),
                            "timestamp": moment.isoformat(), "properties": props})
            else:
                name = "Thumbs up" if roll < 0.55 else rng.choice(("Page view", "Page view", "Search", "Export"))
                if name == "Thumbs up":
                    ids["$thread_id"] = thread
                plain.append({"user_id": user, "event": name, "timestamp": moment.isoformat(),
                              "properties": {**ids, "page": f"/p/{rng.randrange(50)}"}})
            n += 1
    return plain, llm


def load(store: Store, plain: list[dict], llm: list[dict], chunk: int = 100_000) -> float:
    started = time.perf_counter()
    for start in range(0, max(len(plain), len(llm)), chunk):
        store.insert(plain[start:start + chunk], llm[start:start + chunk])
    return time.perf_counter() - started


def ingest_rate(store: Store, seed: int, batches: int = 50) -> float:
    plain, llm = generate(batches * 100, 500, seed=seed)
    mixed = [([e], []) for e in plain] + [([], [e]) for e in llm]
    random.Random(seed).shuffle(mixed)
    started = time.perf_counter()
    for start in range(0, len(mixed), 100):
        group = mixed[start:start + 100]
        store.insert([e for p, _ in group for e in p], [e for _, l in group for e in l])
    return len(mixed) / (time.perf_counter() - started)


def timed(api: Any, rounds: int, path: str, **params: str) -> tuple[float, Any, dict]:
    best, body, headers = float("inf"), None, {}
    for _ in range(rounds):
        started = time.perf_counter()
        status, body, _, headers = api.handle(path, params, None)
        best = min(best, time.perf_counter() - started)
        assert status == 200, (path, params, status, body)
    return best, body, headers


def read_checks(api: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(label, path, parameters) of every query the page and the CLI make, aimed at rows of
    ``api``'s store: a sample user, a session and a thread 20 pages back, a rare prompt."""
    _, events, headers = timed(api, 1, "/api/events", limit="50")
    old_cursor = headers["X-Next-Before"]
    for _ in range(20):  # page back 20 pages of 200
        _, _, headers = timed(api, 1, "/api/events", limit="200", before=old_cursor)
        old_cursor = headers["X-Next-Before"]
    sample = events[0]
    _, old_page, _ = timed(api, 1, "/api/events", limit="1", before=old_cursor)
    old = old_page[0]
    rare = next(e for e in events if e["kind"] == "llm")["prompt"].split()[-1]  # "#<n>": one prompt
    return [
        ("events, newest 50", "/api/events", {"limit": "50"}),
        ("events, page 21 (cursor)", "/api/events", {"limit": "50", "before": old_cursor}),
        ("events of a user", "/api/events", {"user": sample["user_id"]}),
        ("events named 'Export'", "/api/events", {"event": "Export", "limit": "50"}),
        ("events of a model", "/api/events", {"model": "gpt-4o-mini", "limit": "50"}),
        ("LLM events, last 7 days", "/api/events", {"kind": "llm", "since": "2026-01-24", "limit": "50"}),
        ("search, a common word", "/api/events", {"q": "refund", "limit": "50"}),
        ("search, a rare prompt", "/api/events", {"q": rare, "limit": "50"}),
        ("events of an old session", "/api/events", {"session": old["session_id"], "limit": "200"}),
        ("sessions, all users", "/api/sessions", {"limit": "50"}),
        ("sessions of a user", "/api/sessions", {"user": sample["user_id"]}),
        ("users", "/api/users", {"limit": "100"}),
        ("users, search", "/api/users", {"q": "user-00", "limit": "100"}),
        ("user profile", f"/api/users/{sample['user_id']}", {}),
        ("threads", "/api/threads", {"limit": "100"}),
        ("threads of a user", "/api/threads", {"user": sample["user_id"]}),
        ("one thread + feedback", f"/api/threads/{old['thread_id'] or sample['thread_id']}", {}),
        ("trace tree", f"/api/traces/{old['trace_id']}", {}),
        ("filters", "/api/filters", {}),
        ("counts (polled)", "/api/stats", {}),
        ("stats: 30 days by day", "/api/analytics", {"by": "day"}),
        ("stats: by hour, 7 days", "/api/analytics", {"by": "hour", "since": "2026-01-24"}),
        ("stats: by week", "/api/analytics", {"by": "week"}),
        ("stats: --model", "/api/analytics", {"model": "gpt-4o"}),
        ("stats: --event", "/api/analytics", {"event": "Thumbs up"}),
        ("stats: --user", "/api/analytics", {"user": sample["user_id"]}),
        ("dashboard: by day, by model", "/api/analytics", {"by": "day", "by_model": "1"}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/trubrics-bench-server.sqlite3"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    store = Store(args.db)
    if store.count()["events"] + store.count()["llm_events"] < args.events:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        store = Store(args.db)
        started = time.perf_counter()
        plain, llm = generate(args.events, args.users)
        print(f"generated {len(plain) + len(llm):,} events in {time.perf_counter() - started:.1f} s")
        seconds = load(store, plain, llm)
        print(f"loaded in {seconds:.1f} s ({(len(plain) + len(llm)) / seconds:,.0f} events/s, one transaction "
              f"per 100k); {args.db.stat().st_size / 1e6:,.0f} MB")
    counts = store.count()
    print(f"store: {counts['events'] + counts['llm_events']:,} events, {counts['users']:,} users")

    from trubrics_otel.server.read_api import ReadAPI  # here: ingest_rate() also runs against older versions

    api = ReadAPI(store, session_timeout_s=1800, api_key=None, needs_key=False)
    checks = read_checks(api)
    print(f"\n{'query':36} {'best of ' + str(args.rounds):>12}  rows")
    worst = 0.0
    for label, path, params in checks:
        seconds, body, _ = timed(api, args.rounds, path, **params)
        worst = max(worst, seconds)
        size = len(body) if isinstance(body, list) else len(body.get("buckets", body.get("roots", [0])))
        print(f"{label:36} {seconds * 1000:9.0f} ms  {size}")
    print(f"slowest: {worst * 1000:.0f} ms")

    fresh = Store(args.db.with_name(args.db.stem + "-empty.sqlite3"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{fresh.path}{suffix}").unlink(missing_ok=True)
    fresh.insert(*generate(100, 10, seed=4))  # create it first: the rate is of inserts alone
    empty_rate = max(ingest_rate(fresh, seed=seed) for seed in (2, 3, 5))  # the first round warms up
    full_rate = max(ingest_rate(store, seed=seed) for seed in (6, 7, 8))
    print(f"\ningest, batches of 100, best of 3: {empty_rate:,.0f} events/s into a small store, "
          f"{full_rate:,.0f} events/s into the full one")


if __name__ == "__main__":
    main()
