"""The crash journal on its own: order, release, wrap-around, damage, kill -9, ownership, fork."""

from __future__ import annotations

import logging
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from pathlib import Path

import pytest

from trubrics_otel.deliver.journal import DEFAULT_JOURNAL_BYTES, Journal
from trubrics_otel.deliver.journal_recovery import recover

ROOT = Path(__file__).resolve().parent.parent
HEADER = 4096  # file header bytes (the ring starts here)
RECORD = 16  # record header bytes


def _rings(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.ring"))


def _recovered(directory: Path) -> list[bytes]:
    leftovers = recover(directory)
    payloads = [p for leftover in leftovers for p in leftover.payloads]
    for leftover in leftovers:
        leftover.discard()
    return payloads


def _record_offset(journal: Journal, ticket_before: int) -> int:
    """File offset of the record appended right after ``ticket_before`` (no wrap)."""
    return HEADER + ticket_before % (journal._capacity)


def test_round_trip_in_order_and_released_records_stay_out(tmp_path):
    journal = Journal(tmp_path)
    payloads = [f'{{"event": {i}}}'.encode() for i in range(10)]
    tickets = [journal.append(p) for p in payloads]
    assert all(t > 0 for t in tickets) and tickets == sorted(set(tickets))
    journal.release(tickets[3])
    assert journal.unreleased == sum(RECORD + len(p) for p in payloads[4:])
    journal.close()  # unreleased records left: the file stays for the next process
    assert len(_rings(tmp_path)) == 1
    assert _recovered(tmp_path) == payloads[4:]
    assert _rings(tmp_path) == []


def test_close_deletes_the_file_once_everything_is_released(tmp_path):
    journal = Journal(tmp_path)
    ticket = journal.append(b"a")
    journal.append(b"b")
    journal.release(journal.append(b"c"))
    journal.release(ticket)  # lower than already released: a no-op
    assert journal.unreleased == 0
    journal.close()
    journal.close()  # idempotent
    assert journal.append(b"late") == 0
    assert list(tmp_path.iterdir()) == []


def test_owner_only_permissions_and_no_temporary_file_left(tmp_path):
    directory = tmp_path / "journal"
    journal = Journal(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [ring] = list(directory.iterdir())
    assert ring.suffix == ".ring" and stat.S_IMODE(ring.stat().st_mode) == 0o600
    assert ring.stat().st_size == DEFAULT_JOURNAL_BYTES
    journal.close()


def test_wrap_around_over_many_laps_recovers_exactly_the_unreleased(tmp_path):
    journal = Journal(tmp_path, size=HEADER + 4096)  # a 4 KiB ring
    pending: deque[tuple[int, bytes]] = deque()
    written = 0
    for i in range(3000):  # ~50 laps, record sizes vary so the padding lands everywhere
        payload = f"{i}:".encode() + b"x" * (i * 37 % 150)
        ticket = journal.append(payload)
        while ticket == 0:  # full: deliver the oldest, as the worker would
            journal.release(pending.popleft()[0])
            ticket = journal.append(payload)
        pending.append((ticket, payload))
        written += RECORD + len(payload)
        if i % 7 == 0 and len(pending) > 5:
            journal.release(pending[len(pending) // 2][0])
            while pending and pending[0][0] <= journal._tail:
                pending.popleft()
        assert 0 <= journal.unreleased <= journal._capacity
    assert written > 40 * journal._capacity
    journal.close()
    assert _recovered(tmp_path) == [p for _, p in pending]


def test_full_ring_refuses_without_damage_then_takes_records_again(tmp_path):
    journal = Journal(tmp_path, size=HEADER + 4096)
    accepted = []
    for i in range(100):
        payload = b"%03d" % i + b"y" * 97
        if not journal.append(payload):
            break
        accepted.append(payload)
    assert 0 < len(accepted) < 100
    assert journal.append(b"z" * 100) == 0  # still full: refused again
    assert journal.append(b"x" * (journal.capacity - journal.unreleased - RECORD + 1)) == 0
    journal.close()
    assert _recovered(tmp_path) == accepted  # nothing unreleased was overwritten

    journal = Journal(tmp_path, size=HEADER + 4096)
    first = [journal.append(b"q" * 100) for _ in range(len(accepted))]
    assert journal.append(b"q" * 100) == 0
    journal.release(first[0])  # one record's space comes back
    assert journal.append(b"q" * 100) > first[-1]
    journal.release(journal._head)
    journal.close()


def test_payload_too_large_is_refused(tmp_path):
    journal = Journal(tmp_path, size=HEADER + 4096)
    assert journal.append(b"a" * (journal.max_payload + 1)) == 0
    journal.append(b"b" * 1000)
    ticket = journal.append(b"c" * journal.max_payload)  # the largest fits
    assert ticket > 0
    journal.close()
    assert _recovered(tmp_path) == [b"b" * 1000, b"c" * journal.max_payload]


def test_a_record_cut_short_costs_only_itself(tmp_path):
    """What a kill leaves: a payload copied part way with no header yet (over the bytes of
    an earlier record), or a header torn before its magic; the records around survive."""
    journal = Journal(tmp_path)
    payloads = [b'{"n": %d, "pad": "%s"}' % (i, b"p" * 50) for i in range(6)]
    tickets = [journal.append(p) for p in payloads]
    journal.close()
    [ring] = _rings(tmp_path)
    with open(ring, "r+b") as f:
        f.seek(_record_offset(journal, tickets[1]))  # the 3rd: header never written
        f.write(b"\0" * RECORD)
        f.seek(_record_offset(journal, tickets[3]) + RECORD - 4)  # the 5th: all but the magic
        f.write(b"\0" * 4)
        f.seek(_record_offset(journal, tickets[4]) + 4)  # the 6th: the start half written
        f.write(b"\0" * 4)
    assert _recovered(tmp_path) == [payloads[0], payloads[1], payloads[3]]


def test_a_header_left_by_an_earlier_lap_is_never_taken_for_a_record(tmp_path):
    """Killed after the payload's copy, before its header: the header in place is the
    earlier lap's (released), and the payload is not mistaken for it."""
    journal = Journal(tmp_path, size=HEADER + 4096)
    journal.release(journal.append(b"a" * 100))
    ticket = journal.append(b"c" * 300)  # all released: a new lap, over the first record
    assert ticket == journal.capacity + RECORD + 300
    journal.close()
    [ring] = _rings(tmp_path)
    with open(ring, "r+b") as f:
        f.seek(HEADER)
        f.write(struct.pack("<IQ4s", 100, 0, b"\xff\xfeJR"))
    assert _recovered(tmp_path) == []


def test_a_truncated_file_yields_what_is_left(tmp_path, caplog):
    journal = Journal(tmp_path)
    payloads = [b"r%d" % i * 30 for i in range(4)]
    tickets = [journal.append(p) for p in payloads]
    journal.close()
    [ring] = _rings(tmp_path)
    os.truncate(ring, _record_offset(journal, tickets[2]) + RECORD + 5)  # inside the 4th record
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        assert _recovered(tmp_path) == payloads[:3]
    assert "truncated" in caplog.text


def test_lost_released_position_brings_records_back_rather_than_losing_them(tmp_path, caplog):
    journal = Journal(tmp_path)
    tickets = [journal.append(b"e%d" % i) for i in range(4)]
    journal.release(tickets[1])
    journal.close()
    [ring] = _rings(tmp_path)
    with open(ring, "r+b") as f:
        for offset in (64, 128):  # both "released" slots scribbled
            f.seek(offset)
            f.write(b"\xaa" * 12)
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        assert _recovered(tmp_path) == [b"e0", b"e1", b"e2", b"e3"]
    assert "twice" in caplog.text


def test_one_torn_released_slot_keeps_the_other(tmp_path):
    journal = Journal(tmp_path)
    tickets = [journal.append(b"e%d" % i) for i in range(4)]
    journal.release(tickets[0])  # slot 1
    journal.release(tickets[1])  # slot 0
    journal.close()
    [ring] = _rings(tmp_path)
    with open(ring, "r+b") as f:
        f.seek(64 + 3)
        f.write(b"\x77")  # the latest store torn: the older position is used
    assert _recovered(tmp_path) == [b"e1", b"e2", b"e3"]


def test_garbage_and_empty_files_never_raise(tmp_path, caplog):
    (tmp_path / "00000000000000000001-1-1.ring").write_bytes(os.urandom(20_000))
    (tmp_path / "00000000000000000002-1-1.ring").write_bytes(b"")
    (tmp_path / "00000000000000000003-1-1.ring").write_bytes(b"\xff\xfeJR" * 3000)
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        assert recover(tmp_path) == []
    assert _rings(tmp_path) == []  # nothing in them: deleted
    assert recover(tmp_path / "missing") == []


def test_files_held_by_a_live_journal_or_leftover_are_not_claimed(tmp_path):
    journal = Journal(tmp_path)
    journal.append(b"mine")
    assert recover(tmp_path) == []  # our own open journal
    assert len(_rings(tmp_path)) == 1
    journal.close()

    [leftover] = recover(tmp_path)
    assert leftover.payloads == [b"mine"]
    assert recover(tmp_path) == []  # claimed: locked by the leftover
    leftover.close()  # given back untouched
    [again] = recover(tmp_path)
    assert again.payloads == [b"mine"]
    again.discard()
    assert not again.file.exists() and list(tmp_path.iterdir()) == []


def test_oldest_file_first(tmp_path):
    for tag in (b"first", b"second", b"third"):
        journal = Journal(tmp_path)
        journal.append(tag)
        journal.close()
    leftovers = recover(tmp_path)
    assert [leftover.payloads for leftover in leftovers] == [[b"first"], [b"second"], [b"third"]]
    for leftover in leftovers:
        leftover.discard()


def _readline(proc: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child did not answer in time"
    return proc.stdout.readline()


def test_kill_9_recovers_exactly_the_unreleased_payloads(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from trubrics_otel.deliver.journal import Journal
        journal = Journal({str(tmp_path)!r}, size=64 * 1024)
        tickets = [journal.append(b'{{"i": %d}}' % i) for i in range(300)]  # wraps the ring
        assert all(tickets), "ring full"
        journal.release(tickets[249])
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert _readline(proc) == b"ready\n"
        assert recover(tmp_path) == []  # held by a live process
        assert len(_rings(tmp_path)) == 1
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _recovered(tmp_path) == [b'{"i": %d}' % i for i in range(250, 300)]
    assert _rings(tmp_path) == []


def test_forked_child_leaves_the_parent_ring_alone(tmp_path):
    journal = Journal(tmp_path)
    journal.append(b"parent-1")
    [ring] = _rings(tmp_path)
    before = ring.read_bytes()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(read_end)
            answers = [
                journal.append(b"child") == 0,  # dropped by the at-fork hook already
                recover(tmp_path) == [],  # the parent still holds its ring
            ]
            journal.after_fork()  # what the client calls: harmless a second time
            journal.close()  # must not delete the parent's file
            answers.append(journal.append(b"child") == 0)
            os.write(write_end, bytes(answers))
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        assert time.monotonic() < deadline, "the forked child did not exit"
        time.sleep(0.01)
    answers = os.read(read_end, 16)
    os.close(read_end)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert answers == b"\x01\x01\x01"
    assert ring.read_bytes() == before  # not a byte written by the child
    assert journal.append(b"parent-2") > 0
    journal.close()
    assert _recovered(tmp_path) == [b"parent-1", b"parent-2"]


def test_eight_threads_appending_each_payload_recovered_once(tmp_path):
    journal = Journal(tmp_path)
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait(timeout=30)
        for i in range(2000):
            assert journal.append(b"%d-%d" % (n, i)) > 0

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: interleave the appends
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    finally:
        sys.setswitchinterval(interval)
    journal.close()
    got = _recovered(tmp_path)
    assert sorted(got) == sorted(b"%d-%d" % (n, i) for n in range(8) for i in range(2000))
    for n in range(8):  # and each thread's records in its own order
        mine = [int(p.split(b"-")[1]) for p in got if p.startswith(b"%d-" % n)]
        assert mine == list(range(2000))


def test_record_header_layout(tmp_path):
    """The documented format: length, virtual start, magic, payload."""
    journal = Journal(tmp_path)
    journal.append(b"abc")
    ticket = journal.append(b"hello")
    journal.close()
    [ring] = _rings(tmp_path)
    data = ring.read_bytes()
    assert data[:8] == b"\x89TRJRNL\n"
    length, start, magic = struct.unpack_from("<IQ4s", data, HEADER + RECORD + 3)
    assert (magic, length, start) == (b"\xff\xfeJR", 5, RECORD + 3)
    assert ticket == start + RECORD + length
    _recovered(tmp_path)


def test_too_small_a_journal_is_refused(tmp_path):
    with pytest.raises(ValueError):
        Journal(tmp_path, size=4096)


def test_a_stale_temporary_file_is_cleaned_a_fresh_one_left(tmp_path):
    stale = tmp_path / f"{time.time_ns() - 3600 * 10**9:020d}-1-1.ring.tmp"
    fresh = tmp_path / f"{time.time_ns():020d}-1-2.ring.tmp"  # maybe still being prepared
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    assert recover(tmp_path) == []
    assert not stale.exists() and fresh.exists()


def _format_1_ring(path: Path, records: list[tuple[int, bytes]], released: int, capacity: int) -> None:
    """A ring as trubrics-otel wrote it before format 2: magic first, a CRC32 per record."""
    import zlib

    data = bytearray(HEADER + capacity)
    header = struct.pack("<8sIIQ", b"\x89TRJRNL\n", 1, HEADER, capacity)
    data[: len(header) + 4] = header + struct.pack("<I", zlib.crc32(header))
    for offset in (64, 128):
        struct.pack_into("<QI", data, offset, released, zlib.crc32(struct.pack("<Q", released)))
    for start, payload in records:
        crc = zlib.crc32(payload, start & 0xFFFFFFFF)
        at = HEADER + start % capacity
        data[at : at + 20 + len(payload)] = struct.pack("<4sIQI", b"\xff\xfeJR", len(payload), start, crc) + payload
    path.write_bytes(bytes(data))


def test_a_ring_in_format_1_left_by_an_earlier_release_is_recovered(tmp_path):
    capacity = 4096
    payloads = [b"old-%d" % i * 10 for i in range(5)]
    records, start = [], capacity * 3  # a few laps in
    for payload in payloads:
        records.append((start, payload))
        start += 20 + len(payload)
    ring = tmp_path / "00000000000000000001-1-1.ring"
    _format_1_ring(ring, records, released=records[1][0], capacity=capacity)
    with open(ring, "r+b") as f:  # the last payload damaged: its CRC no longer holds
        f.seek(HEADER + records[4][0] % capacity + 20 + 3)
        f.write(b"\x00")
    assert _recovered(tmp_path) == payloads[1:4]


def test_the_reader_is_called_once_a_batch_waits_and_again_after_each_read(tmp_path):
    journal = Journal(tmp_path)
    calls = []
    journal.notify_unread(3, lambda: calls.append(journal.appended))
    for i in range(7):
        journal.append(b"r%d" % i)
    assert calls == [3]  # once: the reader has not taken them yet
    records, ticket = journal.read(2)
    journal.release(ticket)
    journal.append(b"r7")  # 6 unread now: past the new mark (2 read + 3)
    assert calls == [3, 8]
    journal.stop_appending()  # a shutdown takes what is left: nothing may land after it
    assert journal.append(b"late") == 0
    assert journal.read(100)[0] == [b"r%d" % i for i in range(2, 8)]
    journal.release_all()
    journal.close()
    assert _rings(tmp_path) == []


def test_the_reader_skips_the_rest_of_a_lap_over_an_earlier_laps_record(tmp_path):
    """The writer skipped the end of the ring (the next record did not fit); the bytes there
    hold a record of an earlier lap, released long ago, header intact. ``read`` must not take
    it for a new one: only the record's virtual start tells it belongs to another lap."""
    journal = Journal(tmp_path, size=HEADER + 4096)
    old = [b"old %03d " % i + b"o" * 92 for i in range(35)]  # 116 bytes a record: 4,060 of 4,096
    for payload in old:
        journal.append(payload)
    records, ticket = journal.read(100)
    assert records == old
    journal.release(ticket)
    new = [b"new %03d " % i + b"n" * 208 for i in range(17)]  # 232 bytes: 17 end at 3,944 = 34 x 116
    tickets = [journal.append(payload) for payload in new]
    assert journal.read(100)[0] == new
    journal.release(tickets[9])  # not all released: the next record skips the rest of the lap
    last = b"new 017 " + b"n" * 208
    assert journal.append(last) == 2 * journal.capacity + RECORD + len(last)
    assert journal.read(100)[0] == [last]  # and not old[34], whose header lies where it skipped
    journal.close()


def test_giving_pages_back_frees_the_disk_and_keeps_every_record(tmp_path):
    """A full disk: the journal frees its released and prepared-ahead pages; what is not
    released yet stays readable, and later records (over freed pages, a new lap) are whole."""
    journal = Journal(tmp_path, size=HEADER + 1024 * 1024)
    payloads = [b"%04d" % i + b"p" * 2000 for i in range(300)]  # ~600 KB of the 1 MiB ring
    for payload in payloads:
        journal.append(payload)
    journal.prepare_ahead()
    records, _ = journal.read(200)
    journal.append(b"x")  # one more, not read yet
    journal.release(_ticket_after(records))
    before = os.stat(journal.file).st_blocks
    assert journal.give_back()
    assert os.stat(journal.file).st_blocks < before
    rest, ticket = journal.read(1000)
    assert rest[:100] == payloads[200:] and rest[-1] == b"x"
    journal.release(ticket)
    later = [b"L%04d" % i + b"q" * 3000 for i in range(400)]  # over the freed pages, two laps
    for i, payload in enumerate(later):
        assert journal.append(payload)
        if i % 50 == 49:
            got, ticket = journal.read(1000)
            assert got == later[i - 49 : i + 1]
            journal.release(ticket)
    journal.close()
    assert _rings(tmp_path) == []


def _ticket_after(records: list[bytes]) -> int:
    """The ticket that releases ``records``, the first ones appended (no wrap)."""
    return sum(RECORD + len(r) for r in records)
