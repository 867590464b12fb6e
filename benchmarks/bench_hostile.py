"""Hostile clients against ``serve`` and ``bridge``: the figures behind the promises.

    python benchmarks/bench_hostile.py              # both
    python benchmarks/bench_hostile.py slowloris    # or: memory

* ``slowloris``: a local server on 127.0.0.1; 600 connections each send a request line and
  then one header line every 5 s, never finishing. Prints how long a plain read takes before
  and while they trickle (the promise: a second or two at most; before the fix it waited
  until the tricklers gave up, ~90 s).
* ``memory``: a bridge in its own process; this process sends eight concurrent 29 MiB OTLP
  protobuf requests of 660,000 attributes each. Prints each request's time and the bridge's
  RSS: at start, peak, and after (before the fix: 14-17 s each, peak 1.8 GiB, 226 MiB held).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TRICKLERS = 600


def _read_seconds(url: str) -> float:
    started = time.monotonic()
    requests.get(f"{url}/api/stats", timeout=120).raise_for_status()
    return time.monotonic() - started


def slowloris() -> None:
    from trubrics_otel.server import LocalServer

    with tempfile.TemporaryDirectory() as folder, LocalServer(Path(folder) / "e.sqlite3") as server:
        quiet = sorted(_read_seconds(server.url) for _ in range(5))[2]
        sockets = []
        for _ in range(TRICKLERS):
            conn = socket.create_connection(("127.0.0.1", server.port))
            conn.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n")
            sockets.append(conn)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(5):
                for conn in sockets:
                    try:
                        conn.send(b"X-Slow: 1\r\n")
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        reads = sorted(_read_seconds(server.url) for _ in range(5))
        stop.set()
        for conn in sockets:
            conn.close()
    print(f"slowloris: a read takes {quiet * 1000:.1f} ms alone; with {TRICKLERS} trickling connections "
          f"median {reads[2] * 1000:.1f} ms, worst {reads[-1] * 1000:.1f} ms")


BRIDGE = """
import sys
from trubrics_otel.receive.bridge import Bridge
from trubrics_otel.receive.process import tune_for_server

def rss_mib(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) / 1024

tune_for_server()  # as trubrics-otel bridge does
with Bridge(host=sys.argv[1], api_key="k", listen="127.0.0.1:0", timeout=60) as bridge:
    base = rss_mib("VmRSS")
    print(bridge.url, flush=True)
    sys.stdin.readline()
    print(base, rss_mib("VmHWM"), rss_mib("VmRSS"), flush=True)
"""


def memory() -> None:
    from test_bridge_memory import wide_span_request
    from trubrics_endpoint import TrubricsEndpoint

    body = wide_span_request(660_000)
    with TrubricsEndpoint() as endpoint:
        bridge = subprocess.Popen([sys.executable, "-c", BRIDGE, endpoint.url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        url = bridge.stdout.readline().strip()  # type: ignore[union-attr]
        seconds: list[float] = []

        def send() -> None:
            started = time.monotonic()
            requests.post(f"{url}/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"},
                          timeout=300).raise_for_status()
            seconds.append(time.monotonic() - started)

        senders = [threading.Thread(target=send) for _ in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        time.sleep(1)
        out, _ = bridge.communicate("done\n", timeout=60)
    base, peak, after = map(float, out.split())
    print(f"memory: 8 x {len(body) / 2**20:.0f} MiB requests took {min(seconds):.1f}-{max(seconds):.1f} s each; "
          f"bridge RSS {base:.0f} MiB at start, peak {peak:.0f} MiB, {after:.0f} MiB after")


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["slowloris", "memory"]
    for name in chosen:
        {"slowloris": slowloris, "memory": memory}[name]()
