"""Instructions per event on the export thread: journal record → event → policy → JSON → POST.

    python benchmarks/bench_export_instructions.py        # needs valgrind (apt install valgrind); ~1 min

Timings of the export thread move with the machine's load (other jobs, the sink's process
competing for the same 2 cores); the instructions a fixed workload executes do not. The
records are what ``track()`` / ``track_llm()`` store in the crash journal with the peer
benchmark's payloads (``benchmarks/peers``), exported as the export thread does it
(``TrubricsSpanExporter.export_records``, batches of 100) to ``benchmarks/peers/sink.py`` in its
own process (valgrind does not follow it). Each payload runs under callgrind twice, once
setting up (the records made, two warm-up batches sent) and once also exporting 3,000 events;
the difference is divided by the events. ``--no-post`` leaves the HTTP request out (encode,
policy and the request body only).
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
EVENTS, WARM_UP = 3_000, 200


def workload(kind: str, run: bool, post: bool) -> None:
    sys.path.insert(0, str(HERE / "peers"))
    from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload
    from sink import SinkProcess

    from trubrics_otel.capture.arguments import event_body
    from trubrics_otel.capture.fast_path import fast_enqueue, fast_track_llm
    from trubrics_otel.deliver.exporter import TrubricsSpanExporter
    from trubrics_otel.translate.fastjson import dumps
    from trubrics_otel.translate.tracked import EVENT

    logging.getLogger("trubrics").setLevel(logging.CRITICAL)
    records: list[bytes] = []
    keep = lambda payload: records.append(payload) or 1  # noqa: E731 - the journal's append, as a list
    if kind == "llm":
        track_llm = fast_track_llm(keep, full=None)  # type: ignore[arg-type]
        for i in range(WARM_UP + EVENTS):
            p = make_payload("llm", i)
            track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                      assistant_id=ASSISTANT_ID, properties=p["properties"], latency=LATENCY_S,
                      thread_id=THREAD_ID)
    else:
        enqueue = fast_enqueue(keep)
        for i in range(WARM_UP + EVENTS):
            p = make_payload("track", i)
            enqueue(EVENT, event_body(p["user_id"], p["event"], p["properties"], None, logging.getLogger()))  # type: ignore[misc]
    sink = SinkProcess().start()
    exporter = TrubricsSpanExporter(api_key="k", host=f"{sink.url}/api/ingestion", spool=tempfile.mkdtemp())
    if not post:
        exporter._delivery.deliver = lambda batches, *_, **__: [dumps(e) for _, e in batches if e]  # type: ignore[method-assign,assignment,misc]
    try:
        for start in range(0, WARM_UP, 100):
            exporter.export_records(records[start : start + 100])
        gc.collect()
        gc.disable()
        if run:
            for start in range(WARM_UP, WARM_UP + EVENTS, 100):
                exporter.export_records(records[start : start + 100])
    finally:
        sink.stop()
    os._exit(0)


def instructions(kind: str, run: bool, post: bool) -> int:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg", sys.executable, __file__,
             "--workload", kind, "run" if run else "setup", "post" if post else "no-post"],
            capture_output=True, text=True, check=False,
        )
        found = re.search(r"^summary:\s*(\d+)", Path(out, "cg").read_text(), re.M) if Path(out, "cg").exists() else None
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench_export_instructions: valgrind failed: {done.stderr.strip().splitlines()[-1:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--workload":
        workload(sys.argv[2], sys.argv[3] == "run", sys.argv[4] == "post")
        return
    if shutil.which("valgrind") is None:
        print("bench_export_instructions: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        raise SystemExit(2)
    post = "--no-post" not in sys.argv
    print(f"Instructions per event on the export path ({EVENTS:,} events, batches of 100"
          f"{', POST included' if post else ', no POST'}):\n")
    print("| payload | instructions per event |")
    print("|---|---:|")
    for kind in ("track", "llm"):
        per_event = (instructions(kind, True, post) - instructions(kind, False, post)) / EVENTS
        print(f"| `{'track_llm' if kind == 'llm' else 'track'}` | {per_event:,.0f} |")


if __name__ == "__main__":
    main()
