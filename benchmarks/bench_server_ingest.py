"""The local server's ingest rate over HTTP, with the peer benchmark's payloads, per engine.

    python benchmarks/bench_server_ingest.py          # 20,000 of each payload, best of 3
    python benchmarks/bench_server_ingest.py --engines sqlite --rounds 1
    python benchmarks/bench_server_ingest.py --engines postgresql --clients load --compare /tmp/base
    python benchmarks/bench_server_ingest.py --engines postgresql --clients load --worker-cpu 0.15

``trubrics-otel serve`` runs in its own process (127.0.0.1, any free port) on a fresh store: a
SQLite file; a PostgreSQL database with one worker; the same with ``--workers 2`` (PostgreSQL
in a throwaway cluster, tests/postgres_cluster.py, when its binaries exist).

Two clients per setup and payload, each timed from the first request until every event was
accepted and a read of ``/api/stats`` answered (SQLite folds what it holds into the summary
tables before a read), and each round checked: the database holds N events, each once.

* The server's rate: a light load generator, separate processes (``--senders``, each with
  ``--connections`` keep-alive ``http.client`` connections) posting request bodies of 100
  events in the SDK's wire format, encoded before the clock starts, unique ids per event. Its
  CPU per event is printed too: it shares the machine's cores with the server under test.
* "with our SDK as client": two ``Trubrics`` clients in this process each track N/2 events
  with ``flush_batch_size=100`` (~55-75 µs of CPU per event, on the same cores).

Beside each rate: the CPU time per 1,000 events of serve's processes, of PostgreSQL's, and of
the clients, which says where a shared machine's cores went (serve's and PostgreSQL's need psutil);
under each PostgreSQL row, the share of the round its fold's lock was held (one fold runs at a
time, over every worker's queued events; batches are stored without waiting for it: near 100 %,
the folds barely keep up with the ingest, and the last read waits for what is left).

Under the PostgreSQL rows, the scaling arithmetic from the CPU split of this tree's one-worker
round (µs per event: ``s`` serve's, ``p`` PostgreSQL's, ``l`` the clients'): a worker is bound
to ~1 core by Python's GIL, so one worker tops out at ~1/s events/s, and a machine of ``C`` cores
at C/(s+p+l) whatever the workers. Two workers reach 1.5x one worker only when the machine
allows 1.5/s: C >= 1.5 (s+p+l)/s cores, printed beside ``os.cpu_count()`` (and the cores with
the clients on other machines, 1.5 (s+p)/s). Below that, the ratio is the machine's, not the
server's (~1.0 on 2 cores).

``--worker-cpu F`` (default 0.15; Linux, root): each process that serves requests (``serve``
itself with one worker, each forked worker with two) is moved into a cgroup of its own capped at
F of a core (benchmarks/cpu_cap.py: cgroup v1's ``cpu.cfs_quota_us`` or v2's ``cpu.max``, a
10 ms period; removed after each round and on any exit); PostgreSQL and the clients are not.
That emulates a database with cores of its own on a small machine: the workers are the limit,
so x2 / x1 near 2 says the design has no serial bottleneck between workers (the fold's lock,
the queue table, a sequence), and well under 2 that something serializes them. Under each
PostgreSQL row: each worker's cores (near F: they were the limit; with two, their sum against
one's, x2 / x1 being that times serve's µs per event x1 / x2, and the least busy against the
busiest), the share of its busy periods it was throttled in, the last read's share of the
round, the cores the round used (``ours``) and the machine's busy cores (other jobs' too):
"machine saturated", other processes competed for the cores; a worker below its cap
(throttled under half its periods) was not the limit: choose a smaller F. Not shown: rates
above the caps' (a fold lock held x % at R events/s binds near R / x), and a capped worker
stalls up to ~(1 - F) x 10 ms at a time holding its locks and transactions (the emulation's).

``--compare DIR``: each setup run again with another copy's ``serve`` (a baseline checkout: the
directory holding its ``trubrics_otel/``), rounds interleaved, on the same cluster: on a shared
machine, a difference between two trees is only seen side by side.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent / "peers"), str(Path(__file__).resolve().parent.parent / "tests")]

try:
    import psutil
except ImportError:  # the rates alone, no CPU split
    psutil = None

from cpu_cap import CpuCaps, busy_s, capped, worker_pids  # noqa: E402
from other_copy import command  # noqa: E402
from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402

N = 20_000  # per round
BATCH = 100  # events per request, as the SDK's flush_batch_size=100
ROUTE = {"track": "/publish_events", "llm": "/publish_llm_events"}


def serve(db: str, workers: int, tree: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """``serve`` of this worktree, or of the copy in ``tree``."""
    program = command(tree, module="trubrics_otel") if tree else [sys.executable, "-m", "trubrics_otel"]
    server = subprocess.Popen(
        [*program, "serve", "--db", db, "--port", "0", "--no-grpc",
         "--log-level", "WARNING", "--workers", str(workers)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if found:
            return server, f"http://127.0.0.1:{found.group(1)}"
    raise RuntimeError("the server did not start")


# --- the light load generator (run as ``--sender``, a process of its own) -----------------------

def wire_event(mode: str, i: int, now: str) -> dict[str, Any]:
    """Event ``i`` as our SDK puts it on the wire (the peer benchmark's payload, its ids)."""
    p = make_payload(mode, i)
    p["properties"].update({"$trace_id": f"{i + 1:032x}", "$span_id": f"{i + 1:016x}"})
    if mode == "track":
        return {**p, "timestamp": now}
    return {"user_id": p["user_id"], "prompt": p["prompt"], "generation": p["generation"],
            "prompt_event_name": "Prompt", "generation_event_name": "Generation",
            "assistant_id": ASSISTANT_ID, "properties": p["properties"], "timestamp": now,
            "latency": LATENCY_S, "thread_id": THREAD_ID}


def sender(url: str, mode: str, first: int, count: int, connections: int) -> None:
    """Encode ``count`` events from ``first`` as bodies of 100, say ``ready``, wait for a line
    on stdin, post them over ``connections`` keep-alive connections, each taking the next body
    when answered (a connection stays with its worker: fixed shares made the round wait for
    the busier one), then print ``stored duplicates cpu_s`` (the CPU of the sending alone)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    bodies = [json.dumps([wire_event(mode, i, now) for i in range(start, min(start + BATCH, first + count))],
                         separators=(",", ":")).encode() for start in range(first, first + count, BATCH)]
    host, port = url.removeprefix("http://").split(":")
    totals = [0, 0]
    lock = threading.Lock()

    pending = iter(bodies)  # shared: a connection whose worker answers sooner posts more

    def take() -> bytes | None:
        with lock:
            return next(pending, None)

    def post() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=300)
        headers = {"content-type": "application/json", "x-api-key": "bench-key"}
        while (body := take()) is not None:
            while True:
                connection.request("POST", ROUTE[mode], body, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status == 200:
                    break
                if response.status != 503:
                    raise RuntimeError(f"{response.status}: {answer[:200]!r}")
                time.sleep(0.05)  # the database busy or restarting: the SDK retries too
            result = json.loads(answer)
            with lock:
                totals[0] += result["stored"]
                totals[1] += result["duplicates"]
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(connections)]
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(totals[0], totals[1], time.process_time() - cpu, flush=True)


def generate(url: str, mode: str, senders: int, connections: int,
             mark: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Seconds to send N events with the load generator, and its CPU seconds; ``mark()`` is
    called as the clock starts."""
    share = N // senders
    procs = [subprocess.Popen([sys.executable, __file__, "--sender", url, mode, str(k * share), str(share),
                               str(connections)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for k in range(senders)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    mark()
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [proc.stdout.readline().split() for proc in procs if proc.stdout is not None]
    took = time.perf_counter() - start
    for proc in procs:
        proc.wait(30)
    stored = sum(int(r[0]) for r in results)
    duplicates = sum(int(r[1]) for r in results)
    assert (stored, duplicates) == (N, 0), f"the server stored {stored} and found {duplicates} duplicates of {N}"
    return took, sum(float(r[2]) for r in results)


# --- the SDK as client -----------------------------------------------------------------------

def send(url: str, mode: str, first: int, count: int, left: list[int]) -> None:
    from trubrics_otel import Trubrics

    client = Trubrics(api_key="bench-key", host=url, flush_batch_size=BATCH, spool=False)
    for i in range(first, first + count):
        p = make_payload(mode, i)
        if mode == "track":
            client.track(user_id=p["user_id"], event=p["event"], properties=p["properties"])
        else:
            client.track_llm(user_id=p["user_id"], prompt=p["prompt"], generation=p["generation"],
                             assistant_id=ASSISTANT_ID, properties=p["properties"],
                             latency=LATENCY_S, thread_id=THREAD_ID)
    left.append(client.flush(timeout=300))
    client.close()


def sdk_clients(url: str, mode: str) -> tuple[float, float]:
    """Seconds for two SDK clients in this process to deliver N events, and this process's CPU."""
    left: list[int] = []
    senders = [threading.Thread(target=send, args=(url, mode, k * N // 2, N // 2, left)) for k in range(2)]
    cpu = time.process_time()
    start = time.perf_counter()
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    took = time.perf_counter() - start
    assert left == [0, 0], f"{left} events not accepted"
    return took, time.process_time() - cpu


def cpu_s(processes: list[Any]) -> float:
    """CPU seconds (user + system) used so far by these processes and their children (NaN
    without psutil)."""
    if psutil is None:
        return math.nan
    total = 0.0
    for process in {p for root in processes for p in (root, *root.children(recursive=True))}:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def settle(url: str) -> float:
    """Seconds the server takes to answer a read, which first folds every event it holds into
    its summary tables (SQLite folds in bulk, before any read): counted in the round's time."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    start = time.perf_counter()
    connection.request("GET", "/api/stats")
    response = connection.getresponse()
    response.read()
    took = time.perf_counter() - start
    connection.close()
    assert response.status == 200, response.status
    return took


def stored_once(db: str) -> None:
    """Every event of the round is in the database, once."""
    from trubrics_otel.server.store import Store

    store = Store(db, hooks=())
    try:
        with store.reader() as c:
            rows, distinct = c.rows("SELECT COUNT(*), COUNT(DISTINCT trace_id || span_id) FROM events")[0]
    finally:
        store.close()
    assert rows == distinct == N, f"{rows} rows, {distinct} distinct events stored; {N} sent"


class FoldLock:
    """How much of a round the PostgreSQL fold's lock was held: ``pg_locks`` read every 20 ms
    by one connection of its own (its backend's CPU, :attr:`cpu_s`, is not PostgreSQL's
    share of the server's work: subtract it). One fold runs at a time, over the events every
    worker queued: a lock held all the time would be the folds' ceiling (the queue growing
    faster than they empty it), though the batches are stored without waiting for them."""

    def __init__(self, db: str) -> None:
        import psycopg

        from trubrics_otel.server.store.postgres_fold import WRITE_LOCK

        self._stop = threading.Event()
        self._connection = psycopg.connect(db, autocommit=True)
        backend = self._connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        self._backend = psutil.Process(backend) if psutil else None
        self._start_cpu = cpu_s([self._backend]) if self._backend else math.nan
        self._query = ("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                       f"AND classid = {WRITE_LOCK >> 32} AND objid = {WRITE_LOCK & 0xFFFFFFFF}")
        self.samples = [0, 0]  # held, taken
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            held = self._connection.execute(self._query).fetchone()[0]
            self.samples[0] += held > 0
            self.samples[1] += 1

    def stop(self) -> tuple[float, float]:
        """(share of the samples in which the lock was held, CPU seconds of the sampling backend)."""
        self._stop.set()
        self._thread.join()
        used = cpu_s([self._backend]) - self._start_cpu if self._backend else 0.0
        self._connection.close()
        return self.samples[0] / max(1, self.samples[1]), used


def one_round(mode: str, db: str, workers: int, postgres: Any, client: str = "load", senders: int = 2,
              connections: int = 4, tree: str | None = None,
              caps: CpuCaps | None = None) -> tuple[float, dict[str, float]]:
    """Events/s, and CPU ms per 1,000 events by part (serve's processes, PostgreSQL, clients);
    PostgreSQL: ``lock``, the share of the round its fold's lock was held (:class:`FoldLock`).
    ``client``: ``load`` (the load generator) or ``sdk`` (two SDK clients in this process).
    ``caps``: each worker process capped (``--worker-cpu``); then also ``worker`` (cores each
    worker used), ``throttled`` (the share of its periods it hit the cap in, mean over the
    workers) and ``machine`` (cores the whole machine was busy, other jobs included)."""
    server, url = serve(db, workers, tree)
    parts = {"serve": [psutil.Process(server.pid)] if psutil else [], "postgres": [postgres] if postgres else []}
    try:
        pids = worker_pids(server.pid, workers) if caps else []
        for pid in pids:
            caps.cap(pid)  # type: ignore[union-attr]
        settle(url)  # serving: one worker loads the price table after its banner
        before = {name: cpu_s(processes) for name, processes in parts.items()}
        each = [cpu_s([psutil.Process(pid)]) for pid in pids]
        machine: list[float] = []  # busy CPU seconds and the clock as the round starts
        lock = FoldLock(db) if postgres else None
        if client == "load":
            took, client_cpu = generate(url, mode, senders, connections,
                                        lambda: machine.extend((busy_s(), time.perf_counter())))
        else:
            took, client_cpu = sdk_clients(url, mode)
        last = settle(url)
        took += last
        held, sampling_s = lock.stop() if lock else (math.nan, 0.0)
        used = {name: (cpu_s(processes) - before[name]) * 1e6 / N for name, processes in parts.items()}
        used["postgres"] = used.get("postgres", 0.0) - sampling_s * 1e6 / N
        used["clients"] = client_cpu * 1e6 / N
        used["lock"] = held
        if caps:
            used["worker"] = used["serve"] * N / 1e6 / took / workers
            each = [(cpu_s([psutil.Process(pid)]) - cpu) / took for pid, cpu in zip(pids, each)]
            used["spread"] = min(each) / max(each)  # 1: the workers took an equal share
            used["throttled"] = sum(caps.throttled(pid) for pid in pids) / workers
            used["last"] = last / took
            used["machine"] = (busy_s() - machine[0]) / (time.perf_counter() - machine[1]) if machine else math.nan
    finally:
        server.terminate()
        server.wait(30)
        if caps:
            caps.release()
    stored_once(db)
    return N / took, used


def scaling(cpu: dict[str, float]) -> str:
    """The cores two workers need to reach 1.5x one worker, from one worker's CPU per event (see
    the module's docstring): 1.5 (s+p+l)/s, and 1.5 (s+p)/s with the clients elsewhere."""
    s, p, l = cpu["serve"], cpu["postgres"], cpu["clients"]
    return (f"{'  x2 >= 1.5 x1 needs':22} {1.5 * (s + p + l) / s:.1f} cores (serve {s:.0f} + PostgreSQL {p:.0f} "
            f"+ clients {l:.0f} µs/event, over serve's); {1.5 * (s + p) / s:.1f} with the clients elsewhere; "
            f"this machine: {os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per sender")
    parser.add_argument("--clients", nargs="+", default=["load", "sdk"], choices=["load", "sdk"])
    parser.add_argument("--modes", nargs="+", default=["track", "llm"], choices=["track", "llm"])
    parser.add_argument("--compare", metavar="DIR", help="also run another copy's serve (DIR holds its trubrics_otel/)")
    parser.add_argument("--worker-cpu", type=float, metavar="F", nargs="?", const=0.15,
                        help="cap each serve worker process at F of a core (default 0.15; Linux cgroups, root)")
    args = parser.parse_args()
    caps = None
    if args.worker_cpu is not None:
        if psutil is None:
            sys.exit("--worker-cpu needs psutil (to find serve's worker processes)")
        try:
            caps = CpuCaps(args.worker_cpu)
        except RuntimeError as exc:
            sys.exit(str(exc))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cgroups removed (finally) then too
    trees = (None, args.compare) if args.compare else (None,)
    setups = [("sqlite", 1, tree) for tree in trees] if "sqlite" in args.engines else []
    cluster = postgres = None
    if "postgresql" in args.engines:
        import postgres_cluster

        reason = postgres_cluster.unavailable()
        if reason:
            print(f"postgresql skipped: {reason}")
        else:
            cluster = postgres_cluster.PostgresCluster().__enter__()
            if psutil:
                postgres = psutil.Process(int((cluster.data / "postmaster.pid").read_text().split()[0]))
            setups += [("postgresql", workers, tree) for tree in trees for workers in (1, 2)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            names = iter(range(1000))

            def fresh(engine: str) -> str:
                return cluster.create_database() if cluster and engine == "postgresql" else f"{tmp}/{next(names)}.db"

            print(f"events/s accepted by `trubrics-otel serve`, best of {args.rounds} rounds of {N:,} "
                  f"(setups interleaved); CPU ms per 1,000 events in that round: serve / postgres / clients")
            print(f"load generator: {args.senders} processes x {args.connections} keep-alive connections, "
                  f"bodies of {BATCH} events encoded in advance")
            if args.compare:
                print(f"base: {args.compare}'s serve")
            if caps:
                print(f"workers capped at {caps.fraction} of a core each (Linux CPU controller), PostgreSQL and "
                      f"the clients not: emulates a database with cores of its own (x2 / x1 ~2: no serial "
                      f"bottleneck)")
            print(f"{'':22} " + " ".join(f"{f'{e} x{w}' + (' base' if t else ''):>30}" for e, w, t in setups)
                  + "".join(f"   PG x2 / x1{' base' if t else ''}" for t in trees if cluster))
            for mode in args.modes:
                for client in args.clients:
                    results: list[list[tuple[float, dict[str, float]]]] = [[] for _ in setups]
                    for _ in range(args.rounds):  # interleaved: a busy moment hits every setup alike
                        for k, (e, w, t) in enumerate(setups):
                            results[k].append(one_round(mode, fresh(e), w, postgres if e == "postgresql" else None,
                                                        client, args.senders, args.connections, t, caps))
                    best = [max(r, key=lambda x: x[0]) for r in results]
                    cells = [f"{rate:8,.0f} ({cpu['serve']:4.0f}/{cpu['postgres']:4.0f}/{cpu['clients']:4.0f})"
                             for rate, cpu in best]
                    pg = {(w, t): rate for (e, w, t), (rate, _) in zip(setups, best) if e == "postgresql"}
                    ratio = "".join(f"   {pg[2, t] / pg[1, t]:12.2f}{'     ' if t else ''}" for t in trees if cluster)
                    label = f"{mode} {'' if client == 'load' else 'with our SDK as client'}"
                    print(f"{label:22} " + " ".join(f"{cell:>30}" for cell in cells) + ratio, flush=True)
                    if cluster:
                        for (e, w, t), (rate, cpu) in zip(setups, best):
                            if caps and e == "postgresql":
                                label = f"  capped{' base' if t else ''}"
                                one = best[setups.index(("postgresql", 1, t))][1]
                                print(f"{label:22} {capped(cpu, rate, w, caps.fraction, one)}", flush=True)
                        if not caps:
                            print(scaling(best[setups.index(("postgresql", 1, None))][1]), flush=True)
                        held = [f"{cpu['lock']:.0%}" if e == "postgresql" else "" for (e, _, _), (_, cpu) in zip(setups, best)]
                        print(f"{'  fold lock held':22} " + " ".join(f"{cell:>30}" for cell in held), flush=True)
    finally:
        if caps:
            caps.release()
        if cluster is not None:
            cluster.__exit__(None, None, None)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        sender(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
