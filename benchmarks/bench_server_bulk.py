"""Bulk loads: the per-event cost of one large transaction against batches of 100.

    python benchmarks/bench_server_bulk.py                      # SQLite and PostgreSQL, up to 100k
    python benchmarks/bench_server_bulk.py --sizes 10000 100000 1000000 --engines sqlite

Any bulk path (``migrate``, a bridge or Collector delivering big batches, a replayed spool)
writes large transactions; each must cost per event about what small batches cost (target:
at most ~1.5x). Each size loads a fresh store with ``bench_server.generate``'s events (threads
of 4-16 turns, users in sessions): the 100 row is the same count loaded in batches of 100.
PostgreSQL runs in a throwaway cluster (tests/postgres_cluster.py) when its binaries exist.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_server import generate  # noqa: E402

from trubrics_otel.server.store import Store  # noqa: E402


def load_us_per_event(location: str, events: int, transaction: int) -> float:
    """Microseconds per event to load ``events`` in transactions of ``transaction`` events."""
    plain, llm = generate(events, max(10, events // 100), seed=11)
    mixed = [("e", e) for e in plain] + [("l", e) for e in llm]
    store = Store(location)
    store.count()  # created (and migrated) before the clock starts
    started = time.perf_counter()
    for start in range(0, len(mixed), transaction):
        group = mixed[start:start + transaction]
        store.insert([e for k, e in group if k == "e"], [e for k, e in group if k == "l"])
    took = time.perf_counter() - started
    store.close()
    return took / len(mixed) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    cluster = None
    if "postgresql" in args.engines:
        import postgres_cluster

        reason = postgres_cluster.unavailable()
        if reason:
            print(f"postgresql skipped: {reason}")
            args.engines.remove("postgresql")
        else:
            cluster = postgres_cluster.PostgresCluster().__enter__()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            names = iter(range(1_000_000))

            def fresh(engine: str) -> str:
                return cluster.create_database() if engine == "postgresql" else f"{tmp}/{next(names)}.sqlite3"

            print(f"{'engine':11} {'events':>9} {'batches of 100':>16} {'one transaction':>16} {'ratio':>6}")
            for engine in args.engines:
                for size in args.sizes:
                    small = load_us_per_event(fresh(engine), size, 100)
                    large = load_us_per_event(fresh(engine), size, size)
                    print(f"{engine:11} {size:9,} {small:13.1f} µs {large:13.1f} µs {large / small:6.2f}",
                          flush=True)
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
