"""Cost of ``flush()`` on the app's thread: idle (nothing to wait for: one per request, say) and
with one event to deliver to a local Trubrics endpoint on 127.0.0.1.

    python benchmarks/bench_flush.py                      # best of 5 rounds of 200 calls each
    python benchmarks/bench_flush.py --compare /tmp/base  # and DIR/trubrics_otel, same run

A flush that has something to wait for runs on a thread of its own (what interrupts the app's
thread, a spent stack or Ctrl-C, never stops a batch halfway): its start and join are the
difference to read; an idle flush starts none.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from other_copy import command  # noqa: E402


def measure(rounds: int, calls: int) -> dict[str, float]:
    """Best µs per call of each case, for the package this interpreter imports."""
    from trubrics_endpoint import TrubricsEndpoint

    from trubrics_otel import Trubrics

    best = {"idle flush": float("inf"), "flush of one event": float("inf")}
    with TrubricsEndpoint(api_key="bench-key") as endpoint:
        client = Trubrics(api_key="bench-key", host=endpoint.url, spool=tempfile.mkdtemp())
        client.track(user_id="u", event="warm-up")
        client.flush(timeout=10)
        for _ in range(rounds):
            for case in best:
                started = time.perf_counter()
                for _ in range(calls):
                    if case != "idle flush":
                        client.track(user_id="u", event="e")
                    client.flush(timeout=10)
                best[case] = min(best[case], (time.perf_counter() - started) / calls * 1e6)
        client.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--compare", metavar="DIR", help="also DIR/trubrics_otel, in a process of its own")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one package's figures
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.rounds, args.calls)))
        return
    packages = [None] + ([args.compare] if args.compare else [])
    results: list[dict[str, float]] = [{} for _ in packages]
    for _ in range(args.rounds):  # a process per package and round, interleaved: a busy machine slows both
        for package, best in zip(packages, results):
            start = [sys.executable, __file__] if package is None else command(package, script=__file__)
            done = subprocess.run([*start, "--json", "--rounds", "1", "--calls", str(args.calls)],
                                  capture_output=True, text=True, check=True)
            for case, figure in json.loads(done.stdout).items():
                best[case] = min(best.get(case, figure), figure)
    names = ["this"] + [Path(p).name for p in packages[1:]]
    print(f"{'µs per call':22}" + "".join(f"{name:>12}" for name in names))
    for case in results[0]:
        print(f"{case:22}" + "".join(f"{r[case]:12.0f}" for r in results))


if __name__ == "__main__":
    main()
