"""Several worker processes serving one port (``trubrics-otel serve --workers N``).

::

    listener = listening_socket("127.0.0.1", 8787)
    supervisor = Supervisor(run_worker, workers=2, logger=logger)   # run_worker(slot, ready) -> code
    notes = supervisor.start()      # forks the workers; each one's ready(text) note, once all are up
    supervisor.run()                # until SIGINT / SIGTERM; a worker that dies is replaced

Pre-fork: the parent binds and listens before any thread exists, then forks; every worker
accepts from that one socket, so a connection waiting in its queue is taken by whichever
worker is free, and one left by a worker that died is served by another. Each worker has its
own store connections (a PostgreSQL pool; SQLite connections) and decodes, validates and
stores in parallel with the others.

The parent only supervises: it never opens the database after forking, and owns no thread.
A worker that exits is forked again (after 1 s, doubling to 30 s while they keep dying at
start, e.g. the database is down); SIGINT or SIGTERM sends SIGTERM to every worker, waits for
their running requests to finish (those are acknowledged after COMMIT, so nothing acknowledged
is lost), and after ``stop_timeout_s`` kills what is left. The parent installs these signal
handlers: it is the application here (the CLI's own process), not a library.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Ready = Callable[[str], None]
"""A worker calls it once it listens, with a note for the parent (e.g. its gRPC port)."""

BACKLOG = 1024
RESTART_DELAY_S = (1.0, 30.0)  # first delay, cap: doubled while workers die within UP_S of start
UP_S = 10.0
START_TIMEOUT_S = 120.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, inherited by forked workers."""
    if not 0 <= int(port) <= 65535:
        raise OSError(f"cannot listen on {host}:{port}: a port is 0 to 65535")
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except OSError as exc:
        listener.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.set_inheritable(True)
    return listener


class WorkerFailed(Exception):
    """A worker exited before it listened (its own error is on stderr already)."""


class Supervisor:
    def __init__(self, run_worker: Callable[[int, Ready], int], *, workers: int,
                 logger: logging.Logger, stop_timeout_s: float = 15.0) -> None:
        self._run_worker = run_worker
        self._workers = workers
        self._logger = logger
        self._stop_timeout_s = stop_timeout_s
        self._children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started at)
        self._stopping = False
        self._delay_s = RESTART_DELAY_S[0]

    @property
    def pids(self) -> list[int]:
        return list(self._children)

    def start(self) -> list[str]:
        """Fork every worker and wait until each listens; their notes, by slot. A worker
        that fails first: the others are stopped and :class:`WorkerFailed` raised."""
        notes = []
        try:
            for slot in range(self._workers):
                notes.append(self._spawn(slot))
        except BaseException:
            self.stop()
            raise
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        return notes

    def run(self) -> int:
        """Replace workers that exit until a signal; then stop them all. Exit code 0."""
        while self._children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if self._stopping and time.monotonic() > self._deadline:
                    self._kill_remaining()
                time.sleep(0.1)
                continue
            slot, started = self._children.pop(pid, (None, 0.0))
            if slot is None or self._stopping:
                continue
            self._replace(slot, pid, status, time.monotonic() - started)
        return 0

    def stop(self) -> None:
        """SIGTERM to every worker, then wait (up to ``stop_timeout_s``) for them to exit."""
        self._begin_stop()
        self.run()

    # --- the parent's side ---------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self._begin_stop()

    def _begin_stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._deadline = time.monotonic() + self._stop_timeout_s
        for pid in self._children:
            _signal(pid, signal.SIGTERM)

    def _kill_remaining(self) -> None:
        for pid, (slot, _) in self._children.items():
            self._logger.error("worker %d (pid %d) did not stop in %.0f s; killing it", slot, pid,
                               self._stop_timeout_s)
            _signal(pid, signal.SIGKILL)
        self._deadline = float("inf")

    def _replace(self, slot: int, pid: int, status: int, lived_s: float) -> None:
        how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exited with code {os.waitstatus_to_exitcode(status)}")
        if lived_s > UP_S:  # it served a while: a new one at once
            self._delay_s, delay = RESTART_DELAY_S[0], 0.0
        else:  # dying at start (the database down?): wait longer each time
            delay, self._delay_s = self._delay_s, min(self._delay_s * 2, RESTART_DELAY_S[1])
        self._logger.warning("worker %d (pid %d) %s; starting another%s", slot, pid, how,
                             f" in {delay:.0f} s" if delay else "")
        while self._pause(delay):
            try:
                self._spawn(slot)
                return
            except WorkerFailed as exc:
                delay, self._delay_s = self._delay_s, min(self._delay_s * 2, RESTART_DELAY_S[1])
                self._logger.warning("%s; trying again in %.0f s", exc, delay)

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; whether to go on."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and not self._stopping:
            time.sleep(0.1)
        return not self._stopping

    def _spawn(self, slot: int) -> str:
        """Fork worker ``slot``; its ready note once it listens, else :class:`WorkerFailed`."""
        read_end, write_end = os.pipe()
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_end)
            _worker_main(self._run_worker, slot, write_end, parent)
        os.close(write_end)
        self._children[pid] = (slot, time.monotonic())
        try:
            note = _read_note(read_end, START_TIMEOUT_S)
        finally:
            os.close(read_end)
        if note is None:  # it exited, or said nothing in time
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._children.pop(pid, None)
            raise WorkerFailed(f"worker {slot} stopped before it listened")
        return note


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _read_note(fd: int, timeout_s: float) -> str | None:
    """The worker's ready line, or None when it exited (EOF) or said nothing in time."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return data.decode().rstrip("\n")


def _worker_main(run_worker: Callable[[int, Ready], int], slot: int, ready_fd: int, parent: int) -> None:
    """In the forked worker: SIGTERM stops it as Ctrl-C does; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, _stop_once)
        signal.signal(signal.SIGTERM, _stop_once)
        _stop_with(parent)

        def ready(note: str) -> None:
            os.write(ready_fd, note.replace("\n", " ").encode() + b"\n")
            os.close(ready_fd)

        code = run_worker(slot, ready)
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_once(signum: int, frame: object) -> None:
    """A worker's first SIGINT or SIGTERM stops it as Ctrl-C does; later ones are ignored. Ctrl-C
    reaches every worker and the supervisor, which then sends SIGTERM: a second KeyboardInterrupt
    inside the stop the first began broke it with a traceback (``release unlocked lock``)."""
    for later in (signal.SIGINT, signal.SIGTERM):  # a Python no-op, not SIG_IGN: one already
        signal.signal(later, _ignore)               # pending would be reported as an error
    raise KeyboardInterrupt


def _ignore(signum: int, frame: object) -> None:
    pass


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``docker stop``, systemd) stops a one-process serve as Ctrl-C does:
    the server stopped, its store closed, exit 0. Only from the main thread (signals can be set
    nowhere else); the previous handler is put back for a caller of ``main()`` such as a test."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_with(parent: int) -> None:
    """Linux: SIGTERM this worker when the parent dies, even by SIGKILL (no orphan keeps the
    port); elsewhere the parent's own stop is the only one."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl
        raise KeyboardInterrupt
