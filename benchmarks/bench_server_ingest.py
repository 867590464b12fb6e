"""The local server's ingest rate over HTTP, with the peer benchmark's payloads, per engine.

    python benchmarks/bench_server_ingest.py          # 20,000 of each payload, best of 3
    python benchmarks/bench_server_ingest.py --engines sqlite --rounds 1

``trubrics-otel serve`` runs in its own process(es) (127.0.0.1, any free port) on a fresh
store: a SQLite file; a PostgreSQL database with one worker; the same with two ``serve``
workers on one database (PostgreSQL in a throwaway cluster, tests/postgres_cluster.py, when
its binaries exist). Two clients in this process each track N/2 events with
``flush_batch_size=100`` (to one worker each when there are two) and the clock runs from the
first call until both ``flush()`` say the servers accepted every event.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent / "peers"), str(Path(__file__).resolve().parent.parent / "tests")]

from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402

from trubrics_otel import Trubrics  # noqa: E402

N = 20_000  # per round, split between two clients


def serve(db: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "trubrics_otel", "serve", "--db", db, "--port", "0", "--no-grpc",
         "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if found:
            return server, f"http://127.0.0.1:{found.group(1)}"
    raise RuntimeError("the server did not start")


def send(url: str, mode: str, first: int, count: int, left: list[int]) -> None:
    client = Trubrics(api_key="bench-key", host=url, flush_batch_size=100, spool=False)
    for i in range(first, first + count):
        p = make_payload(mode, i)
        if mode == "track":
            client.track(user_id=p["user_id"], event=p["event"], properties=p["properties"])
        else:
            client.track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                             assistant_id=ASSISTANT_ID, properties=p["properties"],
                             latency=LATENCY_S, thread_id=THREAD_ID)
    left.append(client.flush(timeout=300))
    client.close()


def one_round(mode: str, db: str, workers: int) -> float:
    servers = [serve(db) for _ in range(workers)]
    try:
        left: list[int] = []
        senders = [threading.Thread(target=send, args=(servers[k % workers][1], mode, k * N // 2, N // 2, left))
                   for k in range(2)]
        start = time.perf_counter()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        took = time.perf_counter() - start
        assert left == [0, 0], f"{left} events not accepted"
        return N / took
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setups = [("sqlite", 1)] if "sqlite" in args.engines else []
    cluster = None
    if "postgresql" in args.engines:
        import postgres_cluster

        reason = postgres_cluster.unavailable()
        if reason:
            print(f"postgresql skipped: {reason}")
        else:
            cluster = postgres_cluster.PostgresCluster().__enter__()
            setups += [("postgresql", 1), ("postgresql", 2)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            names = iter(range(1000))

            def fresh(engine: str) -> str:
                return cluster.create_database() if cluster and engine == "postgresql" else f"{tmp}/{next(names)}.db"

            print(f"events/s accepted by `trubrics-otel serve`, best of {args.rounds} rounds of {N:,}")
            print(f"{'mode':6} " + " ".join(f"{f'{e} x{w}':>14}" for e, w in setups))
            for mode in ("track", "llm"):
                rates = [max(one_round(mode, fresh(e), w) for _ in range(args.rounds)) for e, w in setups]
                print(f"{mode:6} " + " ".join(f"{r:14,.0f}" for r in rates), flush=True)
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
