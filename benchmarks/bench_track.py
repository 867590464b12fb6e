"""Cost of track()/track_llm() and a 50,000-event burst, against the official SDK, same run.

    python benchmarks/bench_track.py            # full run (~1 min)
    python benchmarks/bench_track.py --quick    # smaller counts

Prints per-call p50/p99 (best of several rounds: shared machines vary 2x run to run, so
read the ratios, not the absolute numbers) and, for the burst, events delivered and wall
time to a local Trubrics endpoint on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import trubrics as official  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from trubrics_endpoint import TrubricsEndpoint  # noqa: E402

from trubrics_otel import Trubrics, TrubricsSpanExporter  # noqa: E402

KEY = "bench-key"
PROPS = {"plan": "pro", "seats": 3}


def per_call(fn: Callable[[int], None], n: int, rounds: int) -> tuple[float, float]:
    """Best-of-rounds p50 and p99 in microseconds."""
    best = (float("inf"), float("inf"))
    clock = time.perf_counter_ns
    for _ in range(rounds):
        samples = []
        gc.collect()
        for i in range(n):
            t = clock()
            fn(i)
            samples.append(clock() - t)
        samples.sort()
        p50, p99 = samples[n // 2] / 1e3, samples[int(n * 0.99)] / 1e3
        best = (min(best[0], p50), min(best[1], p99))
    return best


def call_costs(n: int, rounds: int) -> list[tuple[str, float, float]]:
    # Endpoints nobody listens on: only the calling thread's cost is measured here.
    theirs = official.Trubrics(api_key=KEY, host="http://127.0.0.1:9", flush_interval=3600,
                               flush_batch_size=100)
    ours = Trubrics(api_key=KEY, host="http://127.0.0.1:9", flush_interval=3600,
                    flush_batch_size=100, max_queue_size=10**7)
    provider = TracerProvider()
    tracer = provider.get_tracer("bench")

    def otel_span(i: int) -> None:
        tracer.start_span("Sign up", attributes={"user.id": "u1", "plan": "pro"}).end()

    rows = [
        ("official track()", *per_call(lambda i: theirs.track("u1", "Sign up", PROPS), n, rounds)),
        ("trubrics-otel track()", *per_call(lambda i: ours.track("u1", "Sign up", PROPS), n, rounds)),
        ("official track_llm()", *per_call(lambda i: theirs.track_llm(
            "u1", "What is Trubrics?", "An analytics platform.", assistant_id="gpt-4o",
            latency=1.2, thread_id="t-42", properties=PROPS), n, rounds)),
        ("trubrics-otel track_llm()", *per_call(lambda i: ours.track_llm(
            "u1", "What is Trubrics?", "An analytics platform.", assistant_id="gpt-4o",
            latency=1.2, thread_id="t-42", properties=PROPS), n, rounds)),
        ("OTel SDK start_span()+end()", *per_call(otel_span, n, rounds)),
    ]
    theirs.queue.clear()
    theirs._stop_event.set()
    ours._closed = True  # drop what was queued: nobody listens on that port
    return rows


def burst_official(endpoint: TrubricsEndpoint, n: int) -> tuple[int, float]:
    client = official.Trubrics(api_key=KEY, host=endpoint.url, flush_batch_size=100)
    started = time.perf_counter()
    for i in range(n):
        client.track("u1", "burst", {"i": i})
    client.close()
    endpoint.wait_for_events(n, timeout=120)
    return endpoint.count(), time.perf_counter() - started


def burst_ours(endpoint: TrubricsEndpoint, n: int) -> tuple[int, float]:
    client = Trubrics(api_key=KEY, host=endpoint.url, flush_batch_size=100)
    started = time.perf_counter()
    for i in range(n):
        client.track("u1", "burst", {"i": i})
    client.close(timeout=120)
    return endpoint.count(), time.perf_counter() - started


def burst_otel_default_queue(endpoint: TrubricsEndpoint, n: int) -> tuple[int, float]:
    """The generic path: SDK tracer + BatchSpanProcessor with its default 2,048 queue."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(TrubricsSpanExporter(api_key=KEY, host=endpoint.url)))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for i in range(n):
        tracer.start_span("burst", attributes={"user.id": "u1", "trubrics.event": "burst"}).end()
    provider.shutdown()
    return endpoint.count(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logging.getLogger("trubrics").setLevel(logging.CRITICAL)  # both SDKs share this name
    n, rounds, burst = (5_000, 3, 10_000) if args.quick else (20_000, 5, 50_000)

    rows = call_costs(n, rounds)
    print(f"Per call, best of {rounds} rounds of {n:,} calls (µs):\n")
    print("| call | p50 | p99 | p50 vs official |")
    print("|---|---:|---:|---:|")
    base = {"track": rows[0][1], "track_llm": rows[2][1]}
    for name, p50, p99 in rows:
        ref = base["track_llm"] if "llm" in name else base["track"]
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 / ref:.2f}x |")

    print(f"\nBurst of {burst:,} events to a healthy local endpoint, flush_batch_size=100:\n")
    print("| client | delivered | lost | seconds | events/s |")
    print("|---|---:|---:|---:|---:|")
    results = []
    for name, run in (("official trubrics 1.8.5", burst_official),
                      ("trubrics-otel", burst_ours),
                      ("OTel SDK default BatchSpanProcessor", burst_otel_default_queue)):
        with TrubricsEndpoint() as endpoint:
            delivered, seconds = run(endpoint, burst)
        results.append(seconds)
        print(f"| {name} | {delivered:,} | {burst - delivered:,} | {seconds:.2f} | {delivered / seconds:,.0f} |")
    print(f"\ntrubrics-otel end to end: {results[0] / results[1]:.2f}x the official SDK's speed")


if __name__ == "__main__":
    main()
