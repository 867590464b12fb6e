"""Export cost per event, by stage: stored record → event → policy → JSON → HTTP POST.

    python benchmarks/bench_export.py            # both payloads, 20,000 events each, best of 3
    python benchmarks/bench_export.py --stdlib   # the same without orjson (core on CPython; the stdlib fallback elsewhere)

The records are what ``track()`` / ``track_llm()`` store in the journal, with the peer
benchmark's payloads (``benchmarks/peers/peers.py``: a small event with 4 properties, and an
LLM event with a 200-character prompt and a 500-character generation). The endpoint is
``benchmarks/peers/sink.py`` in its own process on 127.0.0.1; batches of 100, one pooled
keep-alive connection, as the exporter sends them. ``post`` includes the sink's own time
to answer (it shares the machine's 2 cores), so it is an upper bound on our share.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
if "--stdlib" in sys.argv:
    sys.modules["orjson"] = None  # type: ignore[assignment]  # as if it were not installed

from peers import ASSISTANT_ID, LATENCY_S, THREAD_ID, make_payload  # noqa: E402
from sink import SinkProcess  # noqa: E402

from trubrics_otel.capture.arguments import event_body, llm_body  # noqa: E402
from trubrics_otel.deliver.exporter import TrubricsSpanExporter  # noqa: E402
from trubrics_otel.deliver.transport import Transport  # noqa: E402
from trubrics_otel.translate.fastjson import ACCELERATED, dumps  # noqa: E402
from trubrics_otel.translate.record_codec import json_encoder  # noqa: E402
from trubrics_otel.translate.tracked import EVENT, KEYED, LLM, VERSION, stored_records, to_bytes  # noqa: E402

N = 20_000
BATCH = 100
LOG = logging.getLogger("bench")


def records(mode: str) -> list[bytes]:
    """As ``track()`` stores them: the KEYED layout with orjson, else marshal with random ids."""
    out = []
    keyed = json_encoder()
    for i in range(N):
        p = make_payload(mode, i)
        if mode == "llm":
            body = llm_body(p["user_id"], p["prompt"], p["generation"], "Prompt", "Generation",
                            ASSISTANT_ID, p["properties"], None, LATENCY_S, THREAD_ID, LOG)
            kind = LLM
        else:
            body = event_body(p["user_id"], p["event"], p["properties"], None, LOG)
            kind = EVENT
        if keyed is not None:
            out.append(keyed[0]((KEYED, kind, 12345678901234567, i + 1, body), None, keyed[1]))
        else:
            out.append(to_bytes((VERSION, kind, random.getrandbits(128), random.getrandbits(64), 0, None, body)))
    return out


def one_round(blobs: list[bytes], exporter: TrubricsSpanExporter, transport: Transport) -> dict[str, float]:
    spent = dict.fromkeys(("decode", "encode+policy", "json", "post"), 0.0)
    clock = time.perf_counter
    for start in range(0, N, BATCH):
        t0 = clock()
        stored_records(blobs[start : start + BATCH], LOG)  # what encode_records reads first
        t1 = clock()
        path, events = next((p, e) for p, e in exporter.encode_records(blobs[start : start + BATCH]) if e)
        t2 = clock() - (t1 - t0)  # encode_records decodes too: that share is counted once, above
        body = dumps(events)
        t3 = clock()
        transport._pool.urlopen("POST", f"{transport.base}/{path}", body=body, headers=transport._headers)
        t4 = clock()
        for name, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[name] += took
    return {name: took / N * 1e6 for name, took in spent.items()}


def main() -> None:
    sink = SinkProcess().start()
    try:
        host = f"{sink.url}/api/ingestion"
        exporter = TrubricsSpanExporter(api_key="bench-key", host=host, spool=False)
        transport = Transport(host, "bench-key")
        print(f"JSON: {'orjson' if ACCELERATED else 'stdlib json'}; µs per event, best of 3 rounds of {N:,}")
        print(f"{'payload':8} {'decode':>7} {'encode+policy':>14} {'json':>6} {'post':>6} {'total':>7}")
        for mode in ("track", "llm"):
            blobs = records(mode)
            rounds = [one_round(blobs, exporter, transport) for _ in range(3)]
            best = {name: min(r[name] for r in rounds) for name in rounds[0]}
            print(f"{mode:8} {best['decode']:7.2f} {best['encode+policy']:14.2f} {best['json']:6.2f} "
                  f"{best['post']:6.2f} {sum(best.values()):7.2f}")
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
