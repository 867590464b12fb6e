"""Every event tracked is accounted for: once a flush or close returns,
``tracked == sent + pending + dropped + rejected + sampled_out + queued``, under concurrency
and against a flaky endpoint; and the next run delivers what was pending."""

from __future__ import annotations

import threading
import time

from conftest import API_KEY

from trubrics_otel import Trubrics

THREADS = 8
PER_THREAD = 400


def _identity(stats: dict[str, int]) -> int:
    return (stats["sent"] + stats["pending"] + stats["dropped"] + stats["rejected"]
            + stats["sampled_out"] + stats["queued"])


def test_eight_threads_tracking_and_flushing_against_a_flaky_endpoint_lose_nothing(endpoint):
    client = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05, flush_batch_size=50,
                      retry_timeout=1)
    stop = threading.Event()
    chaos = threading.Thread(target=endpoint.misbehave, args=(stop,), daemon=True)
    chaos.start()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(PER_THREAD):
                if i % 2:
                    client.track(user_id=f"t{k}", event="e", properties={"k": k, "i": i})
                else:
                    client.track_llm(user_id=f"t{k}", prompt=f"{k} {i}", generation="g",
                                     properties={"k": k, "i": i})
                if i % 100 == 99:
                    client.flush(timeout=0.5)
                    stats = client.stats()  # mid-flight: never more accounted than tracked
                    assert stats["sent"] + stats["pending"] + stats["dropped"] <= stats["tracked"]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not any(w.is_alive() for w in workers), "deadlock: a worker never finished"
    assert not errors, errors
    client.flush(timeout=2)
    stats = client.stats()
    assert stats["tracked"] == THREADS * PER_THREAD == _identity(stats)
    stop.set()
    chaos.join(5)
    endpoint.fail_for(0)
    endpoint._replies.clear()
    assert client.flush(timeout=30) == 0  # no fault stopped delivery in this process
    started = time.monotonic()
    client.close(timeout=5)
    assert time.monotonic() - started < 30
    stats = client.stats()
    assert stats["tracked"] == _identity(stats) == stats["sent"]
    assert stats["dropped"] == stats["rejected"] == stats["queued"] == 0
    later = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05)
    later.track(user_id="u", event="next run", properties={"k": -1, "i": -1})
    later.close(timeout=30)
    delivered = {(e["properties"]["k"], e["properties"]["i"]) for e in endpoint.events()}
    delivered |= {(e["properties"]["k"], e["properties"]["i"]) for e in endpoint.events("publish_llm_events")}
    assert delivered - {(-1, -1)} == {(k, i) for k in range(THREADS) for i in range(PER_THREAD)}
