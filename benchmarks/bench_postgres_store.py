"""The PostgreSQL store's insert rate and CPU per event, in-process (no HTTP), one or more writers.

    python benchmarks/bench_postgres_store.py                       # track and LLM, 1 and 4 threads
    python benchmarks/bench_postgres_store.py --threads 4 --modes llm
    python benchmarks/bench_postgres_store.py --compare /tmp/base   # another copy's store, alternating
    python benchmarks/bench_postgres_store.py --modes long --threads 1   # LLM events of ~6 KB of text

``Store.insert`` (the events, the summary and analytics tables, as ``serve`` writes them) takes
20,000 of the peer benchmark's payloads (``bench_server_ingest``'s wire events) in batches of
100 into a fresh database of a throwaway cluster (tests/postgres_cluster.py), from ``--threads``
threads sharing the store's pool: several threads stand for several workers, whose batches
contend for the fold's lock. ``long``: LLM events whose prompt carries ~5 KB of context (words
drawn at random), rows PostgreSQL compresses as it stores them (over ~2 KB; the others are not). Timed until a read answers (it folds what is pending). Printed: events/s, and the CPU per event of this process and of
PostgreSQL (its backends, with psutil), which move far less than rates on a shared machine.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers"), str(HERE.parent / "tests")]

from other_copy import command  # noqa: E402

N = 20_000
BATCH = 100
WORDS = [f"{a}{b}{c}" for a in ("re", "de", "con", "pro", "in", "ex") for b in "aeiou" for c in ("nd", "st", "rm", "lt", "ck")]


def long_event(i: int, now: str) -> dict:
    """LLM event ``i`` with ~5 KB of context in its prompt, as prose compresses (not one
    sentence repeated)."""
    from bench_server_ingest import wire_event

    event = wire_event("llm", i, now)
    rng = random.Random(i)
    event["prompt"] += " " + " ".join(rng.choice(WORDS) for _ in range(750))
    return event


def run(mode: str, threads: int) -> None:
    import postgres_cluster
    import psutil
    from bench_server_ingest import cpu_s, wire_event

    import trubrics_otel.server  # noqa: F401  (registers the analytics tables' hook)
    from trubrics_otel.server.store import Store

    with postgres_cluster.PostgresCluster() as cluster:
        postgres = psutil.Process(int((cluster.data / "postmaster.pid").read_text().split()[0]))
        store = Store(cluster.create_database(), session_timeout_s=1800)
        store.count()  # created before the clock starts
        now = "2026-12-05T01:00:00+00:00"
        make = long_event if mode == "long" else lambda i, now: wire_event(mode, i, now)
        batches = [[make(i, now) for i in range(k, k + BATCH)] for k in range(0, N, BATCH)]

        def write(mine: list[list[dict]]) -> None:
            for batch in mine:
                store.insert(batch) if mode == "track" else store.insert((), batch)

        writers = [threading.Thread(target=write, args=(batches[k::threads],)) for k in range(threads)]
        start, cpu, pg = time.perf_counter(), time.process_time(), cpu_s([postgres])
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        counted = store.count()  # a read: first folds what is pending (a deferred fold's cost, counted)
        took = time.perf_counter() - start
        python_us, postgres_us = ((time.process_time() - cpu) * 1e6 / N, (cpu_s([postgres]) - pg) * 1e6 / N)
        assert counted["events"] + counted["llm_events"] == N
        store.close()
    print(f"{mode:5} x{threads}: {N / took:7,.0f} events/s; CPU µs per event: "
          f"this process {python_us:3.0f}, PostgreSQL {postgres_us:3.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["track", "llm"], choices=["track", "llm", "long"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR",
                        help="also run DIR/trubrics_otel's store (a baseline), alternating")
    parser.add_argument("--inner", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        run(args.inner[0], int(args.inner[1]))
        return
    for mode in args.modes:
        for threads in args.threads:
            for package in (None, *args.compare):
                inner = [sys.executable, __file__, "--inner", mode, str(threads)]
                if package:  # that copy, not the editable install
                    inner[:2] = command(package, script=__file__)
                print(f"{package or 'this'}: ", end="", flush=True)
                subprocess.run(inner, check=True)


if __name__ == "__main__":
    main()
