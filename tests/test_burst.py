"""A burst of real-sized LLM events to a healthy endpoint stays off the disk, and a journal
that cannot get pages (a full disk) sends events to the spool instead of crashing the app.

The crash journal is a sparse file sized for a burst (64 MiB, about 75,000 LLM events of
~850 bytes): pages are prepared a chunk ahead of the writer, only where records go.
"""

from __future__ import annotations

import os

from trubrics_otel.deliver import pages
from trubrics_otel.deliver.journal import DEFAULT_JOURNAL_BYTES, Journal

PROMPT = ("How do I track LLM calls with Trubrics and OpenTelemetry? " * 4)[:200]
GENERATION = ("Call track_llm after each model call with the prompt, generation and latency. " * 8)[:500]


def test_a_50k_llm_burst_to_a_healthy_endpoint_never_spools(make_client, endpoint, private_spool):
    client = make_client(flush_batch_size=100, flush_interval=10)
    n = 50_000
    for i in range(n):
        client.track_llm(user_id="u1", prompt=PROMPT, generation=f"{GENERATION} {i}", assistant_id="gpt-4o",
                         properties={"model": "gpt-4o", "seq": i}, latency=1.2, thread_id="t-1")
    journal = client._processor.journal
    assert journal is not None and journal.file.stat().st_size == DEFAULT_JOURNAL_BYTES
    assert client.flush(timeout=60) == 0
    stats = client.stats()
    assert stats["sent"] == n and stats["spooled"] == 0, stats
    assert client._processor.overflowed == 0
    assert endpoint.count() == n
    assert not list(private_spool.rglob("*.seg"))  # not a byte of it went through the spool


def test_the_journal_is_sparse_until_written(tmp_path):
    journal = Journal(tmp_path)
    file = journal.file
    assert file.stat().st_size == DEFAULT_JOURNAL_BYTES
    assert file.stat().st_blocks * 512 <= 1024 * 1024  # the header and the first chunk at most
    for _ in range(3_000):
        assert journal.append(b"x" * 850)
    used = file.stat().st_blocks * 512
    assert 2_500_000 < used < 8 * 1024 * 1024  # what was written (and prepared), not 64 MiB
    journal.release_all()
    journal.close()
    assert not file.exists()


def test_a_journal_that_cannot_get_pages_spools_instead(make_client, endpoint, monkeypatch):
    """``posix_fallocate`` / ``MADV_POPULATE_WRITE`` failing is what a full disk looks like:
    the record is not written into the mapping (that would be a SIGBUS), it is spooled."""
    client = make_client(flush_batch_size=100)
    client.track(user_id="u", event="first")
    monkeypatch.setattr(pages.Pages, "prepare", lambda self, start, end: False)
    journal = client._processor.journal
    with journal._lock:
        journal._prepared = journal._head % journal.capacity  # nothing ready beyond the head
        journal._set_limit()
    for i in range(50):
        client.track(user_id="u", event=f"e{i}")
    assert client._processor.overflowed == 50
    assert client.flush(timeout=20) == 0
    assert sorted(e["event"] for e in endpoint.events()) == sorted(["first"] + [f"e{i}" for i in range(50)])
    assert os.path.exists(journal.file)
