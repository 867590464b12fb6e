"""Does ``fold_pending`` want per-table autovacuum settings? Its size and a read's check, measured.

    python benchmarks/bench_fold_pending_vacuum.py                  # 150 s, 10 batches/s per store
    python benchmarks/bench_fold_pending_vacuum.py --seconds 300 --rate 20

Two stores in two databases of one throwaway cluster (tests/postgres_cluster.py, autovacuum as
shipped: a visit per database per ``autovacuum_naptime``, 1 min) ingest side by side at the same
steady rate, batches of 100 as ``serve`` writes them (a fold every 5,000 events). One has
``fold_pending`` set to ``autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0,
autovacuum_vacuum_cost_delay = 0``. Every 5 s: the table's pages, its dead rows, autovacuum's
visits so far, and the median of 5 runs of a read's ``SELECT EXISTS (SELECT 1 FROM fold_pending)``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TUNED = ("ALTER TABLE fold_pending SET (autovacuum_vacuum_threshold = 200, "
         "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 0)")
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def ingest(url: str, seconds: float, rate: float, samples: list[tuple[float, ...]]) -> None:
    import psycopg

    from trubrics_otel.server import Store

    store, n = Store(url), 0
    with psycopg.connect(url, autocommit=True) as monitor:
        start = time.monotonic()
        next_sample = start + 5
        while time.monotonic() - start < seconds:
            batch = []
            for _ in range(100):
                n += 1
                batch.append({"user_id": f"u{n % 50}", "event": "View",
                              "timestamp": (T0 + dt.timedelta(seconds=n)).isoformat(),
                              "properties": {"$trace_id": f"{n:032x}", "$span_id": f"{n:016x}"}})
            store.insert(batch)
            if time.monotonic() >= next_sample:
                next_sample += 5
                times = []
                for _ in range(5):
                    began = time.perf_counter()
                    monitor.execute("SELECT EXISTS (SELECT 1 FROM fold_pending)").fetchone()
                    times.append((time.perf_counter() - began) * 1e3)
                pages, dead, visits = monitor.execute(
                    "SELECT pg_relation_size('fold_pending') / 8192, n_dead_tup, autovacuum_count "
                    "FROM pg_stat_user_tables WHERE relname = 'fold_pending'").fetchone()
                samples.append((pages, dead, visits, statistics.median(times)))
            time.sleep(max(0.0, start + n / 100 / rate - time.monotonic()))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--rate", type=float, default=10, help="batches of 100 per second, per store")
    args = parser.parse_args()
    import postgres_cluster
    import psycopg

    from trubrics_otel.server import Store

    with postgres_cluster.PostgresCluster() as cluster:
        urls = {"as shipped": cluster.create_database(), "tuned": cluster.create_database()}
        for name, url in urls.items():
            store = Store(url)
            store.count()  # migrated
            store.close()
            if name == "tuned":
                with psycopg.connect(url, autocommit=True) as c:
                    c.execute(TUNED)
        found: dict[str, list[tuple[float, ...]]] = {name: [] for name in urls}
        threads = [threading.Thread(target=ingest, args=(url, args.seconds, args.rate, found[name]))
                   for name, url in urls.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for name, samples in found.items():
        print(f"{name:>10}: max {max(s[0] for s in samples):.0f} pages, max {max(s[1] for s in samples)} dead rows, "
              f"{samples[-1][2]} autovacuum visits; a read's check: median "
              f"{statistics.median(s[3] for s in samples):.3f} ms, max {max(s[3] for s in samples):.3f} ms")


if __name__ == "__main__":
    main()
