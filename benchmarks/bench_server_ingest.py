"""The local server's ingest rate over HTTP, with the peer benchmark's payloads.

    python benchmarks/bench_server_ingest.py          # 20,000 of each payload, best of 3

``trubrics-otel serve`` runs in its own process (a fresh SQLite file, 127.0.0.1, any free
port); this process tracks N events with ``flush_batch_size=100`` and times from the first
call until ``flush()`` says the server accepted all of them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402

from trubrics_otel import Trubrics  # noqa: E402

N = 20_000


def serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "trubrics_otel", "serve", "--db", str(db), "--port", "0",
         "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if found:
            return server, f"http://127.0.0.1:{found.group(1)}"
    raise RuntimeError("the server did not start")


def one_round(mode: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        server, url = serve(Path(tmp) / "events.sqlite3")
        try:
            client = Trubrics(api_key="bench-key", host=url, flush_batch_size=100, spool=False)
            start = time.perf_counter()
            for i in range(N):
                p = make_payload(mode, i)
                if mode == "track":
                    client.track(user_id=p["user_id"], event=p["event"], properties=p["properties"])
                else:
                    client.track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                                     assistant_id=ASSISTANT_ID, properties=p["properties"],
                                     latency=LATENCY_S, thread_id=THREAD_ID)
            left = client.flush(timeout=120)
            took = time.perf_counter() - start
            client.close()
            assert left == 0, f"{left} events not accepted"
            return N / took
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    print(f"events/s accepted by `trubrics-otel serve`, best of 3 rounds of {N:,}")
    for mode in ("track", "llm"):
        print(f"{mode:6} {max(one_round(mode) for _ in range(3)):9,.0f}")


if __name__ == "__main__":
    main()
