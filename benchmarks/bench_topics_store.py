"""Topics through the store: a fresh fit, a cached answer and one new prompt, at N prompts.

    python benchmarks/bench_topics_store.py              # 100,000 prompts (the product target: < 10 s)
    python benchmarks/bench_topics_store.py --prompts 20000

The labelled prompts of ``topic_prompts`` go in as LLM events (ingestion API validation, then
``Store.insert`` in batches of 100, 5,000 users) into a fresh SQLite file; then the topics
analysis runs as the CLI and the read API run it: first with no model (a fresh fit: features,
LSA, k-means, every prompt assigned and stored), then again with nothing new (cached), then
after one more prompt (assigned to a topic without a refit). Needs the ``topics`` extra.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from topic_prompts import prompts  # noqa: E402

from trubrics_otel.server.analytics import api  # noqa: E402
from trubrics_otel.server.store import Store  # noqa: E402
from trubrics_otel.server.validation import LLM_EVENT, validate_batch  # noqa: E402


def llm_events(texts: list[str], first: int = 0) -> list[dict]:
    return [{"user_id": f"u{(first + i) % 5000}", "prompt": text, "generation": "ok", "assistant_id": "gpt-4o",
             "timestamp": f"2026-11-{1 + (first + i) % 28:02d}T12:00:00Z", "properties": {"$thread_id": f"t{first + i}"}}
            for i, text in enumerate(texts)]


def insert(store: Store, events: list[dict]) -> None:
    for i in range(0, len(events), 100):
        valid, errors = validate_batch(events[i:i + 100], LLM_EVENT)
        assert not errors, errors[:1]
        store.insert((), valid)


def timed(store: Store) -> tuple[float, int]:
    started = time.perf_counter()
    answer = api.answer(store, "topics", {})
    return time.perf_counter() - started, len(answer["topics"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    args = parser.parse_args()
    texts, _ = prompts(args.prompts + 1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/topics.sqlite3")
        started = time.perf_counter()
        insert(store, llm_events(texts[:-1]))
        print(f"{args.prompts:,} LLM events stored in {time.perf_counter() - started:.1f} s")
        for label in ("fresh fit", "cached (nothing new)"):
            seconds, topics = timed(store)
            print(f"  topics, {label:<22} {seconds:7.2f} s   {topics} topics")
        insert(store, llm_events(texts[-1:], first=args.prompts))
        seconds, topics = timed(store)
        print(f"  topics, {'one new prompt':<22} {seconds:7.2f} s   {topics} topics")
        store.close()


if __name__ == "__main__":
    main()
