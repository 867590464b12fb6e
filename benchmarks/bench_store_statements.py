"""The SQLite store's CPU per event, in all and by SQL statement (in-process, no HTTP).

    python benchmarks/bench_store_statements.py                 # LLM events, batches of 100
    python benchmarks/bench_store_statements.py --kind track --batch 200
    python benchmarks/bench_store_statements.py --compare /tmp/base   # another copy's store, same events
    python benchmarks/bench_store_statements.py --prefill 100000 --pages   # into a grown store
    python benchmarks/bench_store_statements.py --store /tmp/trubrics-bench-reads/server-1000000.sqlite3 --ingest

The LLM events are ``bench_server_intake``'s (prompts and answers of 200-1,500 characters, 500
users, 2,000 threads); ``track`` events are the peer benchmark's payloads. They are validated
as the ingestion API does, then ``Store.insert`` runs in batches into a fresh SQLite file
after 400 warm-up events. CPU time is this process's (``time.process_time``): the rows,
every statement, the commit and its WAL writes, and the fold of the events still pending at
the end (a read); the deferred fold's own share (its transactions: the statements of the
summary and analytics tables and the full-text index, their commit) is printed apart.
``--fold-rows N``: SQLite folds once N events are pending (default: the store's).
``--prompts varied``: the texts' words from a natural language's vocabulary (the full-text
index's real cost), not 20 words. ``--statements`` times each statement (the timing wrapper adds its own cost to the total). ``--pages`` counts the pages each batch of the
last ``--window`` events (1,000; or the last batch, if larger) writes to the WAL (checkpoints
held off meanwhile), by table or index, the fold of those events included: ``--window 5000``
counts a fold of the store's size (5,000 events), not of 1,000.

``--prefill N`` measures a grown store instead: N events of ``--kind`` spread as a product's
are (``--users`` users, ``--threads`` threads each owned by one user, four models, 30 days,
random-looking trace and span ids,
prompts and answers of 200-1,500 characters) are loaded first, in transactions of 10,000, and
the measured events continue that spread (their own ids, later timestamps). The loaded file is
kept in ``--cache`` (one per N, users, threads, kind and ``--prompts``; delete it after a schema change;
``--compare``'s copies keep theirs in a folder of it each) and
copied for each run. CPU is then also split into user and system time (``os.times``).

``--store FILE`` measures into a copy of that store file instead (``bench_reads.py``'s million
events, say, in whatever page size it was made), the events continuing ``--prefill``'s spread
after as many as it holds. ``--compare`` runs each copy into the same file.

``--ingest`` measures the ingest transactions alone (what a batch waits for before its answer:
the rows, the ``events`` INSERT, the COMMIT and its WAL checkpoints): no fold runs until the
timing ends (the store's fold threshold raised for the run), then every event is folded and
counted, untimed.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers"), str(HERE.parent / "tests")]

from other_copy import command  # noqa: E402


def payloads(kind: str, n: int) -> list[dict]:
    if kind == "llm":
        from bench_server_intake import traces

        return traces(n // 2)[1]
    from peers import make_payload

    return [{"user_id": p["user_id"], "event": p["event"], "timestamp": "2026-12-04T12:00:00.123456Z",
             "properties": {**p["properties"], "$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}
            for i, p in enumerate(make_payload("track", i) for i in range(n))]


MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gpt-4.1")
DAY_US = 86_400_000_000
START_US = 1_762_214_400_000_000  # 2025-11-04, 30 days before the bench's other events


def spread(kind: str, start: int, n: int, users: int, threads: int, days_for: int) -> list[dict]:
    """Events ``start`` to ``start + n`` of a product with ``users`` users and ``threads``
    threads (thread j belongs to user j % users), random among them, in time order:
    ``days_for`` events span 30 days."""
    from bench_server_intake import text

    rng = random.Random(start)
    texts = [text(random.Random(i)) for i in range(400)]
    step = 30 * DAY_US // max(days_for, 1)
    events = []
    for i in range(start, start + n):
        thread = rng.randrange(threads)
        user, model = f"user-{thread % users}", rng.choice(MODELS)
        moment = START_US + i * step
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment // 1_000_000)) + f".{moment % 1_000_000:06d}Z"
        ids = {"$trace_id": _hex(i // 2, 32), "$span_id": _hex(i, 16)}
        if kind == "llm":
            events.append({"user_id": user, "prompt": rng.choice(texts), "generation": rng.choice(texts),
                           "assistant_id": model, "thread_id": f"thread-{thread}", "latency": 0.5 + rng.random(),
                           "timestamp": stamp, "properties": {
                               **ids, "model": model, "gen_ai.usage.input_tokens": rng.randint(50, 400),
                               "gen_ai.usage.output_tokens": rng.randint(50, 400), "$source": "bench"}})
        else:
            events.append({"user_id": user, "event": rng.choice(("Signed up", "Viewed page", "Sent message",
                                                                 "Upgraded plan", "Exported report")),
                           "timestamp": stamp, "properties": {**ids, "plan": rng.choice(("free", "pro")),
                                                             "country": rng.choice(("FR", "US", "DE")),
                                                             "$thread_id": f"thread-{thread}"}})
    return events


def _hex(n: int, digits: int) -> str:
    """A random-looking id made from ``n`` (as OpenTelemetry's are: an index keyed by them takes
    each new event on a random page, not at its end)."""
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=digits // 2).hexdigest()


def validated(kind: str, events: list[dict]) -> list[dict]:
    from trubrics_otel.server.validation import EVENT, LLM_EVENT, validate_batch

    good: list[dict] = []
    for i in range(0, len(events), 100):
        valid, errors = validate_batch(events[i:i + 100], LLM_EVENT if kind == "llm" else EVENT)
        assert not errors, errors[:1]
        good += valid
    return good


def prefilled(kind: str, n: int, users: int, threads: int, cache: Path) -> Path:
    """A SQLite file holding ``n`` spread events (made once, kept in ``cache``)."""
    from trubrics_otel.server.store import Store

    from bench_server_intake import PROMPTS

    path = cache / f"{kind}-{n}-{users}u-{threads}t-random-ids{'' if PROMPTS == 'narrow' else '-' + PROMPTS}.sqlite3"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    store, started = Store(partial), time.monotonic()
    for at in range(0, n, 10_000):
        part = validated(kind, spread(kind, at, min(10_000, n - at), users, threads, n))
        store.insert(*(((), part) if kind == "llm" else (part, ())))
        print(f"\rprefill: {at + len(part):,} of {n:,} events, {time.monotonic() - started:.0f} s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with store.connection() as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    Path(f"{partial}-wal").unlink(missing_ok=True)
    partial.rename(path)
    return path


def wal_pages(path: str, connection, batches: int, events: int) -> None:
    """Print the WAL's frames per batch by the b-tree each page belongs to (``dbstat``)."""
    import struct

    size = connection.execute("PRAGMA page_size").fetchone()[0]
    owner = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    data = Path(f"{path}-wal").read_bytes()
    frames = [struct.unpack(">I", data[at:at + 4])[0] for at in range(32, len(data) - size, size + 24)]
    written = collections.Counter(owner.get(page, "(free list)") for page in frames)
    print(f"{len(frames) / batches:6.1f} WAL pages of {size:,} bytes per batch "
          f"({len(frames) * size / batches / 1024:,.0f} KB, {len(frames) / events:.2f} per event), "
          f"last {batches} batches:")
    for name, count in written.most_common():  # every b-tree of at least a page per batch
        if count >= batches:
            print(f"{count / batches:6.1f}  {name}")


