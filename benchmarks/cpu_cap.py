"""Cap processes at a fraction of a core each with the Linux CPU controller (benchmarks only).

::

    with CpuCaps(0.3) as caps:      # one-line RuntimeError when no writable CPU controller
        caps.cap(pid)               # pid (all its threads) into a cgroup of its own: 0.3 core
        ...
        caps.throttled(pid)         # share of its scheduler periods it hit the quota in
    worker_pids(serve_pid, 2)       # serve's processes that serve requests
    capped(cpu, rate, 2, 0.3, one)  # the benchmark's line: were the workers the limit?

bench_server_ingest.py ``--worker-cpu F``: a serve worker capped at F of a core, PostgreSQL and
the load generator not, emulates a database with cores of its own on a small machine: whether
two workers deliver twice one is then the design's question (serial locks), not the machine's.

cgroup v1 (``/sys/fs/cgroup/cpu``, ``cpu.cfs_quota_us``) or v2 (``cpu.max`` in a child of
``/sys/fs/cgroup`` or ``/sys/fs/cgroup/unified`` whose ``cgroup.subtree_control`` has ``cpu``
or accepts ``+cpu``); needs root. Every cgroup made is removed on exit, errors and Ctrl-C
included (processes still in one are moved back to the parent first).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 10_000  # the quota's period: a capped process stalls at most ~(1 - fraction) of it at
# a time, holding what it holds (a lock, a transaction): 10 ms, not the default 100 ms, which made
# two workers at a cap of 0.3 reach 1.67x one instead of 1.85x (track, same machine, same hour)


def _controller() -> tuple[Path, int]:
    """The directory new cgroups go in and the cgroup version, or a RuntimeError saying why none."""
    v1 = ROOT / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        if not os.access(v1, os.W_OK):
            raise RuntimeError(f"--worker-cpu: {v1} is not writable (run as root)")
        return v1, 1
    for base in (ROOT, ROOT / "unified"):
        controllers = base / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            enabled = base / "cgroup.subtree_control"
            if "cpu" not in enabled.read_text().split():
                try:
                    enabled.write_text("+cpu")
                except OSError as exc:
                    raise RuntimeError(f"--worker-cpu: cannot enable the cpu controller in {enabled}: "
                                       f"{exc.strerror}") from None
            return base, 2
    raise RuntimeError(f"--worker-cpu: no CPU controller: neither {v1}/cpu.cfs_quota_us (cgroup v1) nor "
                       f"'cpu' in {ROOT}/cgroup.controllers or {ROOT}/unified/cgroup.controllers (v2)")


class CpuCaps:
    """Cgroups of ``fraction`` of a core, one per process capped, all removed on exit."""

    def __init__(self, fraction: float) -> None:
        if not 0.01 <= fraction <= os.cpu_count():  # type: ignore[operator]
            raise RuntimeError(f"--worker-cpu: {fraction} is not between 0.01 and {os.cpu_count()} cores")
        self.fraction = fraction
        self._base, self._version = _controller()
        self._made: dict[int, Path] = {}

    def __enter__(self) -> CpuCaps:
        return self

    def cap(self, pid: int) -> None:
        """Move ``pid`` (every thread of it) into a cgroup of its own, capped at the fraction."""
        group = self._base / f"bench-worker-cpu-{os.getpid()}-{pid}"
        group.mkdir()
        self._made[pid] = group
        if self._version == 1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(round(self.fraction * PERIOD_US)))
        else:
            (group / "cpu.max").write_text(f"{round(self.fraction * PERIOD_US)} {PERIOD_US}")
        (group / "cgroup.procs").write_text(str(pid))

    def throttled(self, pid: int) -> float:
        """Share of the scheduler periods in which ``pid``'s cgroup ran out of its quota: near
        1, the process wanted more CPU than the cap all along (the cap was its limit)."""
        stat = dict(line.split() for line in (self._made[pid] / "cpu.stat").read_text().splitlines())
        return int(stat["nr_throttled"]) / max(1, int(stat["nr_periods"]))

    def release(self) -> None:
        """Remove every cgroup made; a process still in one goes back to the parent first."""
        for group in self._made.values():
            try:
                for pid in (group / "cgroup.procs").read_text().split():
                    try:
                        (self._base / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass  # exited meanwhile
                group.rmdir()
            except OSError:
                pass  # already gone
        self._made.clear()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def worker_pids(serve: int, workers: int) -> list[int]:
    """The processes of ``trubrics-otel serve`` (pid ``serve``) that serve requests: itself with
    one worker, else the workers its supervisor forked (all up once its banner is out)."""
    import psutil

    if workers == 1:
        return [serve]
    pids = [child.pid for child in psutil.Process(serve).children()]
    assert len(pids) == workers, f"{len(pids)} worker processes under serve, {workers} expected"
    return pids


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (every process, other jobs' too)."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def capped(cpu: dict[str, float], rate: float, workers: int, fraction: float, one: dict[str, float]) -> str:
    """``--worker-cpu``: were the capped workers the limit (each near its cap, throttled), and
    was the machine not the limit (cores busy, ours and other jobs')? ``one``: one worker's
    round, against which the workers' cores in all (x2 / x1 = that x serve's µs per event x1 / x2)."""
    ours = (cpu["serve"] + cpu["postgres"] + cpu["clients"]) * rate / 1e6
    return (f"x{workers}: {cpu['worker']:.2f} core/worker (cap {fraction}), throttled {cpu['throttled']:.0%}"
            + (f", cores {workers * cpu['worker'] / one['worker']:.2f}x x1's" if workers > 1 else "")
            + (f", least busy {cpu['spread']:.0%} of the busiest" if workers > 1 else "")
            + f"; last read {cpu['last']:.0%} of the round; "
            f"busy: ours {ours:.2f}, machine {cpu['machine']:.2f} of {os.cpu_count()} cores"
            + ("  (workers below their cap: not the limit)" if cpu["throttled"] < 0.5 else "")
            + ("  (machine saturated)" if cpu["machine"] > 0.9 * (os.cpu_count() or 1) else ""))
