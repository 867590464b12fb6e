"""The garbage collector and the allocator are tuned in our own server processes only, never
in an app's.

``trubrics-otel bridge`` and ``serve`` freeze what start-up built and raise the young
generation's threshold (``receive/process.py``: ~9% of the bridge's CPU went to young-generation
passes over live requests), and keep the memory a request freed for the next one (glibc gave
it back at each request's end, and each request faulted it in again). An app that imports the
library keeps its own settings.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_library_leaves_the_apps_garbage_collector_alone():
    out = _run(
        "import gc; before = gc.get_threshold()\n"
        "import trubrics_otel\n"
        "client = trubrics_otel.Trubrics(api_key='k', host='http://127.0.0.1:9', spool=False)\n"
        "client.track('u1', 'Sign up'); client.track_llm('u1', 'hi', 'hello'); client.close(timeout=0.5)\n"
        "print(gc.get_threshold() == before, gc.get_freeze_count())"
    )
    assert out == "True 0"


def test_a_server_process_freezes_start_up_and_collects_young_objects_less_often():
    out = _run(
        "import gc, sys\n"
        "from trubrics_otel.receive.process import YOUNG_GENERATION_THRESHOLD, tune_for_server\n"
        "tune_for_server()\n"
        "print(gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD, gc.get_freeze_count() > 1000,\n"
        "      'genai_prices' in sys.modules)"
    )
    assert out == "True True True"


REQUESTS_ON_A_WORKER = """
import os, resource, sys, threading
if sys.argv[1] == "tuned":
    from trubrics_otel.receive.process import tune_for_server
    tune_for_server()
PAGE, STATM = os.sysconf("SC_PAGE_SIZE"), os.open("/proc/self/statm", os.O_RDONLY)
def resident_mib():  # no buffered file: its buffer, on the heap, would keep the heap from shrinking
    return int(os.pread(STATM, 200, 0).split()[1]) * PAGE / (1 << 20)
kept, faults = [], []
def requests():  # what a worker thread does with each request: allocate ~20 MB, then free it
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        held = [bytes(1000) for _ in range(20_000)]
        start = resident_mib() - len(held) * 1000 / (1 << 20)
        del held
        kept.append(resident_mib() - start)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
worker = threading.Thread(target=requests)
worker.start()
worker.join()
print(min(kept), max(faults[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, /proc")
def test_a_server_process_keeps_the_memory_a_request_freed_for_the_next_one():
    def run(mode: str) -> tuple[float, int]:
        kept, faults = _run_argument(REQUESTS_ON_A_WORKER, mode).split()
        return float(kept), int(faults)

    plain, tuned = run("plain"), run("tuned")
    assert plain[0] < 5  # glibc gave the ~20 MB back at once...
    assert tuned[0] > 15  # ...kept here for the next request,
    assert tuned[1] < 200  # which faults none of it in again (~5,000 pages a time without)


def _run_argument(code: str, argument: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, argument], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


THREADS_AT_ONCE = """
import ctypes, sys, threading
if sys.argv[1] == "tuned":
    from trubrics_otel.receive.process import tune_for_server
    tune_for_server()
together = threading.Barrier(6)
def request():  # six worker threads, each holding a request's objects at the same time
    held = [bytes(100) for _ in range(1000)]
    together.wait()
    del held
workers = [threading.Thread(target=request) for _ in range(6)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena n:" block per heap, on stderr
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_a_server_process_s_threads_share_a_few_heaps_not_one_each():
    """Each heap (arena) keeps its own freed memory: one per thread multiplies what is held."""
    def heaps(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", THREADS_AT_ONCE, mode], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr.count("Arena ")

    assert heaps("plain") >= 7  # the main thread's and one per worker
    assert heaps("tuned") <= 3  # two arenas (glibc may count the main one apart)