def unfolded(store):
    """This thread's connection (the writer's), without the fold a read does first."""
    return store.engine._use(fold=False)


def run(kind: str, n: int, batch: int, statements: bool, pages: bool = False,
        prefill: int | None = None, users: int = 10_000, threads: int = 20_000,
        cache: Path = Path("/tmp/trubrics-bench-store"), fold_rows: int | None = None,
        ingest: bool = False, window_events: int = 1000, store_file: Path | None = None) -> None:
    import sqlite3

    import trubrics_otel

    from trubrics_otel.server.store import Store

    grown = 0 if prefill is None else prefill
    source = prefilled(kind, grown, users, threads, cache) if grown else None
    if store_file is not None:  # a given file: the events continue after as many as it holds
        held = sqlite3.connect(f"file:{store_file}?mode=ro", uri=True)
        grown, prefill, source = held.execute("SELECT COUNT(*) FROM events").fetchone()[0], 0, store_file
        held.close()
    good = validated(kind, payloads(kind, n) if prefill is None else spread(kind, grown, n, users, threads, grown))
    spent: collections.Counter[str] = collections.Counter()

    def timed(method):
        def call(self, sql, *args):
            started = time.process_time()
            try:
                return method(self, sql, *args)
            finally:
                spent[" ".join(sql.split())[:72]] += time.process_time() - started
        return call

    def insert(store, part):
        store.insert(*(((), part) if kind == "llm" else (part, ())))

    from trubrics_otel.server.store import sqlite as engine

    if fold_rows is not None or ingest:
        engine.FOLD_ROWS = 10**12 if ingest else fold_rows
    folds = [0, 0.0]  # how many, CPU seconds

    def timed_fold(method):
        def fold(self, *args, **kwargs):
            started = time.process_time()
            try:
                return method(self, *args, **kwargs)
            finally:
                folds[0] += 1
                folds[1] += time.process_time() - started
        return fold

    engine.SQLiteEngine._fold = timed_fold(engine.SQLiteEngine._fold)
    with tempfile.TemporaryDirectory() as tmp:
        if source:
            shutil.copyfile(source, f"{tmp}/events.sqlite3")
        store = Store(f"{tmp}/events.sqlite3")
        insert(store, good[:400])
        if statements:
            from trubrics_otel.server.store import sqlite as engine

            engine.SQLiteConnection.execute = timed(sqlite3.Connection.execute)
            engine.SQLiteConnection.executemany = timed(sqlite3.Connection.executemany)
        window = -(-max(window_events, batch) // batch) * batch  # whole batches, at least --window events
        counted = len(good) - window if pages else len(good)  # from here, checkpoints held off
        times = os.times()
        folds[:] = [0, 0.0]  # the warm-up's events are folded with the first measured ones
        started = time.process_time()
        for i in range(400, len(good), batch):
            if counted <= i < counted + batch:
                with unfolded(store) if ingest else store.connection() as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    connection.execute("PRAGMA wal_autocheckpoint = 0")
            insert(store, good[i:i + batch])
        if not ingest:
            store.count()  # a read: the events still pending are folded (SQLite's deferred fold), counted here
            store.engine.fold()  # and the text index (which may wait for a search or a chunk), counted here
        took = time.process_time() - started
        folded, fold_s = folds
        user_s, system_s = (after - before for after, before in zip(os.times()[:2], times[:2]))
        if pages:
            with unfolded(store) if ingest else store.connection() as connection:
                wal_pages(f"{tmp}/events.sqlite3", connection, window // batch, window)
        stored = store.count()
        with unfolded(store) as connection:
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        store.close()
    rest = len(good) - 400
    assert stored["events"] + stored["llm_events"] == len(good) + grown, stored
    alone = " (ingest alone)" if ingest else ""
    print(f"{took / rest * 1e6:6.1f} µs per {kind} event in Store.insert{alone} ({rest:,} events, batches of {batch}"
          + (f", into a store of {grown:,} events, {users:,} users, {threads:,} threads" if prefill is not None else "")
          + f"; pages of {page_size:,} bytes; {Path(trubrics_otel.__file__).parent.parent})")
    print(f"        user {user_s / rest * 1e6:.1f} + system {system_s / rest * 1e6:.1f} µs per event; "
          f"the deferred fold {fold_s / rest * 1e6:.1f} µs per event ({folded} folds)")
    for sql, seconds in spent.most_common(20):
        print(f"{seconds / rest * 1e6:6.1f}  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("llm", "track"), default="llm")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--statements", action="store_true", help="time each SQL statement")
    parser.add_argument("--pages", action="store_true", help="WAL pages per batch, by table or index "
                        "(the CPU figure then lacks the last 1,000 events' checkpoints)")
    parser.add_argument("--window", type=int, default=1000, metavar="N",
                        help="--pages counts the last N events' pages (their fold included)")
    parser.add_argument("--prefill", type=int, metavar="N",
                        help="first load N events spread over --users and --threads (a grown store)")
    parser.add_argument("--store", type=Path, metavar="FILE", help="measure into a copy of this store file")
    parser.add_argument("--users", type=int, default=10_000, help="users of --prefill's events")
    parser.add_argument("--threads", type=int, help="threads of --prefill's events (default: 2 per user)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/trubrics-bench-store"),
                        help="where prefilled files are kept between runs")
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR",
                        help="also run DIR/trubrics_otel's store (a baseline), alternating, 3 rounds")
    parser.add_argument("--fold-rows", type=int, metavar="N", help="SQLite folds once N events are pending")
    parser.add_argument("--ingest", action="store_true", help="time the ingest transactions alone (no fold)")
    parser.add_argument("--prompts", choices=("narrow", "varied"), default="narrow",
                        help="the LLM events' words: 20 (narrow) or a natural language's vocabulary (varied)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import bench_server_intake

    bench_server_intake.PROMPTS = args.prompts
    threads = args.threads or 2 * args.users
    if args.inner or not args.compare:
        run(args.kind, args.events, args.batch, args.statements, args.pages, args.prefill, args.users, threads,
            args.cache, args.fold_rows, args.ingest, args.window, args.store)
        return
    for _ in range(3):
        for package in (None, *args.compare):
            inner = [sys.executable, __file__, "--inner", "--kind", args.kind, "--events", str(args.events),
                     "--batch", str(args.batch), "--prompts", args.prompts]
            if args.prefill is not None:  # each copy's prefilled file its own: its schema may differ
                cache = args.cache / f"copy-{hashlib.sha256(str(package).encode()).hexdigest()[:8]}" if package else args.cache
                inner += ["--prefill", str(args.prefill), "--users", str(args.users), "--threads", str(threads),
                          "--cache", str(cache)]
            if args.store is not None:
                inner += ["--store", str(args.store)]
            if args.fold_rows is not None and not package:
                inner += ["--fold-rows", str(args.fold_rows)]
            if args.ingest:
                inner += ["--ingest"]
            if args.pages:
                inner += ["--pages", "--window", str(args.window)]
            if package:  # that copy, not the editable install
                inner[:2] = command(package, script=__file__)
            print(f"{package or 'this'}: ", end="", flush=True)
            subprocess.run(inner, check=True)


if __name__ == "__main__":
    main()
