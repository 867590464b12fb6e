"""The SQLite store's CPU per event, in all and by SQL statement (in-process, no HTTP).

    python benchmarks/bench_store_statements.py                 # LLM events, batches of 100
    python benchmarks/bench_store_statements.py --kind track --batch 200
    python benchmarks/bench_store_statements.py --compare /tmp/base   # another copy's store, same events

The LLM events are ``bench_server_intake``'s (prompts and answers of 200-1,500 characters, 500
users, 2,000 threads); ``track`` events are the peer benchmark's payloads. They are validated
as the ingestion API does, then ``Store.insert`` runs in batches into a fresh SQLite file
after 400 warm-up events. CPU time is this process's (``time.process_time``): the rows,
every statement, the commit and its WAL writes. ``--statements`` times each statement (the
timing wrapper adds its own cost to the total). ``--pages`` counts the pages each batch of the
last 1,000 events writes to the WAL (checkpoints held off meanwhile), by table or index.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers"), str(HERE.parent / "tests")]


def payloads(kind: str, n: int) -> list[dict]:
    if kind == "llm":
        from bench_server_intake import traces

        return traces(n // 2)[1]
    from peers import make_payload

    return [{"user_id": p["user_id"], "event": p["event"], "timestamp": "2026-12-04T12:00:00.123456Z",
             "properties": {**p["properties"], "$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}
            for i, p in enumerate(make_payload("track", i) for i in range(n))]


def wal_pages(path: str, connection, batches: int) -> None:
    """Print the WAL's frames per batch by the b-tree each page belongs to (``dbstat``)."""
    import struct

    size = connection.execute("PRAGMA page_size").fetchone()[0]
    owner = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    data = Path(f"{path}-wal").read_bytes()
    frames = [struct.unpack(">I", data[at:at + 4])[0] for at in range(32, len(data) - size, size + 24)]
    written = collections.Counter(owner.get(page, "(free list)") for page in frames)
    print(f"{len(frames) / batches:6.1f} WAL pages of {size:,} bytes per batch "
          f"({len(frames) * size / batches / 1024:,.0f} KB), last {batches} batches:")
    for name, count in written.most_common(12):
        print(f"{count / batches:6.1f}  {name}")


def run(kind: str, n: int, batch: int, statements: bool, pages: bool = False) -> None:
    import sqlite3

    import trubrics_otel

    from trubrics_otel.server.store import Store
    from trubrics_otel.server.validation import EVENT, LLM_EVENT, validate_batch

    events = payloads(kind, n)
    good: list[dict] = []
    for i in range(0, len(events), 100):
        valid, errors = validate_batch(events[i:i + 100], LLM_EVENT if kind == "llm" else EVENT)
        assert not errors, errors[:1]
        good += valid
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

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/events.sqlite3")
        insert(store, good[:400])
        if statements:
            from trubrics_otel.server.store import sqlite as engine

            engine.SQLiteConnection.execute = timed(sqlite3.Connection.execute)
            engine.SQLiteConnection.executemany = timed(sqlite3.Connection.executemany)
        counted = len(good) - 1000 if pages else len(good)  # from here, checkpoints held off
        started = time.process_time()
        for i in range(400, len(good), batch):
            if counted <= i < counted + batch:
                with store.connection() as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    connection.execute("PRAGMA wal_autocheckpoint = 0")
            insert(store, good[i:i + batch])
        took = time.process_time() - started
        if pages:
            with store.connection() as connection:
                wal_pages(f"{tmp}/events.sqlite3", connection, -(-1000 // batch))
        stored = store.count()
        store.close()
    rest = len(good) - 400
    assert stored["events"] + stored["llm_events"] == len(good), stored
    print(f"{took / rest * 1e6:6.1f} µs per {kind} event in Store.insert ({rest:,} events, batches of {batch}; "
          f"{Path(trubrics_otel.__file__).parent.parent})")
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
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR",
                        help="also run DIR/trubrics_otel's store (a baseline), alternating, 3 rounds")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner or not args.compare:
        run(args.kind, args.events, args.batch, args.statements, args.pages)
        return
    for _ in range(3):
        for package in (None, *args.compare):
            inner = [sys.executable, __file__, "--inner", "--kind", args.kind, "--events", str(args.events),
                     "--batch", str(args.batch)]
            if package:  # that copy first on the path, this editable install's finder set aside
                inner[1:2] = ["-c", _FROM_DIR.format(package, __file__)]
            print(f"{package or 'this'}: ", end="", flush=True)
            subprocess.run(inner, check=True)


_FROM_DIR = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)];"
             " sys.path.insert(0, {!r}); sys.argv[0] = {!r}; runpy.run_path(sys.argv[0], run_name='__main__')")

if __name__ == "__main__":
    main()
