"""The funnels of ``bench_analytics.py``'s store, timed in wall and CPU time, on SQLite or PostgreSQL.

    python benchmarks/bench_analytics.py --db /tmp/funnel-bench.sqlite3     # generate once (~12 min)
    python benchmarks/bench_funnels.py --db /tmp/funnel-bench.sqlite3
    python benchmarks/bench_funnels.py --db postgresql://user@127.0.0.1:5432/bench   # the same events

Each case runs as :func:`analytics.api.answer` runs it (SQLite through a memory map), best
of ``--rounds``. CPU time is this process's (SQLite runs in it) plus, for a PostgreSQL server on
this machine, the backend's (read from ``/proc``): on a shared machine it moves far less than
wall time. The funnel figures of docs/performance.md come from this command.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from trubrics_otel.server.analytics import api
from trubrics_otel.server.store import Store

CASES = [("3 steps within 7d", {"steps": "Sign up,Create project,Upgrade", "within": "7d"}),
         ("3 steps since 14d of data", {"steps": "Sign up,Create project,Upgrade", "within": "7d",
                                        "since": "2026-02-16T00:00:00Z"}),
         ("breakdown model", {"steps": "Sign up,Open app", "within": "1d", "breakdown": "model"}),
         ("2 starts a user, breakdown property", {"steps": "Open app,Score", "within": "1d",
                                                   "breakdown": "property:name"})]


def _backend_cpu(connection: Any) -> float:
    """The PostgreSQL backend's CPU seconds, when it runs here (0 otherwise, and for SQLite)."""
    if getattr(getattr(connection, "dialect", None), "name", "sqlite") != "postgresql":
        return 0.0
    pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/trubrics-bench-analytics.sqlite3", help="a SQLite path or PostgreSQL URL")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = Store(args.db)
    with store.connection() as connection:
        print(f"{store.engine.name}: {connection.execute('SELECT COUNT(*) FROM events').fetchone()[0]:,} events\n")
    for label, params in CASES:
        wall = cpu = float("inf")
        for _ in range(args.rounds):
            with store.reader() as connection:
                if store.engine.name == "sqlite":
                    connection.execute(f"PRAGMA mmap_size = {api.READ_MMAP_BYTES}")
                backend, own, started = _backend_cpu(connection), time.process_time(), time.perf_counter()
                answer = api.ANALYSES["funnel"](connection, api.query_from(params), params)
                wall = min(wall, time.perf_counter() - started)
                cpu = min(cpu, time.process_time() - own + _backend_cpu(connection) - backend)
        users = [s["users"] for s in answer["steps"]]
        print(f"  funnel {label:<38} wall {wall * 1000:7.0f} ms   cpu {cpu * 1000:7.0f} ms   users {users}")
    store.close()


if __name__ == "__main__":
    main()
