"""The disk spool on its own: order, bounds, damage, permissions, ownership between processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from trubrics_otel.deliver.memory_spool import MemorySpool
from trubrics_otel.deliver.spool import Spool

ROOT = Path(__file__).resolve().parent.parent


def _events(tag: str, n: int) -> list[dict]:
    return [{"user_id": "u", "event": tag, "properties": {"i": i}} for i in range(n)]


def _drain(spool: Spool | MemorySpool) -> list[tuple[str, str, int]]:
    out = []
    while records := spool.read(1000):
        for record in records:
            out += [(record.path, e["event"], e["properties"]["i"]) for e in record.events]
            spool.ack(record)
    return out


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_oldest_first_and_segments_deleted_once_delivered(tmp_path):
    spool = Spool(tmp_path, segment_bytes=600)  # small segments: several files
    for n in range(10):
        assert spool.append("publish_events", _events(f"b{n}", 5))
    spool.append("publish_llm_events", _events("llm", 2))
    assert spool.pending == 52
    assert len(_segments(tmp_path)) > 2
    got = _drain(spool)
    assert [g[1] for g in got] == [f"b{n}" for n in range(10) for _ in range(5)] + ["llm", "llm"]
    assert got[-1][0] == "publish_llm_events"
    assert spool.pending == 0
    assert _segments(tmp_path) == [] and list(tmp_path.glob("*.ack")) == []


def test_owner_only_permissions(tmp_path):
    directory = tmp_path / "spool"
    spool = Spool(directory)
    spool.append("publish_events", _events("e", 1))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [segment] = _segments(directory)
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600


def test_size_bound_refuses_then_frees_space(tmp_path):
    spool = Spool(tmp_path, max_bytes=3_000)
    accepted = sum(spool.append("publish_events", _events("e", 5)) for _ in range(20))
    assert 0 < accepted < 20  # bounded: the rest was refused, not written
    assert sum(p.stat().st_size for p in _segments(tmp_path)) <= 3_000
    assert len(_drain(spool)) == accepted * 5
    assert spool.append("publish_events", _events("again", 5))  # space is back once delivered


def _leave_segment(directory: Path, code: str = "") -> None:
    """A separate process writes records and exits without closing the spool (as a crash)."""
    script = textwrap.dedent(f"""
        import os
        from trubrics_otel.deliver.spool import Spool
        spool = Spool({str(directory)!r})
        for n in range(3):
            spool.append("publish_events", [{{"user_id": "u", "event": "old", "properties": {{"i": n}}}}])
        {code}
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_torn_last_record_is_skipped_not_the_file(tmp_path):
    _leave_segment(tmp_path)
    [segment] = _segments(tmp_path)
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # the last record loses its tail, as after a power cut
    spool = Spool(tmp_path)
    assert [g[2] for g in _drain(spool)] == [0, 1]
    assert spool.pending == 0 and _segments(tmp_path) == []  # the torn record is forgotten


def test_damage_in_the_middle_costs_one_record(tmp_path):
    _leave_segment(tmp_path)
    [segment] = _segments(tmp_path)
    data = bytearray(segment.read_bytes())
    third = len(data) // 3
    data[third + 20] ^= 0xFF  # flip a byte inside the second record's payload
    segment.write_bytes(bytes(data))
    spool = Spool(tmp_path)
    assert [g[2] for g in _drain(spool)] == [0, 2]
    assert spool.pending == 0


def test_leftovers_of_a_dead_process_are_claimed_oldest_first(tmp_path):
    _leave_segment(tmp_path)
    spool = Spool(tmp_path)
    spool.append("publish_events", [{"user_id": "u", "event": "new", "properties": {"i": 9}}])
    assert spool.pending == 4
    assert [(g[1], g[2]) for g in _drain(spool)] == [("old", 0), ("old", 1), ("old", 2), ("new", 9)]
    assert _segments(tmp_path) == []


