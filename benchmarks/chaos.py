"""Chaos suite: does anything get lost, and what does memory do, when the endpoint misbehaves?

    python benchmarks/chaos.py                 # every scenario (~6 min), prints a markdown table
    python benchmarks/chaos.py burst outage_5s # just these

Each scenario runs the client in a fresh subprocess against a real local Trubrics endpoint
(``tests/trubrics_endpoint.py``, 127.0.0.1) that this process drives: it goes down
(connection refused), answers 429 with ``Retry-After``, or hangs, on a schedule. The client
uses its defaults (``track()``'s events queue in the 8 MiB crash journal, other spans in memory
up to 20,000; the disk spool in a fresh directory).

Columns: *sent* = ``track()`` calls that returned; *delivered* = distinct events the
endpoint accepted (by ``$trace_id``/``$span_id``); *lost* = sent − delivered; *dupes* =
extra copies accepted (delivery is at least once); *peak RSS* of the client process;
*max pending* = most events waiting at once (memory + spool); *B/pending* = RSS growth per
pending event beyond the in-memory bound (slope of RSS against pending once the bound is
passed); *worst track()* = the slowest single call, over every thread and asyncio task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

KEY = "chaos-secret-key"
BOUND = 20_000
_SHARED = struct.Struct("<4q")  # tracked, peak rss, max pending, worst track ns


# --- the client side (a subprocess) ------------------------------------------------------


def child(params: dict) -> None:
    import logging

    from trubrics_otel import Trubrics

    logging.getLogger("trubrics").setLevel(logging.CRITICAL)
    shared_file = open(params["shared"], "r+b")  # noqa: SIM115
    shared = mmap.mmap(shared_file.fileno(), _SHARED.size)
    client = Trubrics(**params.get("client", {}))
    client.track(user_id="warmup", event="warmup")  # starts the worker; counted as sent
    page = os.sysconf("SC_PAGE_SIZE")
    samples: list[tuple[int, int]] = []
    state = {"tracked": 1, "worst": 0, "stop": False, "peak": 0, "max_pending": 0}
    lock = threading.Lock()

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    def sample() -> None:
        while not state["stop"]:
            stats = client.stats()
            pending = stats.get("queued", 0) + stats.get("pending", 0)
            now = rss()
            samples.append((pending, now))
            state["peak"] = max(state["peak"], now)
            state["max_pending"] = max(state["max_pending"], pending)
            struct.pack_into("<3q", shared, 8, state["peak"], state["max_pending"], state["worst"])
            time.sleep(0.02)

    llm, flush_every, duration = params.get("llm"), params.get("flush_every"), params.get("duration")
    answer = "y" * params.get("answer_chars", 40)

    def track_many(n: int, rate: float, tag: str) -> None:
        started = time.monotonic()
        worst = 0
        clock = time.perf_counter_ns
        for i in range(n):
            if duration and time.monotonic() - started > duration:
                break
            t = clock()
            if llm == "all" or (llm and i % 2):  # LLM exchanges too: batches of both paths
                client.track_llm(user_id=tag, prompt=f"{tag} {i}", generation=answer,
                                 properties={"i": i, "tag": tag})
            else:
                client.track(user_id=tag, event="chaos", properties={"i": i, "tag": tag, "plan": "pro"})
            worst = max(worst, clock() - t)
            if flush_every and i % flush_every == flush_every - 1:
                client.flush(timeout=0.5)  # flushes from every thread, overlapping
            with lock:
                state["tracked"] += 1
                struct.pack_into("<q", shared, 0, state["tracked"])  # exact, even under kill -9
            if rate and i % 50 == 0:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        with lock:
            state["worst"] = max(state["worst"], worst)

    async def track_async(n: int, rate: float) -> None:
        worst = 0
        clock = time.perf_counter_ns
        started = time.monotonic()
        for i in range(n):
            t = clock()
            client.track(user_id="async", event="chaos", properties={"i": i, "tag": "async"})
            worst = max(worst, clock() - t)
            with lock:
                state["tracked"] += 1
            if i % 50 == 0:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()) if rate else 0)
        with lock:
            state["worst"] = max(state["worst"], worst)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(0.1)
    baseline = rss()
    print("ready", flush=True)
    n, rate, threads = params["n"], params.get("rate", 0), params.get("threads", 1)

    if params.get("fork"):
        # gunicorn --preload style: the parent queues events, forks workers, keeps tracking
        track_many(n, 0, "parent-before")
        pids = []
        for w in range(params["fork"]):
            pid = os.fork()
            if pid == 0:
                track_many(n, 0, f"worker-{w}")
                client.close(timeout=60)
                os._exit(0)
            pids.append(pid)
        track_many(n, 0, "parent-after")
        for pid in pids:
            os.waitpid(pid, 0)
        with lock:
            state["tracked"] += params["fork"] * n  # the workers' calls
    else:
        workers = [threading.Thread(target=track_many, args=(n // threads, rate / threads, f"t{k}"))
                   for k in range(threads)]
        for worker in workers:
            worker.start()
        if params.get("asyncio"):
            asyncio.run(track_async(n // threads, rate / threads))
        for worker in workers:
            worker.join()
    print("tracked", flush=True)
    if params.get("exit_hook"):  # no close(): the exit hook's close(30) does it
        state["stop"] = True
        sampler.join()
        print(json.dumps({"sent": state["tracked"], "peak_rss": state["peak"], "baseline": baseline,
                          "max_pending": state["max_pending"], "per_event": None,
                          "worst_ns": state["worst"]}), flush=True)
        return
    client.close(timeout=params.get("close_timeout", 120))
    state["stop"] = True
    sampler.join()
    beyond = [(p, r) for p, r in samples if p > BOUND]
    at_bound = max((r for p, r in samples if p <= BOUND), default=0)
    per_event = None
    if beyond and max(p for p, _ in beyond) > BOUND + 5_000:
        top = max(p for p, _ in beyond)
        per_event = max(0, max(r for _, r in beyond) - at_bound) / (top - BOUND)
    print(json.dumps({"sent": state["tracked"], "peak_rss": state["peak"], "baseline": baseline,
                      "max_pending": state["max_pending"], "per_event": per_event,
                      "worst_ns": state["worst"]}), flush=True)


# --- the driver ------------------------------------------------------------------------------


def spawn(params: dict, spool: Path, endpoint_url: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TRUBRICS_HOST=endpoint_url, TRUBRICS_API_KEY=KEY,
               TRUBRICS_SPOOL=str(spool))
    return subprocess.Popen([sys.executable, __file__, "--child", json.dumps(params)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(name: str, params: dict, chaos, *, kill_after: float | None = None) -> dict:
    from trubrics_endpoint import TrubricsEndpoint

    with tempfile.TemporaryDirectory() as tmp, TrubricsEndpoint() as endpoint:
        shared = Path(tmp) / "shared"
        shared.write_bytes(bytes(_SHARED.size))
        params = dict(params, shared=str(shared))
        spool = Path(tmp) / "spool"
        if params.get("tmpfs") and not _mount_tmpfs(spool, params["tmpfs"]):
            return {"name": name, "skipped": "cannot mount a tmpfs (needs root)"}
        try:
            return _run_in(name, params, chaos, kill_after, spool, shared, endpoint)
        finally:
            if params.get("tmpfs"):
                subprocess.run(["umount", "-l", str(spool)], capture_output=True)


def _mount_tmpfs(directory: Path, size: str) -> bool:
    directory.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                          capture_output=True).returncode == 0


def _run_in(name: str, params: dict, chaos, kill_after: float | None, spool: Path, shared: Path,
            endpoint) -> dict:
    for method, kwargs in params.get("before", {}).items():  # faults in place before the first call
        getattr(endpoint, method)(**kwargs)
    proc = spawn(params, spool, endpoint.url)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    started = time.monotonic()
    chaos_thread = threading.Thread(target=chaos, args=(endpoint,), daemon=True)
    chaos_thread.start()
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        raw = _SHARED.unpack(shared.read_bytes()[: _SHARED.size])
        result = {"sent": raw[0], "peak_rss": raw[1], "max_pending": raw[2], "per_event": None,
                  "worst_ns": None, "baseline": None}  # a killed process reports no worst
        chaos_thread.join(30)
    else:
        out, err = proc.communicate(timeout=600)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{name}: child failed: {err[-2000:]}")
        result = json.loads(lines[-1])
        chaos_thread.join(120)
    if kill_after is not None or params.get("restart"):
        # the next start of the app (same endpoint, same spool) delivers the leftovers
        endpoint.heal()
        restart = spawn(dict(params, n=0, close_timeout=60, exit_hook=False), spool, endpoint.url)
        restart.communicate(timeout=180)
        result["sent"] += 1  # the restart's warm-up event
    events = endpoint.events() + endpoint.events("publish_llm_events")
    ids = {(e["properties"]["$trace_id"], e["properties"]["$span_id"]) for e in events}
    result.update(name=name, delivered=len(ids), dupes=len(events) - len(ids),
                  seconds=time.monotonic() - started)
    result["lost"] = max(0, result["sent"] - result["delivered"])
    return result


def _flaky(seconds: float):
    """The endpoint's random faults (503, 429, dropped, slow) for ``seconds``."""
    def chaos(endpoint) -> None:
        stop = threading.Event()
        threading.Timer(seconds, stop.set).start()
        endpoint.misbehave(stop)
    return chaos


