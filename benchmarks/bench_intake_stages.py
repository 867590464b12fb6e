"""CPU per span of each Python stage of `serve`'s OTLP intake, in this process, without the store.

    python benchmarks/bench_intake_stages.py                 # best of 15 rounds, 600 traces
    python benchmarks/bench_intake_stages.py --compare /tmp/base   # a copy of the package
                                                              # beside it (git archive, as in
                                                              # bench_server_intake), interleaved
    python benchmarks/bench_intake_stages.py --instructions [--compare /tmp/base]
                                                              # valgrind: machine-independent
    python benchmarks/bench_intake_stages.py --api [--compare /tmp/base]   # the ingestion API's
    python benchmarks/bench_intake_stages.py --otlp-json [--compare /tmp/base]   # also decoding
                                                              # the same requests as OTLP/JSON

The traces of ``bench_server_intake`` (1 wrapper + 2 LLM spans each, OpenInference and GenAI,
512 spans a request) go through the stages ``server.ingest.Intake.traces`` runs before the
store: OTLP protobuf decoding, the encoder (conventions, trace identity, duplicates), pricing
and the redaction policy, and validation. What ``bench_server_intake`` measures beyond their
sum is the store (rows, SQL, commit) and the HTTP/gRPC layer. The rounds of the two packages
alternate, so a busy machine slows both alike: read the ratios.

``--api``: the ingestion API's stages instead, per LLM event: the same LLM calls as JSON bodies
of 100 (``bench_server_intake``'s), read and validated (``validation.read_batch``, or
``parse_batch`` then ``validate_batch`` in a copy without it), then made into rows
(``store.rows.llm_row``, with the properties' JSON validation wrote where the copy hands it on).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from other_copy import use  # noqa: E402

STAGES = ("decode", "encode", "price and policy", "validation")
JSON_STAGE = "decode OTLP/JSON"
"""``--otlp-json``: the decode stage again, of the same requests as JavaScript's exporter writes
them in JSON (``bench_server_intake.otlp_json_bodies``); a row apart, not in the total."""
API_STAGES = ("read and validate", "rows")


def run_stages(traces: int, rounds: int, otlp_json: bool = False) -> dict[str, float]:
    """Best µs per span of each stage, for the package this interpreter imports."""
    import bench_server_intake as bench

    otlp = importlib.import_module("trubrics_otel.receive.otlp")
    encoder = importlib.import_module("trubrics_otel.translate.encoder")
    traces_module = importlib.import_module("trubrics_otel.translate.traces")
    exporter = importlib.import_module("trubrics_otel.deliver.exporter")
    prices = importlib.import_module("trubrics_otel.deliver.prices").load_price_table()
    validation = importlib.import_module("trubrics_otel.server.validation")
    policy = exporter.policy_from_settings()
    own = getattr(validation, "validate_encoded", None) or (
        lambda event, fields: validation.validate_event(event, fields, lenient=True))

    spans, _ = bench.traces(traces)
    bodies = bench.otlp_bodies(spans)
    best = dict.fromkeys(STAGES + ((JSON_STAGE,) if otlp_json else ()), float("inf"))
    json_bodies = bench.otlp_json_bodies(spans) if otlp_json else []

    def timed(stage: str, work: Any, argument: Any) -> Any:
        started = time.process_time()
        result = work(argument)
        best[stage] = min(best[stage], time.process_time() - started)
        return result

    # as Intake.traces does: validation reads the properties' JSON the policy wrote, where it
    # hands it on (a copy without ``measured`` encodes them again)
    shares = "measured" in inspect.signature(exporter.price_and_redact).parameters
    measured: dict[int, bytes] = {}

    def price(encoded: list[Any]) -> list[Any]:
        measured.clear()
        if shares:
            return [exporter.price_and_redact(e, prices, policy, measured) for e in encoded]
        return [exporter.price_and_redact(e, prices, policy) for e in encoded]

    def validate(batches: list[Any]) -> None:
        for events, llm_events in batches:
            for event in events:
                own(event, validation.EVENT, *([measured.get(id(event))] if shares else []))
            for event in llm_events:
                own(event, validation.LLM_EVENT, *([measured.get(id(event))] if shares else []))

    warm = [otlp.decode(b, otlp.PROTOBUF, 128).spans for b in bodies[:1]]  # the price table loads
    validate(price([encoder.encode_spans(d) for d in warm]))
    for _ in range(rounds):
        decoded = timed("decode", lambda bs: [otlp.decode(b, otlp.PROTOBUF, 128).spans for b in bs], bodies)
        encoded = timed("encode", lambda ds: [encoder.encode_spans(d, memory=traces_module.TraceMemory())
                                              for d in ds], decoded)
        priced = timed("price and policy", price, encoded)
        timed("validation", validate, priced)
        if otlp_json:
            from_json = timed(JSON_STAGE, lambda bs: [otlp.decode(b, otlp.JSON, 128).spans for b in bs], json_bodies)
            assert sum(map(len, from_json)) == sum(map(len, decoded))
    return {stage: seconds / len(spans) * 1e6 for stage, seconds in best.items()}


def run_api_stages(traces: int, rounds: int) -> dict[str, float]:
    """Best µs per LLM event of each stage of the ingestion API, for the package this
    interpreter imports."""
    import bench_server_intake as bench

    validation = importlib.import_module("trubrics_otel.server.validation")
    rows = importlib.import_module("trubrics_otel.server.store.rows")
    read = getattr(validation, "read_batch", None) or (
        lambda body, fields: (*validation.validate_batch(validation.parse_batch(body), fields), {}))
    shares = len(inspect.signature(rows.llm_row).parameters) > 2  # takes the properties' JSON

    _, events = bench.traces(traces)
    bodies = [json.dumps(events[i:i + bench.EVENTS_PER_POST]).encode()
              for i in range(0, len(events), bench.EVENTS_PER_POST)]
    best = dict.fromkeys(API_STAGES, float("inf"))

    def build(checked: list[Any]) -> None:
        for good, _, measured in checked:
            for event in good:
                rows.llm_row(event, 0, *([measured.get(id(event))] if shares else []))

    for _ in range(rounds):
        started = time.process_time()
        checked = [read(body, validation.LLM_EVENT) for body in bodies]
        best["read and validate"] = min(best["read and validate"], time.process_time() - started)
        assert sum(len(good) for good, _, _ in checked) == len(events)
        started = time.process_time()
        build(checked)
        best["rows"] = min(best["rows"], time.process_time() - started)
    return {stage: seconds / len(events) * 1e6 for stage, seconds in best.items()}


def instructions_per_span(traces: int, package: str | None, api: bool = False) -> float:
    """Instructions of one round of the four stages (``api``: per LLM event, of the ingestion
    API's stages): the same process with no round (building the traces, the warm-up)
    subtracted; ``PYTHONHASHSEED=0``, so runs repeat exactly."""
    counted = []
    package_args = ["--package", package] if package else []
    # once without valgrind first: a module edited since its last import would otherwise be
    # compiled (and its bytecode cached) in the run without rounds only, and be subtracted
    subprocess.run([sys.executable, __file__, "--json", "--traces", "1", "--rounds", "0", *package_args,
                    *(["--api"] if api else [])], capture_output=True, check=False)
    for rounds in (0, 1):
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
             "--json", "--traces", str(traces), "--rounds", str(rounds), *package_args,
             *(["--api"] if api else [])],
            capture_output=True, text=True, check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"bench_intake_stages: valgrind failed: {done.stderr.strip().splitlines()[-1:]}")
        counted.append(int(found.group(1)))
    return (counted[1] - counted[0]) / ((2 if api else 3) * traces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--compare", metavar="DIR", help="also DIR/trubrics_otel, interleaved")
    parser.add_argument("--instructions", action="store_true",
                        help="instructions per span under valgrind's callgrind instead (~2 min a package at --traces 200)")
    parser.add_argument("--api", action="store_true", help="the ingestion API's stages, per LLM event")
    parser.add_argument("--otlp-json", action="store_true",
                        help="also decode the same requests as OTLP/JSON (a row apart, not in the total)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one package's figures
    parser.add_argument("--package", help=argparse.SUPPRESS)  # with --json: DIR/trubrics_otel
    args = parser.parse_args()
    if args.json:
        use(args.package)  # that copy, not the editable install
        print(json.dumps(run_api_stages(args.traces, args.rounds) if args.api else
                         run_stages(args.traces, args.rounds, args.otlp_json)))
        return
    packages: list[str | None] = [None] + ([args.compare] if args.compare else [])
    if args.instructions:
        counts = [instructions_per_span(args.traces, package, args.api) for package in packages]
        print(f"instructions per {'LLM event, both' if args.api else 'span, all four'} stages: " + ", ".join(
            f"{'this' if p is None else p} {c:,.0f}" for p, c in zip(packages, counts))
              + (f" ({counts[0] / counts[1]:.3f}x)" if len(counts) == 2 else ""))
        return
    stages = API_STAGES if args.api else STAGES
    extra = (JSON_STAGE,) if args.otlp_json and not args.api else ()
    results: list[dict[str, float]] = [dict.fromkeys(stages + extra, float("inf")) for _ in packages]
    for _ in range(3):  # three processes each, alternating: the machine's load moves
        for k, package in enumerate(packages):
            out = subprocess.run([sys.executable, __file__, "--json", "--traces", str(args.traces),
                                  "--rounds", str(max(1, args.rounds // 3)), *(["--package", package] if package else []),
                                  *(["--api"] if args.api else []), *(["--otlp-json"] if args.otlp_json else [])],
                                 capture_output=True, text=True, check=True).stdout
            for stage, value in json.loads(out.strip().splitlines()[-1]).items():
                results[k][stage] = min(results[k][stage], value)
    print(f"{'µs per LLM event' if args.api else 'µs of CPU per span':20}" + "".join(f"{'this' if p is None else Path(p).name[-15:]:>16}"
                                                 for p in packages))
    for stage in (*stages, "total", *extra):
        values = [sum(r[s] for s in stages) if stage == "total" else r[stage] for r in results]
        print(f"{stage:20}" + "".join(f"{v:16.1f}" for v in values)
              + (f"   {values[0] / values[1]:.2f}x" if len(values) == 2 else ""))
    if extra:
        print("OTLP/JSON decoding / protobuf decoding: " + ", ".join(
            f"{'this' if p is None else Path(p).name} {r[JSON_STAGE] / r['decode']:.2f}x" for p, r in zip(packages, results))
              + " (target ≤ 2x)")


if __name__ == "__main__":
    main()
