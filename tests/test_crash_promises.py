"""The crash promises of docs/guide/reliability.md, each at the moment it is hardest to keep.

- ``kill -9`` loses nothing, even the batch whose request is in flight when the process dies;
- after a crash during the replay of a dead process's journal, at most one request's worth
  of events (100) is sent again;
- a dead local endpoint ends ``flush``/``close`` waits early, keeps the events, and says which
  URL failed and why; a missing key or a host that is not a URL is one error at construction.

Real processes, a real ``SIGKILL``, a real HTTP endpoint on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from conftest import API_KEY

from trubrics_otel import Trubrics
from trubrics_otel.deliver.transport import MAX_BATCH

ROOT = Path(__file__).resolve().parent.parent
HANG_S = 4.0


def _python(code: str, endpoint_url: str) -> subprocess.Popen[str]:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TRUBRICS_HOST=endpoint_url, TRUBRICS_API_KEY=API_KEY)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _deliver_leftovers(endpoint_url: str) -> None:
    """The app's next start: whatever the dead process left is found and sent."""
    nxt = _python(
        """
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=0.05)
        t.track(user_id="u", event="after restart")
        assert t.flush(timeout=30) == 0
        t.close(timeout=30)
        """,
        endpoint_url,
    )
    _, err = nxt.communicate(timeout=90)
    assert nxt.returncode == 0, err


def _ids(endpoint) -> list[tuple[str, str]]:
    return [(e["properties"]["$trace_id"], e["properties"]["$span_id"]) for e in endpoint.events()]


def test_kill_9_while_a_batch_is_in_flight_loses_nothing(endpoint):
    # the first request hangs and is then dropped unanswered: its 100 events only ever
    # reached the server if the killed process's journal still held them at the next start
    endpoint.reply(delay=HANG_S, drop=True)
    first = _python(
        """
        import time
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=3600, flush_batch_size=100)
        for i in range(200):
            t.track(user_id="u", event="in flight", properties={"i": i})
        time.sleep(120)
        """,
        endpoint.url,
    )
    assert endpoint.wait_for_arrivals(1) == 1  # the first batch is in flight, and hangs
    _kill(first)
    time.sleep(HANG_S)  # the hung request has been dropped: none of its events were stored
    assert endpoint.count() == 0
    _deliver_leftovers(endpoint.url)
    got = sorted(e["properties"]["i"] for e in endpoint.events() if e["event"] == "in flight")
    assert got == list(range(200))


def test_a_crash_while_replaying_a_dead_journal_resends_at_most_one_request(endpoint):
    total = 5 * MAX_BATCH
    first = _python(  # dies with every event still in its journal (nothing exported)
        f"""
        import time
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=3600, flush_batch_size=100_000)
        for i in range({total}):
            t.track(user_id="u", event="journaled", properties={{"i": i}})
        print("queued", flush=True)
        time.sleep(120)
        """,
        endpoint.url,
    )
    assert first.stdout.readline().strip() == "queued"
    _kill(first)
    # the next start replays them: two requests are answered, the third is stored by the
    # server but its answer never comes back before this process dies too
    endpoint.reply(200, times=2)
    endpoint.reply(delay=HANG_S)
    second = _python(
        """
        import time
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=3600)
        t.track(user_id="u", event="second start")
        t.flush(timeout=60)
        """,
        endpoint.url,
    )
    assert endpoint.wait_for_arrivals(3) == 3
    _kill(second)
    assert endpoint.wait_for_events(3 * MAX_BATCH) == 3 * MAX_BATCH  # the hung one was stored
    _deliver_leftovers(endpoint.url)
    copies = Counter(_ids(endpoint))
    assert len(copies) == total + 2  # nothing lost
    assert sum(copies.values()) - len(copies) <= MAX_BATCH  # at most one request sent again


def _refused_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_local_endpoint_ends_flush_and_close_early_and_says_why(private_spool, caplog):
    url = f"http://127.0.0.1:{_refused_port()}"
    client = Trubrics(api_key=API_KEY, host=url, flush_interval=3600)
    for i in range(30):
        client.track(user_id="u", event="e", properties={"i": i})
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        started = time.monotonic()
        assert client.flush(timeout=20) == 30  # not delivered, and says so
        flushed_in = time.monotonic() - started
        started = time.monotonic()
        client.close(timeout=20)
        closed_in = time.monotonic() - started
    # ended by the refusal, not by the timeouts (20 s each)
    assert flushed_in < 10 and closed_in < 10, (flushed_in, closed_in)
    assert f"{url}/publish_events" in caplog.text and "Connection refused" in caplog.text
    assert "30 Trubrics events undelivered" in caplog.text
    assert list(private_spool.rglob("*.seg"))  # the events wait on disk for the next process


def test_a_script_that_never_closes_exits_promptly_on_a_dead_local_endpoint(endpoint):
    url = f"http://127.0.0.1:{_refused_port()}"
    script = _python(
        """
        from trubrics_otel import Trubrics
        t = Trubrics()
        for i in range(10):
            t.track(user_id="u", event="e")
        """,
        url,
    )
    started = time.monotonic()
    _, err = script.communicate(timeout=60)
    assert script.returncode == 0
    assert time.monotonic() - started < 20  # the exit hook gave up at the refusal, not at 30 s
    assert "10 Trubrics events undelivered" in err and url in err


def test_no_key_or_a_host_that_is_not_a_url_is_one_error_and_no_request(endpoint, caplog, monkeypatch):
    monkeypatch.delenv("TRUBRICS_API_KEY", raising=False)
    cases = [({"host": endpoint.url}, "no Trubrics API key"),
             ({"api_key": API_KEY, "host": "notaurl"}, "host='notaurl' is not usable")]
    for arguments, message in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="trubrics"):
            client = Trubrics(flush_interval=0.05, **arguments)
            client.track(user_id="u", event="e")  # the exporter is made at the first event
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            started = time.monotonic()
            assert client.flush(timeout=20) == 1
            assert time.monotonic() - started < 10  # nothing to wait for
        assert len(errors) == 1 and message in errors[0], errors
        client.close(timeout=5)
    assert endpoint.arrived == 0  # nothing was attempted, anywhere