def _after(seconds: float, action):
    def chaos(endpoint) -> None:
        time.sleep(seconds)
        action(endpoint)
    return chaos


SCENARIOS = {
    "burst": ("50k burst, healthy endpoint", dict(n=50_000), lambda e: None, None),
    "outage_5s": ("5 s outage (connection refused)", dict(n=30_000, rate=3_000),
                  _after(2, lambda e: e.go_down_for(5).join()), None),
    "outage_60s": ("60 s outage (connection refused)", dict(n=130_000, rate=2_000),
                   _after(2, lambda e: e.go_down_for(60).join()), None),
    "storm_429": ("429 storm, Retry-After: 1, for 8 s", dict(n=20_000, rate=2_000),
                  _after(1, lambda e: e.fail_for(8, status=429, headers={"Retry-After": "1"})), None),
    "hanging": ("endpoint hangs: 4 requests x 15 s, past the 10 s timeout (4 threads + asyncio)",
                dict(n=25_000, rate=2_500, threads=4, asyncio=True),
                _after(1, lambda e: e.reply(delay=15, times=4)), None),
    "kill9": ("kill -9 mid-stream during an outage, then restart",
              dict(n=10_000_000, rate=5_000, client={"flush_interval": 0.1}),
              lambda e: e.fail_for(4, status=503), 3.0),
    "kill9_healthy": ("kill -9 mid-stream, healthy endpoint, then restart",
                      dict(n=10_000_000, rate=5_000, client={"flush_interval": 0.1}),
                      lambda e: None, 3.0),
    "mixed_hung_close": ("mixed batch (500 track + 500 track_llm) hung in flight at close(timeout=2)",
                         dict(n=999, llm=True, close_timeout=2, restart=True,
                              client={"flush_interval": 60, "flush_batch_size": 1000},
                              before={"reply": {"delay": 300}}),
                         lambda e: None, None),
    "trickle_exit": ("same, headers trickled 1 line/s, the exit hook's close(30)",
                     dict(n=999, llm=True, exit_hook=True, restart=True,
                          client={"flush_interval": 60, "flush_batch_size": 1000},
                          before={"reply": {"trickle": 1.0}}),
                     lambda e: None, None),
    "concurrent_flaky": ("8 threads track/track_llm/flush for 30 s, flaky endpoint, then close",
                         dict(n=10**9, rate=4_000, threads=8, duration=30, llm=True, flush_every=200,
                              restart=True, client={"retry_timeout": 2}),
                         _flaky(30), None),
    "small_fs": ("16 MiB tmpfs, endpoint failing: 4,000 LLM events of ~2 KB",
                 dict(n=3_999, llm="all", answer_chars=1_800, tmpfs="16m", close_timeout=5,
                      restart=True, client={"retry_timeout": 0.1},
                      before={"fail_for": {"seconds": 600, "status": 503}}),
                 lambda e: None, None),
    "huge_retry_after": ("503 with Retry-After: 100000000, then healthy (retry_timeout=10)",
                         dict(n=20_000, rate=2_000, client={"retry_timeout": 10},
                              before={"reply": {"status": 503, "headers": {"Retry-After": "100000000"}}}),
                         lambda e: None, None),
    "huge_response": ("200 answers with a 500 MiB body (x3)",
                      dict(n=20_000, rate=5_000, before={"reply": {"body_bytes": 500 << 20, "times": 3}}),
                      lambda e: None, None),
    "fork": ("fork: parent queues 10k, 2 workers x 10k, parent 10k more",
             dict(n=10_000, fork=2, client={"flush_interval": 60, "flush_batch_size": 100_000}),
             lambda e: None, None),
}


