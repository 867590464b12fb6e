"""Instructions per ``track``/``track_llm`` call on the app's thread, ours and the official SDK's.

    python benchmarks/bench_call_instructions.py      # needs valgrind (apt install valgrind); ~7 min

Timings on shared machines drift by 2x run to run; the number of instructions a fixed
workload executes does not (to a fraction of a per cent). Each SDK runs the peer benchmark's
payloads (``benchmarks/peers``: a 200- and a 500-character text, model, thread, latency, two
properties; for ``track`` four properties) under valgrind's callgrind twice, once only setting
up and once also making 20,000 calls, and the difference of the calling thread's instructions
(``--separate-threads``: the SDK's delivery thread, which posts batches of 100 to the peer
benchmark's sink, is not counted) is divided by the calls. Instructions are not time — our call also copies the event into the crash journal's
pages, which costs memory traffic the official SDK's append-a-dict does not — so read it next
to ``benchmarks/peers`` (time), as the figure that shows what a change to the hot path did.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CALLS, WARM_UP = 20_000, 2_000


def workload(sdk: str, kind: str, run: bool) -> None:
    sys.path.insert(0, str(HERE / "peers"))
    from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload
    from sink import SinkProcess

    logging.getLogger("trubrics").setLevel(logging.CRITICAL)  # both SDKs log under this name
    sink = SinkProcess().start()  # its own process: valgrind does not follow it
    host = f"{sink.url}/api/ingestion"
    if sdk == "ours":
        from trubrics_otel import Trubrics

        client = Trubrics(api_key="k", host=host, flush_batch_size=100, spool=tempfile.mkdtemp())
    else:
        import trubrics

        client = trubrics.Trubrics(api_key="k", host=host, flush_batch_size=100)
    if kind == "track":
        def call(p: dict) -> None:
            client.track(user_id=p["user_id"], event=p["event"], properties=p["properties"])
    else:
        def call(p: dict) -> None:
            client.track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                             assistant_id=ASSISTANT_ID, properties=p["properties"], latency=LATENCY_S,
                             thread_id=THREAD_ID)
    for i in range(WARM_UP):
        call(make_payload(kind, i))
    client.flush()
    payloads = [make_payload(kind, WARM_UP + i) for i in range(CALLS)]
    gc.collect()
    gc.disable()
    if run:
        for payload in payloads:
            call(payload)
    sink.stop()
    os._exit(0)  # no close(): its work is not the call's


def instructions(sdk: str, kind: str, run: bool) -> int:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}/cg",
             sys.executable, __file__, "--workload", sdk, kind, "run" if run else "setup"],
            capture_output=True, text=True, check=False,
        )
        main_thread = Path(out, "cg-01")
        found = re.search(r"^summary:\s*(\d+)", main_thread.read_text(), re.M) if main_thread.exists() else None
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench_call_instructions: valgrind failed: {done.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--workload":
        workload(sys.argv[2], sys.argv[3], sys.argv[4] == "run")
        return
    if shutil.which("valgrind") is None:
        print("bench_call_instructions: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        raise SystemExit(2)
    print(f"Instructions per call on the calling thread ({CALLS:,} calls, peer benchmark payloads):\n")
    print("| call | official trubrics | trubrics-otel | ratio |")
    print("|---|---:|---:|---:|")
    for kind, name in (("track", "track()"), ("llm", "track_llm()")):
        per_call = {sdk: (instructions(sdk, kind, True) - instructions(sdk, kind, False)) / CALLS
                    for sdk in ("official", "ours")}
        print(f"| {name} | {per_call['official']:,.0f} | {per_call['ours']:,.0f} | "
              f"{per_call['ours'] / per_call['official']:.2f}x |")


if __name__ == "__main__":
    main()
