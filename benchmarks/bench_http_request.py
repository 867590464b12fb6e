"""Server CPU per HTTP request into ``trubrics-otel serve``, outside the store.

    python benchmarks/bench_http_request.py                  # 100 B and 210 KB bodies, best of 5 rounds
    python benchmarks/bench_http_request.py --rounds 9 --requests 3000 --sizes 100 900000
    git archive main trubrics_otel | tar -x -C /tmp/base     # then, interleaved in one run:
    python benchmarks/bench_http_request.py --compare /tmp/base

Each server runs in its own process on a fresh SQLite file; this process is the client: one
keep-alive connection POSTing OTLP/HTTP metrics (``/v1/metrics``, answered 200 and dropped: no
decoding, no store) with a body of 100 bytes, then one of 210 KB (the size of the ingestion
API's 100 LLM events in ``bench_server_intake.py``). The figure is the server process's CPU
(user + system, every thread, ``/proc/<pid>/task/*/schedstat``) per request: what framing,
the hand-off to a worker thread and back, routing, the key check and writing the answer cost.
With ``--compare DIR`` a server from ``DIR/trubrics_otel`` runs beside this one and the rounds
alternate between them, so both see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from bench_server_intake import cpu_seconds  # noqa: E402
from other_copy import command  # noqa: E402

SIZES = (100, 210_000)


class Server:
    """``trubrics-otel serve`` (OTLP/HTTP only) from this worktree or another copy of the package."""

    def __init__(self, db: str, package_dir: str | None) -> None:
        start = [sys.executable, "-m", "trubrics_otel"] if package_dir is None else command(
            package_dir, module="trubrics_otel")
        self.label = "this" if package_dir is None else Path(package_dir).name
        self.process = subprocess.Popen([*start, "serve", "--db", db, "--port", "0", "--no-grpc"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if found := re.search(r"http://127\.0\.0\.1:(\d+)", line):
                self.connection = http.client.HTTPConnection("127.0.0.1", int(found.group(1)), timeout=60)
                return
        raise RuntimeError("the server did not start")

    def post(self, body: bytes) -> None:
        self.connection.request("POST", "/v1/metrics", body=body,
                                headers={"Content-Type": "application/x-protobuf"})
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200, response.status

    def cpu_per_request(self, body: bytes, requests: int) -> float:
        """µs of server CPU per request, over ``requests`` POSTs of ``body``."""
        before = cpu_seconds(self.process.pid)
        for _ in range(requests):
            self.post(body)
        return (cpu_seconds(self.process.pid) - before) / requests * 1e6

    def close(self) -> None:
        self.connection.close()
        self.process.terminate()
        self.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and body size")
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES, metavar="BYTES",
                        help="body sizes (default 100 and 210,000)")
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR",
                        help="also run servers from DIR/trubrics_otel (a baseline), interleaved")
    args = parser.parse_args()
    sizes = tuple(args.sizes)
    bodies = {size: b"x" * size for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        servers = [Server(f"{tmp}/{k}.db", package) for k, package in enumerate((None, *args.compare))]
        try:
            for server in servers:  # warm: imports, the first connection, the buffers' first growth
                for body in bodies.values():
                    for _ in range(200):
                        server.post(body)
            figures: dict[tuple[int, int], list[float]] = {}
            for r in range(args.rounds):
                for k, server in enumerate(servers):
                    for size, body in bodies.items():
                        figures.setdefault((k, size), []).append(server.cpu_per_request(body, args.requests))
                print(f"  round {r + 1}: " + "  ".join(
                    f"{server.label} {size:,} B {figures[k, size][-1]:.0f}"
                    for k, server in enumerate(servers) for size in sizes), flush=True)
        finally:
            for server in servers:
                server.close()
    print(f"µs of server CPU per POST /v1/metrics (best / median of {args.rounds} rounds of "
          f"{args.requests:,}, one keep-alive connection)")
    print(f"{'body':>10}" + "".join(f"{server.label[-18:]:>22}" for server in servers))
    for size in sizes:
        print(f"{size:>8,} B" + "".join(
            f"{min(figures[k, size]):>12.0f} / {statistics.median(figures[k, size]):<7.0f}"
            for k in range(len(servers))))


if __name__ == "__main__":
    main()
