"""What pricing LLM events costs: per event on the export path, import time, install size.

    python benchmarks/bench_cost.py            # ~15 s
    python benchmarks/bench_cost.py --quick

Needs the maintained table (``pip install 'trubrics-otel[cost]'``). Per-event figures are the
best of several rounds over batches shaped like an export batch (known models, custom models,
unknown models, spans that carry their own cost); shared machines vary 2x run to run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from trubrics_otel.deliver.prices import load_price_table
from trubrics_otel.translate.cost import price_event

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)
CUSTOM = {"models": {"acme-ft-1": {"input_per_mtok": 0.8, "output_per_mtok": 3.2}}}
# MaintainedPrices prices these three kinds with its own arithmetic (checked in the tests)
FLAT = [  # one price per token type
    ("gpt-4o-mini-2024-07-18", "openai",
     {"input_tokens": 1200, "cache_read_input_tokens": 1024, "output_tokens": 300}),
    ("o3-mini", "openai", {"input_tokens": 2000, "output_tokens": 600, "reasoning_tokens": 448}),
    ("claude-haiku-4-5", "anthropic",
     {"input_tokens": 3300, "cache_read_input_tokens": 2000,
      "cache_creation_input_tokens": 1000, "output_tokens": 400}),
    ("gemini-2.5-flash", "gcp.gemini", {"input_tokens": 5000, "output_tokens": 1000}),
    ("openai/gpt-4o", None, {"input_tokens": 800, "output_tokens": 200}),
]
TIERED = [  # a higher rate above a context size
    ("claude-sonnet-4-5-20250929", "anthropic",
     {"input_tokens": 3300, "cache_read_input_tokens": 2000,
      "cache_creation_input_tokens": 1000, "output_tokens": 400}),
    ("gemini-2.5-pro", "gcp.gemini", {"input_tokens": 250_000, "output_tokens": 1000}),
]
DATED = [  # prices that change on a date: the rates in force at the event's time
    ("o3", "openai", {"input_tokens": 2000, "output_tokens": 600, "reasoning_tokens": 448}),
    ("claude-sonnet-4-6", "anthropic", {"input_tokens": 3300, "output_tokens": 400}),
]
OTHER_UNITS = [  # a per-request fee on top of tokens: genai-prices computes every call
    ("sonar", "perplexity", {"input_tokens": 3300, "output_tokens": 400}),
]
SHAPES: dict[str, list[tuple[str, str | None, dict]]] = {
    "flat-rate model": FLAT,
    "model with context tiers": TIERED,
    "model with dated prices": DATED,
    "per-request fee (genai-prices)": OTHER_UNITS,
    "custom model": [("acme-ft-1", None, {"input_tokens": 900, "output_tokens": 90})],
    "unknown model": [("acme-internal", "acme", {"input_tokens": 900, "output_tokens": 90})],
    "span carries a cost": [("gpt-4o", "openai",
                             {"input_tokens": 9, "output_tokens": 9, "cost_usd": 0.01})],
}


def per_event_us(run: Callable[[], int], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        events = run()
        best = min(best, (time.perf_counter() - start) / events)
    return best * 1e6


def batch_runner(table, events: list[tuple[str, str | None, dict]], n: int) -> Callable[[], int]:
    def run() -> int:
        for i in range(n):
            model, provider, properties = events[i % len(events)]
            price_event(dict(properties), model, provider, table, at=AT)
        return n
    return run


def import_seconds(statement: str, rounds: int) -> float:
    """Best wall time of ``statement`` in a fresh interpreter, minus the bare interpreter's."""
    def once(code: str) -> float:
        done = subprocess.run([sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; "
                               "print(time.perf_counter() - t)"],
                              capture_output=True, text=True, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    return min(once(statement) for _ in range(rounds))


def installed_kib(distribution: str, exclude: set[str]) -> tuple[float, list[str]]:
    """Disk used by a distribution and the dependencies it alone brings in, bytecode included.

    The top-level directories and files named in their RECORD files, measured on disk.
    """
    seen: set[str] = set()
    todo = [distribution]
    roots: set[Path] = set()
    while todo:
        name = _canonical(todo.pop())
        if name in seen or name in exclude:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # not for this platform / Python (a marker)
            continue
        seen.add(name)
        roots |= {Path(dist.locate_file(f.parts[0])) for f in dist.files or ()
                  if f.parts and f.parts[0] != ".."}  # console scripts live outside
        todo += [r for r in map(_requirement_name, dist.requires or ()) if r]
    files = {p for root in roots for p in ([root] if root.is_file() else root.rglob("*"))}
    return sum(p.stat().st_size for p in files if p.is_file()) / 1024, sorted(seen)


def base_closure() -> set[str]:
    _, names = installed_kib("trubrics-otel", set())
    return set(names)


def _requirement_name(requirement: str) -> str | None:
    if "extra ==" in requirement:
        return None
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return match.group(0) if match else None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (10_000, 5)

    table = load_price_table(CUSTOM, environ={})
    first = time.perf_counter()
    model, provider, properties = FLAT[0]
    price_event(dict(properties), model, provider, table, at=AT)
    first_event_ms = (time.perf_counter() - first) * 1e3

    print(f"pricing per event, best of {rounds} rounds of {n}:")
    for shape, events in SHAPES.items():
        print(f"  {shape:32s} {per_event_us(batch_runner(table, events, n), rounds):7.1f} µs")
    mixed = FLAT * 6 + TIERED + DATED + SHAPES["custom model"] * 2 + SHAPES["unknown model"]
    print(f"  {'mix 30:2:2:2:1 of the above':32s} {per_event_us(batch_runner(table, mixed, n), rounds):7.1f} µs")

    print(f"first event priced (imports genai-prices, loads its data): {first_event_ms:.0f} ms")
    bare = import_seconds("pass", rounds)
    for statement in ("import trubrics_otel", "import genai_prices"):
        print(f"  {statement:32s} {(import_seconds(statement, rounds) - bare) * 1e3:6.0f} ms")
    print("  (import trubrics_otel does not import genai_prices: it loads on the first event)")

    kib, brought = installed_kib("genai-prices", base_closure())
    print(f"install size of the [cost] extra: {kib / 1024:.1f} MiB "
          f"({', '.join(brought)}), version {metadata.version('genai-prices')}")


if __name__ == "__main__":
    main()
