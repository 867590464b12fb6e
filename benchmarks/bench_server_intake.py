"""Server CPU per span for OTLP/HTTP, OTLP/gRPC and the ingestion API into ``serve``.

    python benchmarks/bench_server_intake.py               # best of 3 rounds, then ingest events/s
    python benchmarks/bench_server_intake.py --rounds 1 --no-ingest
    python benchmarks/bench_server_intake.py --only api --no-ingest   # the ingestion API alone
    python benchmarks/bench_server_intake.py --profile     # in-process cProfile of the OTLP path
    python benchmarks/bench_server_intake.py --prompts varied   # words of a natural vocabulary
    python benchmarks/bench_server_intake.py --only http json --no-ingest   # OTLP/HTTP JSON beside protobuf
    git archive main trubrics_otel | tar -x -C /tmp/base   # then, side by side in one run:
    python benchmarks/bench_server_intake.py --compare /tmp/base

Traces as instrumented apps send them: 1 wrapper span + 2 LLM spans each, half in the
OpenInference conventions (a CHAIN wrapper with ``input.value`` / ``output.value``, LLM spans
with ``llm.input_messages.*``), half in the OpenTelemetry GenAI ones (``gen_ai.input.messages``
JSON), prompts and answers of 200-1,500 characters (``--prompts``: of 20 words, or of a
natural language's vocabulary, which costs the full-text index ~3x more), 512 spans per request (the SDK's
BatchSpanProcessor default). ``trubrics-otel serve`` runs in its own process on a fresh
SQLite file; its CPU time (user + system, every thread, ``/proc/<pid>/task/*/schedstat``) is
read before and after a round: µs per span (OTLP) or per LLM event (the ingestion API, the
same prompts, answers and properties as JSON in batches of 100). Each round's LLM events are
checked to be stored exactly once. Targets: OTLP/HTTP ≤ 70 µs per span, gRPC within 10 %, the
ingestion API ≤ 50 µs per LLM event. ``json`` (not run by default): the same requests as OTLP/JSON,
written as JavaScript's OTLP/HTTP exporter writes them (:func:`otlp_json_bodies`); target within
2x OTLP/HTTP protobuf. ``--compare DIR`` runs the same rounds, interleaved, against
a server from another copy of the package (``DIR/trubrics_otel``): ratios from one run. Then ``bench_server_ingest``'s events/s for SQLite
(target ≥ 30,000 track, ≥ 20,000 track_llm).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import grpc  # noqa: E402
import requests  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_otlp  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from other_copy import command  # noqa: E402

from trubrics_otel.receive import otlp  # noqa: E402
from trubrics_otel.receive.grpc import SERVICE  # noqa: E402

SPANS_PER_REQUEST = 512
EVENTS_PER_POST = 100
WORDS = ("the events users sessions threads model answer question latency tokens cost prompt "
         "trubrics analytics product team feature retention funnel dashboard").split()


PROMPTS = "narrow"
"""The texts' words (``--prompts``): ``narrow``, the 20 ``WORDS``; ``varied``, a vocabulary of
30,000 words drawn by Zipf's law as natural language's are, a text's words mostly distinct.
The full-text index's cost grows with a text's distinct words: ``varied`` is what real
prompts cost it (about 3x ``narrow``'s)."""
_VARIED = random.Random(3)
VARIED_WORDS = ["".join(_VARIED.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_VARIED.randint(2, 10)))
                for _ in range(30_000)]
_VARIED_WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(VARIED_WORDS) + 1)))


def text(rng: random.Random) -> str:
    """200-1,500 characters of words (:data:`PROMPTS`'s)."""
    size = rng.randint(200, 1500)
    words: list[str] = []
    while sum(map(len, words)) + len(words) < size:
        if PROMPTS == "varied":
            words += rng.choices(VARIED_WORDS, cum_weights=_VARIED_WEIGHTS, k=50)
        else:
            words.append(rng.choice(WORDS))
    return " ".join(words)[:size]


