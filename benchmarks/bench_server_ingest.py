"""The local server's ingest rate over HTTP, with the peer benchmark's payloads, per engine.

    python benchmarks/bench_server_ingest.py          # 20,000 of each payload, best of 3
    python benchmarks/bench_server_ingest.py --engines sqlite --rounds 1

``trubrics-otel serve`` runs in its own process (127.0.0.1, any free port) on a fresh store: a
SQLite file; a PostgreSQL database with one worker; the same with ``--workers 2`` (PostgreSQL
in a throwaway cluster, tests/postgres_cluster.py, when its binaries exist). Two clients in this
process each track N/2 events with ``flush_batch_size=100`` to the one port, and the clock runs
from the first call until both ``flush()`` say the server accepted every event. Beside each
rate: the CPU time per 1,000 events of serve's processes, of PostgreSQL's, and of this process
(the clients), which says where a shared machine's cores went (with psutil installed).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent / "peers"), str(Path(__file__).resolve().parent.parent / "tests")]

try:
    import psutil
except ImportError:  # the rates alone, no CPU split
    psutil = None

from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402

from trubrics_otel import Trubrics  # noqa: E402

N = 20_000  # per round, split between two clients


def serve(db: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "trubrics_otel", "serve", "--db", db, "--port", "0", "--no-grpc",
         "--log-level", "WARNING", "--workers", str(workers)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
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


def cpu_s(processes: list[Any]) -> float:
    """CPU seconds (user + system) used so far by these processes and their children (NaN
    without psutil)."""
    if psutil is None:
        return math.nan
    total = 0.0
    for process in {p for root in processes for p in (root, *root.children(recursive=True))}:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def one_round(mode: str, db: str, workers: int, postgres: Any) -> tuple[float, dict[str, float]]:
    """Events/s, and CPU ms per 1,000 events by part (serve's processes, PostgreSQL, clients)."""
    server, url = serve(db, workers)
    parts = ({"serve": [psutil.Process(server.pid)], "postgres": [postgres] if postgres else [],
              "clients": [psutil.Process()]} if psutil else {"serve": [], "postgres": [], "clients": []})
    try:
        left: list[int] = []
        senders = [threading.Thread(target=send, args=(url, mode, k * N // 2, N // 2, left)) for k in range(2)]
        before = {name: cpu_s(processes) for name, processes in parts.items()}
        start = time.perf_counter()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        took = time.perf_counter() - start
        used = {name: (cpu_s(processes) - before[name]) * 1e6 / N for name, processes in parts.items()}
        assert left == [0, 0], f"{left} events not accepted"
        return N / took, used
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setups = [("sqlite", 1)] if "sqlite" in args.engines else []
    cluster = postgres = None
    if "postgresql" in args.engines:
        import postgres_cluster

        reason = postgres_cluster.unavailable()
        if reason:
            print(f"postgresql skipped: {reason}")
        else:
            cluster = postgres_cluster.PostgresCluster().__enter__()
            if psutil:
                postgres = psutil.Process(int((cluster.data / "postmaster.pid").read_text().split()[0]))
            setups += [("postgresql", 1), ("postgresql", 2)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            names = iter(range(1000))

            def fresh(engine: str) -> str:
                return cluster.create_database() if cluster and engine == "postgresql" else f"{tmp}/{next(names)}.db"

            print(f"events/s accepted by `trubrics-otel serve`, best of {args.rounds} rounds of {N:,}; "
                  "CPU ms per 1,000 events in that round: serve / postgres / clients")
            print(f"{'mode':6} " + " ".join(f"{f'{e} x{w}':>30}" for e, w in setups)
                  + ("   PG x2 / x1" if cluster else ""))
            for mode in ("track", "llm"):
                best = [max((one_round(mode, fresh(e), w, postgres if e == "postgresql" else None)
                             for _ in range(args.rounds)), key=lambda r: r[0]) for e, w in setups]
                cells = [f"{rate:8,.0f} ({cpu['serve']:4.0f}/{cpu['postgres']:4.0f}/{cpu['clients']:4.0f})"
                         for rate, cpu in best]
                ratio = f"   {best[-1][0] / best[-2][0]:.2f}" if cluster else ""
                print(f"{mode:6} " + " ".join(f"{cell:>30}" for cell in cells) + ratio, flush=True)
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    main()
