"""Every read: each read-API query and each analysis at a million events, SQLite and PostgreSQL
side by side.

    python benchmarks/bench_reads.py                       # both data sets, both engines, best of 3
    python benchmarks/bench_reads.py --only server --rounds 5
    python benchmarks/bench_reads.py --no-postgres          # SQLite alone

Two data sets, each generated once and kept in ``--dir`` for the next run (loading is the slow
part): ``server``, :mod:`bench_server`'s million events of 10,000 users over 30 days (the page's
and ``stats``' queries, through :class:`ReadAPI` without HTTP), and ``analytics``,
:mod:`bench_analytics`' 1.3 million rows of 100,000 users over eight weeks (every analysis but
topics, as the CLI and the read API run it). Each SQLite file is copied into a PostgreSQL
database with the store's own ``migrate`` copy (ids kept, summary tables folded in as ingestion
does), on a cluster this script keeps in ``--dir/pg`` (``initdb`` once, started on each run,
stopped at the end).

Each query runs ``--rounds`` times per engine; the best is printed, with the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import bench_analytics
import bench_server

from trubrics_otel.server.analytics import api as analyses
from trubrics_otel.server.read_api import ReadAPI
from trubrics_otel.server.store import Store
from trubrics_otel.server.store.copy import copy_events, source_timeout_s

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres_cluster  # noqa: E402  (the tests' throwaway cluster, kept here between runs)

TARGET_MS = {"server": 300, "analytics": 1000}


def sqlite_store(name: str, path: Path, events: int) -> Store:
    """The data set's SQLite file, generated and loaded when absent (or short)."""
    store = Store(path)
    counts = store.count()
    if counts["events"] + counts["llm_events"] >= events:
        return store
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path)
    started = time.perf_counter()
    if name == "server":
        bench_server.load(store, *bench_server.generate(events, events // 100))
    else:
        plain, llm = bench_analytics.generate(events, events // 10, events // 5)
        for start in range(0, max(len(plain), len(llm)), 200):
            store.insert(plain[start:start + 200], llm[start:start + 200])
    print(f"{name}: loaded SQLite in {time.perf_counter() - started:.0f} s", flush=True)
    return store


class Cluster(postgres_cluster.PostgresCluster):
    """The tests' cluster, in a directory kept between runs (created on the first)."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        os.rmdir(self.dir)
        self.dir, self.data = directory, directory / "data"

    def __enter__(self) -> Cluster:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            super().__enter__()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("shared_buffers = 512MB\n")
            self.restart()
            return self
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.port}\n")  # the last setting wins: a port free now
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop("fast")

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                c.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def postgres_store(source: Store, url: str) -> Store:
    """A PostgreSQL copy of ``source`` (resumed where a previous run stopped), analysed."""
    target = Store(url, session_timeout_s=source_timeout_s(source))
    started = time.perf_counter()
    copied = copy_events(source, target, chunk=20_000)
    if copied:
        print(f"  copied {copied:,} events into PostgreSQL in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def server_queries(store: Store) -> list[tuple[str, Callable[[], Any]]]:
    api = ReadAPI(store, session_timeout_s=1800, api_key=None, needs_key=False)

    def call(path: str, params: dict[str, str]) -> Callable[[], Any]:
        def run() -> Any:
            status, body, _, _ = api.handle(path, params, None)
            assert status == 200, (path, params, status, body)
        return run
    return [(label, call(path, params)) for label, path, params in bench_server.read_checks(api)]


EXTRA_ANALYSES = [("conversation_list", {}), ("conversation_list --q refund", {"q": "refund"}),
                  ("conversation_list --only abandoned", {"only": "abandoned"})]


def analytics_queries(store: Store) -> list[tuple[str, Callable[[], Any]]]:
    return [(label, lambda name=label.split()[0], params=params: analyses.answer(store, name, params))
            for label, params in [*bench_analytics.CASES, *EXTRA_ANALYSES]]


def best_ms(call: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def compare(name: str, stores: dict[str, Store], rounds: int) -> None:
    """Each query on each engine, the labels taken from the first (SQLite: its sample rows;
    PostgreSQL holds the same ids)."""
    build = server_queries if name == "server" else analytics_queries
    plans = {engine: build(store) for engine, store in stores.items()}
    engines = list(stores)
    print(f"\n{name} ({', '.join(f'{e}: {s.location}' for e, s in stores.items())}), best of {rounds}")
    print(f"{'query':44}" + "".join(f"{e:>14}" for e in engines))
    worst = dict.fromkeys(engines, 0.0)
    over: list[str] = []
    for i, (label, _) in enumerate(plans[engines[0]]):
        times = {e: best_ms(plans[e][i][1], rounds) for e in engines}
        for e, ms in times.items():
            worst[e] = max(worst[e], ms)
            if ms > TARGET_MS[name]:
                over.append(f"{label} on {e}")
        print(f"{label:44}" + "".join(f"{times[e]:11.0f} ms" for e in engines), flush=True)
    print(f"{'slowest':44}" + "".join(f"{worst[e]:11.0f} ms" for e in engines))
    print(f"over {TARGET_MS[name]} ms: {', '.join(over) if over else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/trubrics-bench-reads"),
                        help="where the SQLite files and the PostgreSQL cluster are kept between runs")
    parser.add_argument("--only", choices=("server", "analytics"), help="one data set")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000, help="per data set (analytics adds ~30%%)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    names = [args.only] if args.only else ["server", "analytics"]
    cluster = None
    if not args.no_postgres:
        why = postgres_cluster.unavailable()
        if why:
            sys.exit(f"bench_reads: {why} (or --no-postgres)")
        cluster = Cluster(args.dir / "pg").__enter__()
    try:
        for name in names:
            stores = {"sqlite": sqlite_store(name, args.dir / f"{name}-{args.events}.sqlite3", args.events)}
            if cluster is not None:
                stores["postgresql"] = postgres_store(stores["sqlite"], cluster.database(f"{name}_{args.events}"))
            compare(name, stores, args.rounds)
            for store in stores.values():
                store.close()
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
