"""CPU of the HTTP layer (``receive/http.py`` on waitress) per request, with our read settings
and with waitress's defaults, for an OTLP batch and an ingestion API batch.

    python benchmarks/bench_http_layer.py            # best of 3 rounds of 40 requests each
    python benchmarks/bench_http_layer.py --compare /tmp/base   # and ours from another copy
                                                     # of the package (DIR/trubrics_otel)

The handler answers at once, so what is measured is the layer alone: reading the body off the
socket into the request, and the answer. A server runs in its own process; its CPU time (user
+ system, every thread, ``/proc``) is read around each round. Rows: 900 KB (512 LLM spans of
``bench_server_intake``, protobuf) and 210 KB (100 LLM events as JSON); columns: waitress's
8 KiB reads with bodies past 512 KiB in a temporary file, and ours (``RECV_BYTES``,
``BODY_IN_MEMORY``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from other_copy import use

# not bench_server_intake (for cpu_seconds) up here: it imports trubrics_otel, and the server
# process (``--serve``) would then run this worktree's copy whatever ``use`` asks for

SIZES = {"OTLP batch, 900 KB": 900_000, "API batch, 210 KB": 210_000}
SETTINGS = {"waitress defaults": (8192, 512 << 10), "ours": (None, None)}


def serve(recv_bytes: str, in_memory: str, package: str = "") -> None:
    use(package)  # that copy, not the editable install
    from trubrics_otel.receive import http

    if recv_bytes != "None":
        http.RECV_BYTES, http.BODY_IN_MEMORY = int(recv_bytes), int(in_memory)
    receiver = http.HttpReceiver(lambda request: http.Reply(200, b"{}", "application/json"),
                                 ("127.0.0.1", 0), max_body=32 << 20,
                                 refuse=lambda status, message, request: http.Reply(status, b"", "text/plain"))
    receiver.start()
    print(receiver.port, flush=True)
    time.sleep(3600)


def one_round(size: int, settings: tuple[int | None, int | None], requests_per_round: int = 40,
              package: str = "") -> float:
    """Server CPU ms per request."""
    from bench_server_intake import cpu_seconds  # server CPU, every thread, from /proc

    server = subprocess.Popen([sys.executable, __file__, "--serve", *map(str, settings), package],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1/traces"
        body, session = os.urandom(size), requests.Session()
        session.post(url, data=body, timeout=30)
        before = cpu_seconds(server.pid)
        for _ in range(requests_per_round):
            session.post(url, data=body, timeout=30)
        return (cpu_seconds(server.pid) - before) / requests_per_round * 1e3
    finally:
        server.kill()
        server.wait()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(*sys.argv[2:5])
        return
    columns = dict(SETTINGS)
    if sys.argv[1:2] == ["--compare"]:
        columns[f"ours, {Path(sys.argv[2]).name[-12:]}"] = (None, None, sys.argv[2])
    best = {(size, name): float("inf") for size in SIZES for name in columns}
    for _ in range(3):  # rounds interleaved: a busy machine slows both alike
        for size_name, size in SIZES.items():
            for name, (recv, in_memory, *package) in columns.items():
                best[size_name, name] = min(best[size_name, name],
                                            one_round(size, (recv, in_memory), package=(package or [""])[0]))
    print(f"{'server CPU per request (ms)':28}" + "".join(f"{name:>20}" for name in columns))
    for size_name in SIZES:
        print(f"{size_name:28}" + "".join(f"{best[size_name, name]:20.2f}" for name in columns))


if __name__ == "__main__":
    main()