def table(results: list[dict]) -> str:
    rows = [
        "| scenario | sent | delivered | lost | dupes | peak RSS (growth) | max pending "
        "| B/pending beyond bound | worst track() |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.get("skipped"):
            rows.append(f"| {r['title']} | skipped: {r['skipped']} |||||||")
            continue
        per = "—" if r["per_event"] is None else f"{r['per_event']:.0f}"
        worst = "—" if r["worst_ns"] is None else f"{r['worst_ns'] / 1e6:.1f} ms"
        growth = "" if not r.get("baseline") else f" (+{(r['peak_rss'] - r['baseline']) / 2**20:.0f})"
        rows.append(
            f"| {r['title']} | {r['sent']:,} | {r['delivered']:,} | {r['lost']:,} | {r['dupes']:,} "
            f"| {r['peak_rss'] / 2**20:.0f} MB{growth} | {r['max_pending']:,} | {per} | {worst} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)}")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    results = []
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    for key in args.scenarios or SCENARIOS:
        title, params, chaos, kill_after = SCENARIOS[key]
        result = run(key, params, chaos, kill_after=kill_after)
        result["title"] = title
        results.append(result)
        if result.get("skipped"):
            print(f"{key}: skipped ({result['skipped']})", file=sys.stderr, flush=True)
            continue
        print(f"{key}: {result['sent']:,} sent, {result['delivered']:,} delivered, "
              f"{result['lost']:,} lost in {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(table(results))
    return 1 if any(r.get("lost") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
