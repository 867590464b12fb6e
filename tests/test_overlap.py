"""The export thread writes a batch's request, encodes the next batch, then reads the answer."""

from __future__ import annotations

import time

from conftest import API_KEY

from trubrics_otel import TrubricsSpanExporter
from trubrics_otel.translate.tracked import EVENT, VERSION, to_bytes


def _records(first: int, n: int) -> list[bytes]:
    return [to_bytes((VERSION, EVENT, i + 1, i + 1, 0, None, ("u", "e", {"i": i}, time.time_ns())))
            for i in range(first, first + n)]


def test_an_answer_is_read_before_the_next_batch_goes_and_only_then_are_its_records_released(endpoint, tmp_path):
    endpoint.reply(delay=0.3, times=1)  # the first answer is slow: the export thread encodes on meanwhile
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url, spool=tmp_path / "spool")
    released: list[int] = []
    exporter.export_records(_records(0, 100), lambda: released.append(1))
    assert released == []  # in flight: its answer is not read yet, so the journal keeps its records
    exporter.export_records(_records(100, 100), lambda: released.append(2))
    assert released == [1]  # read first: one request in flight at most, released in order
    exporter.settle()
    assert released == [1, 2]
    assert [e["properties"]["i"] for e in endpoint.events()] == list(range(200))
    assert exporter.stats()["sent"] == 200 and exporter.stats()["pending"] == 0


def test_a_failed_answer_read_later_is_retried_like_any_other(endpoint, tmp_path):
    endpoint.reply(503, times=1)
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url, spool=tmp_path / "spool")
    exporter.export_records(_records(0, 50))
    exporter.settle()
    assert [e["properties"]["i"] for e in endpoint.events()] == list(range(50))
    assert [r.status for r in endpoint.requests] == [503, 200]
    assert exporter.stats()["sent"] == 50 and exporter.stats()["retries"] == 1