def test_progress_survives_a_crash_mid_replay(tmp_path):
    _leave_segment(tmp_path)
    first = Spool(tmp_path)
    [record, *_] = first.read(1)
    first.ack(record)  # one delivered, then the process dies (fds closed, lock released)
    first.close()
    assert [g[2] for g in _drain(Spool(tmp_path))] == [1, 2]  # not resent from the start


def test_a_live_process_keeps_its_segments(tmp_path):
    """A segment locked by a running process is not replayed by another one."""
    ready = tmp_path / "ready"
    directory = tmp_path / "spool"
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from trubrics_otel.deliver.spool import Spool
        spool = Spool({str(directory)!r})
        spool.append("publish_events", [{{"user_id": "u", "event": "theirs", "properties": {{"i": 0}}}}])
        pathlib.Path({str(ready)!r}).touch()
        sys.stdin.read()
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        for _ in range(400):  # bounded wait for the owner to have written
            if ready.exists() or owner.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists()
        mine = Spool(directory)
        assert mine.pending == 0 and _drain(mine) == []
    finally:
        owner.kill()
        owner.wait()
    assert [g[1] for g in _drain(Spool(directory))] == ["theirs"]  # its owner is gone now


def test_memory_spool_bound(tmp_path):
    spool = MemorySpool(max_events=10)
    assert spool.append("publish_events", _events("a", 6))
    assert not spool.append("publish_events", _events("b", 6))
    assert [g[1] for g in _drain(spool)] == ["a"] * 6


def test_a_flipped_byte_that_still_parses_is_caught_by_the_checksum(tmp_path):
    """Bit rot that keeps the JSON valid (a digit becomes another digit): only the record's
    CRC tells, and the record is skipped and counted, never replayed with a wrong value."""
    spool = Spool(tmp_path)
    for i in (1, 2, 3):
        assert spool.append("publish_events", [{"user_id": "u", "event": "e", "properties": {"i": i}}])
    spool.close()
    [segment] = _segments(tmp_path)
    data = bytearray(segment.read_bytes())
    at = data.index(b'"i":2')
    data[at + 4] ^= 0x01  # "2" -> "3": still JSON, still an event
    segment.write_bytes(bytes(data))
    spool = Spool(tmp_path)
    assert [g[2] for g in _drain(spool)] == [1, 3]
    assert spool.damaged == 1 and spool.pending == 0


def test_a_replay_that_fails_after_damage_starts_again_before_it(tmp_path):
    """Damage between two records, and the send of both fails (not acknowledged): the next
    read must give both again; skipping the damage must not skip the record before it."""
    _leave_segment(tmp_path)
    [segment] = _segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[len(data) // 3 + 20] ^= 0xFF  # the second record's payload
    segment.write_bytes(bytes(data))
    spool = Spool(tmp_path)
    first = [e["properties"]["i"] for r in spool.read(1000) for e in r.events]
    again = [e["properties"]["i"] for r in spool.read(1000) for e in r.events]  # nothing acked
    assert first == again == [0, 2]
    assert [g[2] for g in _drain(spool)] == [0, 2]
    assert spool.pending == 0 and spool.damaged == 1


def test_the_memory_spool_reads_whole_records_up_to_the_count_asked_in_order():
    spool = MemorySpool(max_events=10_000)
    for i in range(3000):  # one event a record: what an overflow of single spans makes
        assert spool.append("publish_events", [{"i": i}])
    spool.append("publish_llm_events", [{"i": n} for n in range(3000, 3005)])
    first = spool.read(1000)
    assert [r.events[0]["i"] for r in first] == list(range(1000))
    for record in first:
        spool.ack(record)
    rest = spool.read(10_000)
    assert sum(len(r.events) for r in rest) == spool.pending == 2005
    assert [r.path for r in rest][-1] == "publish_llm_events" and rest[-1].events[-1] == {"i": 3004}
    assert len(spool.read(1)) == 1  # at least one record, even when it is larger than asked
