"""A full disk: nothing torn, every drop counted under its cause, and the crash journal gives
its pages back so that the spool keeps what fits.

Two real limits: a per-process file size limit (``RLIMIT_FSIZE``, any user, no mount: the
kernel cuts writes short and then refuses them) and, where mounting is permitted (root), a
16 MiB tmpfs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import API_KEY

from trubrics_otel import Trubrics
from trubrics_otel.deliver.spool import Spool

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, **env: str) -> dict:
    """``code`` in a fresh interpreter whose files may not grow past ``RLIMIT_FSIZE``; it
    prints one JSON line."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    prologue = textwrap.dedent("""
        import json, resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write, not a killed process
    """)
    done = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_write_cut_short_leaves_no_torn_record_and_stores_nothing(tmp_path):
    """Records of ~1 KB against a 100,000-byte file limit: the write that crosses it is cut
    short by the kernel. That record must not count as stored, nor leave bytes behind that
    a later reader would skip as damage."""
    result = _run(f"""
        from trubrics_otel.deliver.spool import Spool
        spool = Spool({str(tmp_path)!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        stored, error = 0, None
        for i in range(1_000):
            try:
                assert spool.append("publish_events", [{{"event": "e", "properties": {{"i": i, "pad": "x" * 900}}}}])
            except OSError as exc:
                error = exc.errno
                break
            stored += 1
        print(json.dumps({{"stored": stored, "pending": spool.pending, "errno": error}}))
    """)
    assert result["errno"] is not None and result["stored"] == result["pending"] > 50
    spool = Spool(tmp_path)  # the next process
    got = []
    while records := spool.read(1_000):
        for record in records:
            got += [e["properties"]["i"] for e in record.events]
            spool.ack(record)
    assert got == list(range(result["stored"]))
    assert spool.skipped_bytes == 0  # no torn tail: the short write was taken back


def test_a_full_disk_is_counted_as_dropped_with_its_cause_and_logged_once(endpoint, tmp_path):
    """The client against a failing endpoint, its files limited to 200,000 bytes (the journal
    cannot even be created: events wait in memory, then go to the spool, which fills)."""
    endpoint.fail_for(120, status=503)
    result = _run(f"""
        import io, logging
        from trubrics_otel import Trubrics
        log = io.StringIO()
        logger = logging.getLogger("trubrics")
        logger.addHandler(logging.StreamHandler(log))
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        client = Trubrics(api_key={API_KEY!r}, host={endpoint.url!r}, spool={str(tmp_path)!r},
                          flush_interval=0.05, retry_timeout=0.1)
        for i in range(2_000):
            client.track(user_id="u", event="e", properties={{"i": i, "pad": "x" * 200}})
        client.flush(timeout=3)
        client.close(timeout=3)
        stats = client.stats()
        print(json.dumps({{"stats": stats, "log": log.getvalue()}}))
    """)
    stats, log = result["stats"], result["log"]
    assert stats["dropped"] == stats["dropped_disk_full"] > 0
    assert stats["sent"] + stats["pending"] + stats["dropped"] == stats["tracked"] == 2_000
    assert log.count("the disk is full") == 1
    assert "max_spool_bytes" not in log  # the cause named is the disk, not the spool's bound


@contextlib.contextmanager
def _tmpfs(directory: Path, size: str) -> Iterator[Path]:
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not permitted'}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def test_on_a_small_filesystem_the_journal_leaves_the_space_to_the_spool(endpoint, tmp_path):
    """16 MiB, the endpoint failing, 4,000 LLM events of ~2 KB (~8.5 MB spooled): the
    journal's pages (prepared ahead, released) used to crowd the spool out (1,700 kept)."""
    endpoint.fail_for(600, status=503)
    with _tmpfs(tmp_path / "small", "16m") as small:
        client = Trubrics(api_key=API_KEY, host=endpoint.url, spool=small, flush_interval=0.05,
                          retry_timeout=0.1)
        answer = "y" * 1_800
        run = uuid.uuid4().hex
        for i in range(4_000):
            client.track_llm(user_id="u", prompt=f"{run} {i}", generation=answer)
        client.flush(timeout=5)
        client.close(timeout=5)
        stats = client.stats()
        assert stats["sent"] + stats["pending"] + stats["dropped"] == stats["tracked"] == 4_000
        assert stats["dropped"] == 0, stats
        endpoint.fail_for(0)
        later = Trubrics(api_key=API_KEY, host=endpoint.url, spool=small, flush_interval=0.05)
        later.track(user_id="u", event="next run")
        later.close(timeout=60)
    prompts = {e["prompt"] for e in endpoint.events("publish_llm_events")}
    assert {f"{run} {i}" for i in range(4_000)} <= prompts