def traces(n: int, seed: int = 7) -> tuple[list[Any], list[dict[str, Any]]]:
    """``n`` traces of 3 spans (finished SDK spans), and their LLM calls as ingestion events."""
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    events: list[dict[str, Any]] = []
    for t in range(n):
        user, thread = f"user-{t % 500}", f"thread-{t % 2000}"
        openinference = t % 2 == 0
        tracer = provider.get_tracer("openinference.instrumentation.openai" if openinference
                                     else "opentelemetry.instrumentation.openai_v2")
        question = text(rng)
        wrapper = ({"openinference.span.kind": "CHAIN", "input.value": question, "user.id": user,
                    "session.id": thread} if openinference else
                   {"http.route": "/chat", "enduser.id": user, "session.id": thread})
        with tracer.start_as_current_span("agent" if openinference else "POST /chat", attributes=wrapper):
            for call in range(2):
                prompt, answer = text(rng), text(rng)
                usage = {"input": len(prompt) // 4, "output": len(answer) // 4}
                if openinference:
                    attributes: dict[str, Any] = {
                        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                        "llm.provider": "openai", "llm.system": "openai",
                        "llm.input_messages.0.message.role": "system",
                        "llm.input_messages.0.message.content": "You are a helpful assistant.",
                        "llm.input_messages.1.message.role": "user",
                        "llm.input_messages.1.message.content": prompt,
                        "llm.output_messages.0.message.role": "assistant",
                        "llm.output_messages.0.message.content": answer,
                        "llm.token_count.prompt": usage["input"], "llm.token_count.completion": usage["output"],
                        "llm.token_count.total": usage["input"] + usage["output"],
                        "llm.invocation_parameters": json.dumps({"temperature": 0.2}),
                        "user.id": user, "session.id": thread,
                    }
                    name = "ChatCompletion"
                else:
                    attributes = {
                        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "gen_ai.usage.input_tokens": usage["input"], "gen_ai.usage.output_tokens": usage["output"],
                        "gen_ai.response.finish_reasons": ("stop",),
                        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                            {"type": "text", "content": prompt}]}]),
                        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                            {"type": "text", "content": answer}], "finish_reason": "stop"}]),
                        "enduser.id": user, "session.id": thread, "gen_ai.conversation.id": thread,
                    }
                    name = "chat gpt-4o"
                with tracer.start_as_current_span(name, attributes=attributes) as span:
                    ids = span.get_span_context()
                events.append({
                    "user_id": user, "prompt": prompt, "generation": answer, "assistant_id": "gpt-4o",
                    "thread_id": thread, "latency": 0.8 + call, "timestamp": "2026-12-04T12:00:00Z",
                    "properties": {"$trace_id": f"{ids.trace_id:032x}", "$span_id": f"{ids.span_id:016x}",
                                   "gen_ai.usage.input_tokens": usage["input"],
                                   "gen_ai.usage.output_tokens": usage["output"], "model": "gpt-4o",
                                   "$source": "bench"},
                })
    return list(memory.get_finished_spans()), events


def otlp_bodies(spans: list[Any]) -> list[bytes]:
    return [to_otlp(spans[i:i + SPANS_PER_REQUEST]).SerializeToString()
            for i in range(0, len(spans), SPANS_PER_REQUEST)]


