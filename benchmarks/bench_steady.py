"""Steady state: 10,000 calls/s for 10 s, per-call p50/p99, official SDK against ours.

    python benchmarks/bench_steady.py                  # both SDKs, both payloads (~45 s)
    python benchmarks/bench_steady.py --rate 5000 --seconds 5

Each SDK runs in its own subprocess with ``flush_batch_size=100`` against
``benchmarks/peers/sink.py`` in another process on 127.0.0.1; calls are paced (a busy wait
between them, outside the timed region), payloads are the peer benchmark's. After the run
the client is closed and the sink's count must equal the calls made.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402
from sink import SinkProcess  # noqa: E402

TARGETS = {"official": "trubrics:Trubrics", "trubrics-otel": "trubrics_otel:Trubrics"}


def worker(target: str, mode: str, url: str, rate: int, seconds: float) -> dict[str, float]:
    module, name = target.split(":")
    client = getattr(importlib.import_module(module), name)(
        api_key="bench-key", host=f"{url}/api/ingestion", flush_batch_size=100)
    if mode == "track":
        def call(p): client.track(user_id=p["user_id"], event=p["event"], properties=p["properties"])
    else:
        def call(p): client.track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                                      assistant_id=ASSISTANT_ID, properties=p["properties"],
                                      latency=LATENCY_S, thread_id=THREAD_ID)
    n = int(rate * seconds)
    samples = []
    clock = time.perf_counter_ns
    step = 1e9 / rate
    start = clock()
    for i in range(n):
        payload = make_payload(mode, i)
        while clock() - start < i * step:
            pass
        t = clock()
        call(payload)
        samples.append(clock() - t)
    client.close()
    samples.sort()
    return {"calls": n, "p50": samples[n // 2] / 1e3, "p99": samples[int(n * 0.99)] / 1e3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        target, mode, url = args.worker
        print(json.dumps(worker(target, mode, url, args.rate, args.seconds)))
        return
    print(f"{args.rate:,} calls/s for {args.seconds:g} s; per-call µs")
    print(f"{'payload':8} {'sdk':14} {'p50':>6} {'p99':>7} {'delivered':>10}")
    for mode in ("track", "llm"):
        for sdk, target in TARGETS.items():
            sink = SinkProcess().start()
            try:
                before = sink.stats()["items_accepted"] if hasattr(sink, "stats") else 0
                out = subprocess.run([sys.executable, __file__, "--rate", str(args.rate), "--seconds",
                                      str(args.seconds), "--worker", target, mode, sink.url],
                                     capture_output=True, text=True, timeout=300)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                time.sleep(1)
                delivered = sink.stats()["items_accepted"] - before if hasattr(sink, "stats") else -1
            finally:
                sink.stop()
            print(f"{mode:8} {sdk:14} {result['p50']:6.2f} {result['p99']:7.2f} {delivered:>6,}/{result['calls']:,}")


if __name__ == "__main__":
    main()
