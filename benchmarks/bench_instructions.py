"""Instructions per LLM span through the bridge's work, a figure that does not depend on the machine.

    python benchmarks/bench_instructions.py        # needs valgrind (apt install valgrind); ~1 min

Timings on shared machines drift by 2x; the number of instructions a fixed workload executes
does not (to a fraction of a per cent). This runs the workload twice under valgrind's
callgrind, once only setting up (imports, 1,280 OpenTelemetry GenAI spans encoded as OTLP, one
warm-up request) and once also decoding, encoding, pricing, applying the redaction policy and
writing the forward's JSON for 1,024 of them, in four requests of 256 with fresh ids, and
prints the difference per span. No network: the forward's HTTP is not included.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH, REQUESTS = 256, 4


def workload(run: bool) -> None:
    sys.path.insert(0, str(HERE))
    import bench_bridge

    from trubrics_otel.deliver.exporter import policy_from_settings, price_and_redact
    from trubrics_otel.deliver.prices import load_price_table
    from trubrics_otel.receive import otlp
    from trubrics_otel.translate import fastjson
    from trubrics_otel.translate.encoder import encode_spans
    from trubrics_otel.translate.traces import TraceMemory

    bodies = bench_bridge.requests_of(bench_bridge.llm_spans(BATCH), REQUESTS + 1)
    memory, prices, policy = TraceMemory(), load_price_table(), policy_from_settings()

    def one_request(body: bytes) -> None:
        encoded = encode_spans(otlp.decode(body, otlp.PROTOBUF).spans, memory=memory)
        _, llm_events = price_and_redact(encoded, prices, policy)
        for start in range(0, len(llm_events), 100):
            fastjson.dumps(llm_events[start : start + 100])

    one_request(bodies[0])  # first use: the price table loads
    if run:
        for body in bodies[1:]:
            one_request(body)


def instructions(run: bool) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--workload", "run" if run else "setup"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # sets' and dicts' order: the same work each run
    )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench_instructions: valgrind failed: {done.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--workload":
        workload(sys.argv[2] == "run")
        return
    if shutil.which("valgrind") is None:
        print("bench_instructions: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        raise SystemExit(2)
    setup, run = instructions(False), instructions(True)
    print(f"{(run - setup) / (BATCH * REQUESTS):,.0f} instructions per LLM span "
          f"(decode, encode, price, policy, JSON; {BATCH * REQUESTS} spans)")


if __name__ == "__main__":
    main()
