"""The garbage collector and the allocator are tuned in our own server processes only, never
in an app's.

``trubrics-otel bridge`` and ``serve`` freeze what start-up built and raise the young
generation's threshold (``receive/process.py``: ~9% of the bridge's CPU went to young-generation
passes over live requests), and keep the memory a request freed for the next one (glibc gave
it back at each request's end, and each request faulted it in again). An app that imports the
library keeps its own settings.
"""

from __future__ import annotations

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
import resource, sys, threading
if sys.argv[1] == "tuned":
    from trubrics_otel.receive.process import tune_for_server
    tune_for_server()
faults = []
def requests():  # what a worker thread does with each request: allocate, then free, ~20 MB
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        held = [bytes(1000) for _ in range(20_000)]
        del held
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
worker = threading.Thread(target=requests)
worker.start()
worker.join()
print(*faults)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, faults from getrusage")
def test_a_server_process_reuses_the_memory_a_request_freed_without_faulting_it_in_again():
    def faults(mode: str) -> list[int]:
        done = subprocess.run([sys.executable, "-c", REQUESTS_ON_A_WORKER, mode], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [int(n) for n in done.stdout.split()]

    plain, tuned = faults("plain"), faults("tuned")
    assert min(plain) > 2_000  # ~5,000 pages: each "request" maps its ~20 MB afresh
    assert tuned[0] > 2_000 and max(tuned[1:]) < 200  # the first one only