def otlp_json_bodies(spans: list[Any]) -> list[bytes]:
    """The requests of :func:`otlp_bodies` as OTLP/JSON, as ``@opentelemetry/exporter-trace-otlp-http``
    writes them: hex ids, kinds and codes as numbers, times as strings, ``intValue`` as numbers."""
    import base64

    from google.protobuf import json_format

    def js(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: base64.b64decode(value).hex() if key in ("traceId", "spanId", "parentSpanId")
                    else int(value) if key == "intValue" else js(value) for key, value in node.items()}
        return [js(item) for item in node] if isinstance(node, list) else node

    return [json.dumps(js(json_format.MessageToDict(to_otlp(spans[i:i + SPANS_PER_REQUEST]),
                                                    use_integers_for_enums=True))).encode()
            for i in range(0, len(spans), SPANS_PER_REQUEST)]


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` that is alive now (user + system)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except FileNotFoundError:  # a thread that just ended
            pass
    return total / 1e9


class Server:
    """``trubrics-otel serve`` on a fresh SQLite file, HTTP and gRPC on free ports."""

    def __init__(self, db: str, package_dir: str | None = None) -> None:
        self.db = db
        start = [sys.executable, "-m", "trubrics_otel"] if package_dir is None else command(
            package_dir, module="trubrics_otel")  # serve from another copy of the package
        self.process = subprocess.Popen(
            [*start, "serve", "--db", db, "--port", "0", "--grpc-port", "0",
             "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        self.url = self.grpc = ""
        for line in self.process.stdout:
            if found := re.search(r"http://127\.0\.0\.1:(\d+)", line):
                self.url = f"http://127.0.0.1:{found.group(1)}"
            if found := re.search(r"OTLP/gRPC:\s+127\.0\.0\.1:(\d+)", line):
                self.grpc = f"127.0.0.1:{found.group(1)}"
            if self.url and self.grpc:
                break
        assert self.url and self.grpc, "the server did not start"
        self.session = requests.Session()
        self.channel = grpc.insecure_channel(self.grpc)
        self.export = self.channel.unary_unary(f"/{SERVICE}/Export")

    def send(self, protocol: str, body: bytes) -> None:
        if protocol == "grpc":
            self.export(body, timeout=120)
            return
        if protocol in ("http", "json"):
            url, headers = f"{self.url}/v1/traces", {"Content-Type": otlp.PROTOBUF if protocol == "http" else otlp.JSON}
        else:
            url, headers = f"{self.url}/publish_llm_events", {"Content-Type": "application/json",
                                                              "x-api-key": "bench-key"}
        response = self.session.post(url, data=body, headers=headers, timeout=120)
        assert response.status_code == 200, (response.status_code, response.text[:200])

    def settle(self) -> None:
        """A read and a search: the server folds every event it holds into its summary tables
        first (SQLite folds in bulk, before any read) and its text index before a search, so a
        round's CPU includes the fold of all its events."""
        assert self.session.get(f"{self.url}/api/stats", timeout=120).status_code == 200
        assert self.session.get(f"{self.url}/api/events", params={"q": "settle", "limit": 1},
                                timeout=120).status_code == 200

    def close(self) -> None:
        self.channel.close()
        self.process.terminate()
        self.process.wait(10)


def _count_llm(db: str) -> int:
    """LLM events in the file, read-only (a store of this copy would migrate the file of a
    baseline server still running on it)."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT COUNT(*) FROM events WHERE kind = 'llm'").fetchone()[0]


def measure(protocol: str, rounds: int, traces_per_round: int, tmp: str,
            package_dirs: tuple[str | None, ...] = (None,)) -> list[float]:
    """Best µs of server CPU per span (OTLP) or per LLM event (ingestion API) over ``rounds``,
    for each package (``None``: this one), rounds interleaved."""
    best = [float("inf")] * len(package_dirs)
    for r, (k, package_dir) in ((r, kp) for r in range(rounds) for kp in enumerate(package_dirs)):
        spans, events = traces(traces_per_round + 200, seed=r * 1000 + len(protocol))
        if protocol == "api":
            bodies = [json.dumps(events[i:i + EVENTS_PER_POST]).encode()
                      for i in range(0, len(events), EVENTS_PER_POST)]
            warm, items = bodies[:4], len(events) - 400
            bodies = bodies[4:]
        else:
            bodies = (otlp_json_bodies if protocol == "json" else otlp_bodies)(spans)
            warm, bodies = bodies[:1], bodies[1:]
            items = len(spans) - SPANS_PER_REQUEST
        server = Server(f"{tmp}/{protocol}-{r}-{k}.db", package_dir)
        try:
            for body in warm:  # one-time costs (price table, first connection) before the clock
                server.send(protocol, body)
            server.settle()
            stored_before = _count_llm(server.db)
            cpu = cpu_seconds(server.process.pid)
            for body in bodies:
                server.send(protocol, body)
            server.settle()
            cpu = cpu_seconds(server.process.pid) - cpu
            stored = _count_llm(server.db)
        finally:
            server.close()
        assert stored == len(events), f"{protocol}: {stored} LLM events stored, {len(events)} sent"
        assert stored - stored_before == (items if protocol == "api" else items * 2 // 3), \
            f"{protocol}: {stored - stored_before} stored in the round"
        us = cpu / items * 1e6
        label = "this" if package_dir is None else package_dir
        print(f"  {label}: {protocol:5} round {r + 1}: {us:6.1f} µs per {'LLM event' if protocol == 'api' else 'span'}"
              f" ({items:,} in {cpu:.2f} s of server CPU)", flush=True)
        best[k] = min(best[k], us)
    return best


def profile(n: int) -> None:
    """cProfile of the OTLP/HTTP path in this process (decode → encode → policy → store)."""
    import cProfile
    import pstats

    from trubrics_otel.server.app import LocalServer

    spans, _ = traces(n)
    bodies = otlp_bodies(spans)
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalServer(f"{tmp}/p.db")
        server.ingest_otlp(bodies[0], otlp.PROTOBUF)
        profiler = cProfile.Profile()
        started = time.process_time()
        profiler.enable()
        for body in bodies[1:]:
            server.ingest_otlp(body, otlp.PROTOBUF)
        profiler.disable()
        took = time.process_time() - started
        server.stop()
    print(f"{took / (len(spans) - SPANS_PER_REQUEST) * 1e6:.1f} µs per span under the profiler")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--traces", type=int, default=3000, help="traces per round (3 spans each)")
    parser.add_argument("--no-ingest", action="store_true", help="skip bench_server_ingest's events/s")
    parser.add_argument("--only", nargs="+", choices=("http", "grpc", "api", "json"), default=("http", "grpc", "api"),
                        help="measure these paths only (json: OTLP/HTTP JSON, not by default)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compare", nargs="*", default=[], metavar="DIR",
                        help="also run servers from DIR/trubrics_otel (a baseline), interleaved")
    parser.add_argument("--prompts", choices=("narrow", "varied"), default="narrow",
                        help="the texts' words: 20 (narrow) or a natural language's vocabulary (varied)")
    args = parser.parse_args()
    global PROMPTS
    PROMPTS = args.prompts
    if args.profile:
        profile(args.traces)
        return
    packages: tuple[str | None, ...] = (None, *args.compare)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"server CPU into `trubrics-otel serve` (SQLite), best of {args.rounds} rounds of "
              f"{args.traces * 3:,} spans / {args.traces * 2:,} LLM events", flush=True)
        results = {p: measure(p, args.rounds, args.traces, tmp, packages) for p in args.only}
        print(f"{'':20}" + "".join(f"{'this' if p is None else Path(p).name[-15:]:>16}" for p in packages))
        for protocol, label, unit in (("http", "OTLP/HTTP protobuf", "µs/span"), ("json", "OTLP/HTTP JSON", "µs/span"),
                                      ("grpc", "OTLP/gRPC", "µs/span"),
                                      ("api", "ingestion API", "µs/LLM event")):
            if protocol in results:
                print(f"{label:20}" + "".join(f"{v:16.1f}" for v in results[protocol]) + f"  {unit}")
        ratio = f"(this: {results['grpc'][0] / results['http'][0]:.2f}x)" if {"http", "grpc"} <= set(results) else ""
        json_ratio = f"(this: {results['json'][0] / results['http'][0]:.2f}x)" if {"http", "json"} <= set(results) else ""
        print(f"targets: OTLP/HTTP ≤ 70 µs/span; gRPC ≤ 1.10x HTTP {ratio}; JSON ≤ 2x HTTP {json_ratio}; "
              "ingestion API ≤ 50 µs/LLM event", flush=True)
        if not args.no_ingest:
            ingest_rates(args.rounds, tmp, packages)


def ingest_rates(rounds: int, tmp: str, packages: tuple[str | None, ...]) -> None:
    """bench_server_ingest's events/s (wall: its load generator, separate processes), per package."""
    import bench_server_ingest

    def serve_from(package_dir: str | None) -> Any:
        def serve(db: str, workers: int = 1, tree: str | None = None) -> tuple[subprocess.Popen[str], str]:
            server = Server(db, package_dir)  # one worker: the rate of one process; package_dir is the copy (not tree)
            server.channel.close()
            return server.process, server.url
        return serve

    print(f"ingest events/s into SQLite (bench_server_ingest, best of {rounds}, rounds interleaved)")
    print(f"{'':20}" + "".join(f"{'this' if p is None else Path(p).name[-15:]:>16}" for p in packages))
    for mode in ("track", "llm"):
        best = [0.0] * len(packages)
        for r in range(rounds):
            for k, package_dir in enumerate(packages):
                bench_server_ingest.serve = serve_from(package_dir)
                best[k] = max(best[k], bench_server_ingest.one_round(mode, f"{tmp}/ingest-{mode}-{r}-{k}.db", 1, None)[0])
        target = 30_000 if mode == "track" else 20_000
        print(f"{mode:20}" + "".join(f"{v:16,.0f}" for v in best) + f"  events/s (target ≥ {target:,})", flush=True)

if __name__ == "__main__":
    main()
