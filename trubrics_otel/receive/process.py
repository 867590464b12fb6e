"""Tuning for our own long-running processes (``trubrics-otel bridge`` and ``serve``), never
for an app that imports the library::

    tune_for_server()   # once, after start-up, in the command's own process
    give_back_memory()  # after a large request: free heap pages go back to the system

Why the allocator settings: see :func:`give_back_memory` and ``_keep_large_buffers_mapped``.

Why the collector settings: CPython's cyclic garbage collector runs a young-generation pass
every 700 net new container objects. An OTLP request of 512 LLM spans keeps tens of thousands
of them alive until it is answered (decoded spans, attribute dicts, events), so those passes
walk the same live request again and again: measured at ~9% of the bridge's CPU per span
(``gc.callbacks`` timing, 30,720 spans). What the bridge and the server allocate dies by
reference counting; reference cycles are rare. So: collect and freeze what start-up built
(modules, the price table), then collect young objects every 50,000 net allocations instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import importlib.util
from typing import Any

YOUNG_GENERATION_THRESHOLD = 50_000


def tune_for_server() -> None:
    """Load the price table, freeze start-up's objects, and raise the young-generation
    threshold (the older generations keep their default ratios).

    The table is loaded now only with the ``[cost]`` extra installed; without it, the first
    priced event says how to install it, as in any process.
    """
    if importlib.util.find_spec("genai_prices") is not None:
        from trubrics_otel.deliver.prices import MaintainedPrices

        MaintainedPrices().available  # noqa: B018 - loads the maintained table, to freeze it
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
    _keep_large_buffers_mapped()


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters
MMAP_THRESHOLD_BYTES = 1 << 20
TRIM_THRESHOLD_BYTES = 64 << 20
ARENAS = 2


def _keep_large_buffers_mapped() -> None:
    """Allocations of 1 MiB or more get their own mapping, unmapped when freed; the heap keeps
    what a request freed for the next one; the threads share two heaps.

    Why the mapping: glibc raises its mmap threshold each time a large mapped block is freed (up
    to 32 MiB), so after one large request, request bodies come from the heap and stay there:
    measured 179 MiB held after eight 28 MiB requests (``benchmarks/bench_hostile.py memory``),
    38 MiB with a fixed threshold. Setting it fixes it at 1 MiB.

    Why the other two: fixing that threshold also freezes the heap's trim threshold where
    start-up left it (glibc's 128 KiB, unless a large block happened to be freed by then). At
    128 KiB the memory a request freed went back to the system at its end, whenever nothing
    allocated after it held the top of the heap (chance), and the next request faulted it in
    again a page at a time, each worker thread in its own heap (arena): ~1,100 page faults a
    512-span request against ~150, and 16,000-18,000 spans per CPU-second against 19,000-21,000
    (``benchmarks/bench_bridge.py``'s bridge process). Large requests still give it all back
    (:func:`give_back_memory`)."""
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        mallopt(M_ARENA_MAX, ARENAS)


def give_back_memory() -> None:
    """Return free heap pages to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Why: a 30 MiB protobuf request briefly needs a few hundred MiB; glibc keeps freed pages
    in its arenas, so without this the bridge holds its worst request's memory for ever.
    Costs a few milliseconds: call it after large requests only."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=4)
def _glibc(name: str) -> Any:
    """A glibc function, or None elsewhere (musl, macOS, Windows)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
