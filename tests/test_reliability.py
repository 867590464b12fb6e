"""Nothing lost, memory bounded, secrets and content protected: the client end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import API_KEY
from opentelemetry.sdk.trace import TracerProvider

import trubrics_otel
from trubrics_otel import SyncResult, Trubrics, TrubricsSpanExporter, settings
from trubrics_otel.deliver.journal import Journal
from trubrics_otel.deliver.processor import SpoolingSpanProcessor
from trubrics_otel.translate.jsonable import (
    MAX_DEPTH,
    MAX_PROPERTIES_CHARS,
    MAX_STRING_CHARS,
)
from trubrics_otel.translate.tracked import EVENT, VERSION

ROOT = Path(__file__).resolve().parent.parent


def _ids(endpoint) -> list[tuple[str, str]]:
    events = endpoint.events() + endpoint.events("publish_llm_events")
    return [(e["properties"]["$trace_id"], e["properties"]["$span_id"]) for e in events]


def _spool_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def _python(code: str, endpoint_url: str, **env: str) -> subprocess.Popen[str]:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TRUBRICS_HOST=endpoint_url,
                       TRUBRICS_API_KEY=API_KEY, **env)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _restart(endpoint_url: str) -> None:
    """The app's next start: one event, then a clean close that delivers what it found."""
    second = _python(
        """
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=0.05)
        t.track(user_id="u", event="after restart")
        t.close(timeout=30)
        """,
        endpoint_url,
    )
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err


# --- bounded memory, no loss ------------------------------------------------------------


def test_queue_overflow_goes_to_the_spool_and_is_delivered(make_client, endpoint):
    # with a mask the events wait in memory (the journal would hold them unmasked), bounded
    endpoint.reply(delay=1.5)  # the first request hangs while the burst arrives
    client = make_client(max_queue_size=200, flush_batch_size=50, mask=lambda value: value)
    for i in range(5_000):
        client.track(user_id="u", event="burst", properties={"i": i})
    stats = client.stats()
    assert stats["queued"] <= 200  # memory bound held…
    assert stats["spooled"] > 0  # …because the overflow went to disk
    assert client.flush(timeout=60) == 0
    ids = _ids(endpoint)
    assert len(ids) == len(set(ids)) == 5_000
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(5_000))
    assert client.stats()["dropped"] == 0


def test_a_full_journal_spills_to_the_spool_and_nothing_is_lost(endpoint, tmp_path):
    endpoint.reply(delay=1.5)
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url, spool=tmp_path / "spool")
    journal = Journal(tmp_path / "journal", size=64 * 1024)  # ~500 events of ~120 bytes
    processor = SpoolingSpanProcessor(
        exporter, schedule_delay=0.05, max_export_batch_size=50, journal=journal
    )
    for i in range(5_000):
        processor.enqueue_record(
            (VERSION, EVENT, i + 1, i + 1, 0, None, ("u", "burst", {"i": i}, time.time_ns()))
        )
    assert journal.unreleased <= 64 * 1024  # the ring's bound held…
    assert exporter.stats()["spooled"] > 0  # …because what did not fit went to disk
    assert processor.force_flush(60_000)
    processor.shutdown()
    assert endpoint.wait_for_events(5_000, timeout=60) == 5_000
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(5_000))
    assert len(set(_ids(endpoint))) == 5_000


def test_a_journal_closed_under_the_processor_never_hangs_a_flush(endpoint, tmp_path):
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url, spool=tmp_path / "spool")
    journal = Journal(tmp_path / "journal", size=64 * 1024)
    processor = SpoolingSpanProcessor(exporter, schedule_delay=3600, journal=journal)
    processor.enqueue_record((VERSION, EVENT, 1, 1, 0, None, ("u", "e", None, time.time_ns())))
    journal.close()  # as after a fork, or a close racing the worker: its records stay on disk
    started = time.monotonic()
    assert processor.force_flush(5_000)
    assert time.monotonic() - started < 2
    processor.shutdown(timeout_millis=2_000)


def test_spooled_events_go_out_when_the_endpoint_returns_without_new_traffic(make_client, endpoint):
    endpoint.fail_for(3600, status=503)  # down until healed, however slow the machine
    client = make_client(retry_timeout=0.3)
    for i in range(300):
        client.track(user_id="u", event="outage", properties={"i": i})
    assert client.flush(timeout=1) > 0  # still failing: kept, not lost
    endpoint.heal()
    assert endpoint.wait_for_events(300, timeout=30) == 300  # the replay thread delivered them
    assert len(set(_ids(endpoint))) == 300
    for _ in range(100):  # the server answered; the client acknowledges right after
        if client.stats()["pending"] == 0:
            break
        time.sleep(0.05)
    assert client.stats()["pending"] == 0


def test_spool_full_drops_are_counted_and_logged_once(make_client, endpoint, caplog):
    endpoint.fail_for(30, status=503)
    client = make_client(retry_timeout=0.1, max_spool_bytes=4_000, flush_batch_size=5)
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        for i in range(1_000):
            client.track(user_id="u", event="e", properties={"i": i})
        client.flush(timeout=1)
    stats = client.stats()
    assert stats["spooled"] > 0 and stats["dropped"] > 0
    assert stats["spooled"] + stats["dropped"] == 1_000  # every event accounted for
    assert caplog.text.count("the spool is full") == 1


def test_killed_process_leftovers_are_delivered_by_the_next_start(endpoint, private_spool):
    endpoint.fail_for(60, status=503)
    first = _python(
        """
        import sys, time
        from trubrics_otel import Trubrics
        t = Trubrics(retry_timeout=0.2, flush_interval=0.05)
        for i in range(500):
            t.track(user_id="u", event="before crash", properties={"i": i})
        t.flush(timeout=1)
        print(t.stats()["pending"], flush=True)
        time.sleep(60)
        """,
        endpoint.url,
    )
    assert first.stdout.readline().strip() == "500"  # all 500 on disk
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    endpoint.fail_for(0)
    _restart(endpoint.url)
    names = [e["event"] for e in endpoint.events()]
    assert names.count("before crash") == 500 and names.count("after restart") == 1
    assert len(set(_ids(endpoint))) == 501
    assert list(private_spool.rglob("*.seg")) == []  # delivered segments are deleted


def test_events_still_in_memory_survive_kill_9_through_the_journal(endpoint, private_spool):
    # nothing is exported before the kill (an hour's flush interval): every event is only in
    # the queue, and in the crash journal's shared mapping, when the process dies
    first = _python(
        """
        import time
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=3600, flush_batch_size=100_000)
        for i in range(1_500):
            t.track(user_id="u", event="in memory", properties={"i": i})
        for i in range(500):
            t.track_llm(user_id="u", prompt=f"q{i}", generation=f"a{i}", thread_id="t", latency=0.5)
        print(t.stats()["queued"], t.stats()["sent"], flush=True)
        time.sleep(60)
        """,
        endpoint.url,
    )
    assert first.stdout.readline().split() == ["2000", "0"]
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert list(private_spool.rglob("*.ring"))  # the killed process's journal is left
    _restart(endpoint.url)
    events = [e for e in endpoint.events() if e["event"] == "in memory"]
    assert sorted(e["properties"]["i"] for e in events) == list(range(1_500))
    llm = endpoint.events("publish_llm_events")
    assert sorted(e["prompt"] for e in llm) == sorted(f"q{i}" for i in range(500))
    assert all(e["latency"] == 0.5 and e["thread_id"] == "t" for e in llm)
    assert len(set(_ids(endpoint))) == len(_ids(endpoint)) == 2_001  # each exactly once
    assert list(private_spool.rglob("*.ring")) == []  # recovered, then deleted


def test_a_clean_close_leaves_no_journal(make_client, endpoint, private_spool):
    client = make_client()
    client.track(user_id="u", event="e")
    assert list(private_spool.rglob("*.ring"))  # made at the first event
    client.close()
    assert list(private_spool.rglob("*.ring")) == []
    assert len(endpoint.events()) == 1


def test_fork_child_delivers_its_own_and_the_parents_queue_is_not_sent_twice(endpoint):
    proc = _python(
        """
        import os
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=60, flush_batch_size=1000)  # nothing leaves before fork
        for i in range(100):
            t.track(user_id="parent", event="queued before fork", properties={"i": i})
        pid = os.fork()
        if pid == 0:
            for i in range(50):
                t.track(user_id="child", event="from child", properties={"i": i})
            t.close(timeout=20)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        t.track(user_id="parent", event="after fork")
        t.close(timeout=20)
        """,
        endpoint.url,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    names = [e["event"] for e in endpoint.events()]
    assert names.count("queued before fork") == 100
    assert names.count("from child") == 50 and names.count("after fork") == 1
    assert len(set(_ids(endpoint))) == 151


def test_fork_child_leaves_the_parents_spool_alone(endpoint):
    endpoint.fail_for(60, status=503)
    proc = _python(
        """
        import os, sys
        from trubrics_otel import Trubrics
        t = Trubrics(flush_interval=0.05, retry_timeout=0.2)
        for i in range(40):
            t.track(user_id="parent", event="spooled", properties={"i": i})
        t.flush(timeout=1)
        assert t.stats()["pending"] == 40
        print("spooled", flush=True)
        sys.stdin.readline()            # the test makes the endpoint healthy
        pid = os.fork()
        if pid == 0:
            t.track(user_id="child", event="from child")
            t.close(timeout=20)
            os._exit(0)
        os.waitpid(pid, 0)
        t.close(timeout=20)
        """,
        endpoint.url,
    )
    assert proc.stdout.readline().strip() == "spooled"
    endpoint.fail_for(0)
    _, err = proc.communicate(input="go\n", timeout=60)
    assert proc.returncode == 0, err
    names = [e["event"] for e in endpoint.events()]
    assert names.count("spooled") == 40 and names.count("from child") == 1, err


def test_close_is_bounded_on_a_hanging_endpoint_and_spools_the_rest(endpoint, private_spool):
    endpoint.reply(delay=30, times=50)  # every request hangs far longer than close's timeout
    client = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05, timeout=25)
    for i in range(300):
        client.track(user_id="u", event="hang", properties={"i": i})
    time.sleep(0.3)  # the worker is inside a request now
    started = time.monotonic()
    client.close(timeout=1)
    assert time.monotonic() - started < 10  # far from the 25-30 s the hang would cost
    assert client.stats()["sent"] == 0 and client.stats()["pending"] == 300  # all on disk
    endpoint._replies.clear()
    later = Trubrics(api_key=API_KEY, host=endpoint.url, flush_interval=0.05)
    later.track(user_id="u", event="next run")
    later.close(timeout=20)
    got = {e["properties"]["i"] for e in endpoint.events() if e["event"] == "hang"}
    assert got == set(range(300))  # every event arrived (an in-flight batch may arrive twice)


# --- security -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://app.trubrics.com/api/ingestion", False),
        ("http://127.0.0.1:8080", False),
        ("http://127.8.9.10", False),
        ("http://[::1]:8000/x", False),
        ("http://localhost:3000", False),
        ("http://app.trubrics.com/api/ingestion", True),
        ("http://10.0.0.5:8000", True),
        ("http://localhost.evil.com", True),
        ("ftp://127.0.0.1", True),
    ],
)
def test_host_refusal(url, refused):
    assert (settings.host_refusal(url, allow_insecure=False) is not None) == refused


def test_plain_http_to_a_remote_host_is_refused(caplog, private_spool):
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client = Trubrics(api_key=API_KEY, host="http://trubrics.example", flush_interval=0.05)
        client.track(user_id="u", event="e")
        assert client.flush(timeout=2) == 1  # kept (spooled), never sent
    assert "http://trubrics.example: plain http:// off loopback would expose the API key" in caplog.text
    assert "allow_insecure=True" in caplog.text and "TRUBRICS_ALLOW_INSECURE=1" in caplog.text
    stats = client.stats()
    assert stats["sent"] == 0 and stats["retries"] == 0
    client.close(timeout=1)
    assert API_KEY not in caplog.text


EMAIL = "jane.doe@example.com"


def _mask(value):
    if isinstance(value, str):
        return value.replace(EMAIL, "<email>")
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def test_mask_applies_before_the_network_and_the_spool(make_client, endpoint, private_spool):
    endpoint.fail_for(3600, status=503)  # down until healed below, however slow the machine
    client = make_client(mask=_mask, retry_timeout=0.2)
    client.track_llm(user_id="u", prompt=f"mail {EMAIL}", generation=f"wrote to {EMAIL}",
                     properties={"to": EMAIL, "nested": {"cc": [EMAIL]}})
    client.track(user_id="u", event="Sent", properties={"to": EMAIL})
    assert client.flush(timeout=1) == 2  # spooled during the failure
    assert EMAIL.encode() not in _spool_bytes(private_spool)
    endpoint.heal()
    assert endpoint.wait_for_events(2, timeout=30) == 2
    [llm] = endpoint.events("publish_llm_events")
    [event] = endpoint.events()
    assert llm["prompt"] == "mail <email>" and llm["generation"] == "wrote to <email>"
    assert llm["properties"]["to"] == "<email>" and llm["properties"]["nested"] == {"cc": ["<email>"]}
    assert event["properties"]["to"] == "<email>"
    assert "$trace_id" in event["properties"]  # ids survive any mask


def test_with_a_mask_nothing_unmasked_reaches_the_disk_even_on_overflow(make_client, endpoint, private_spool):
    endpoint.reply(delay=1.5)  # the first request hangs while the burst overflows the queue
    client = make_client(mask=_mask, max_queue_size=20, flush_batch_size=10)
    for i in range(300):
        client.track(user_id="u", event="Sent", properties={"to": EMAIL, "i": i})
    assert client.stats()["spooled"] > 0
    assert list(private_spool.rglob("*.ring")) == []  # no crash journal: it would hold raw content
    assert EMAIL.encode() not in _spool_bytes(private_spool)
    assert client.flush(timeout=30) == 0
    assert sorted(e["properties"]["i"] for e in endpoint.events()) == list(range(300))
    assert {e["properties"]["to"] for e in endpoint.events()} == {"<email>"}


def test_a_failing_mask_never_lets_the_value_out(make_client, endpoint, caplog):
    def broken(value):
        raise RuntimeError("oops")

    client = make_client(mask=broken)
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client.track_llm(user_id="u", prompt="secret prompt", generation="secret answer",
                         properties={"k": "secret"})
        client.flush(timeout=10)
    [llm] = endpoint.events("publish_llm_events")
    assert "secret" not in json.dumps(llm)
    assert llm["prompt"] == "<masking failed>"
    assert "mask= raised RuntimeError" in caplog.text


@pytest.mark.parametrize(("env", "captured"), [
    (None, True), ("span_only", True), ("true", True),
    ("false", False), ("no_content", False), ("NO_CONTENT", False),
])
def test_capture_content_env(make_client, endpoint, monkeypatch, env, captured):
    if env is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", env)
    client = make_client()
    client.track_llm(user_id="u", prompt="the prompt", generation="the answer",
                     assistant_id="m", latency=0.5, properties={"$text": "the prompt", "k": 1})
    client.flush(timeout=10)
    [llm] = endpoint.events("publish_llm_events")
    assert (llm["prompt"], llm["generation"]) == (("the prompt", "the answer") if captured else ("", ""))
    assert ("$text" in llm["properties"]) == captured
    assert llm["assistant_id"] == "m" and llm["latency"] == 0.5 and llm["properties"]["k"] == 1


def test_capture_content_argument_wins_over_env(make_client, endpoint, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    client = make_client(capture_content=False)
    client.track_llm(user_id="u", prompt="p", generation="g")
    client.flush(timeout=10)
    [llm] = endpoint.events("publish_llm_events")
    assert llm["prompt"] == llm["generation"] == ""


def test_the_key_is_in_no_spool_file_and_no_log(make_client, endpoint, private_spool, caplog):
    endpoint.fail_for(60, status=503)
    client = make_client(retry_timeout=0.2)
    with caplog.at_level(logging.DEBUG, logger="trubrics"):
        for i in range(50):
            client.track(user_id="u", event="e", properties={"i": i})
        assert client.flush(timeout=1) == 50
        client.close(timeout=1)
    files = [p for p in private_spool.rglob("*")]
    assert any(p.suffix == ".seg" for p in files)
    assert API_KEY.encode() not in _spool_bytes(private_spool)
    assert all(API_KEY not in str(p) for p in files)
    assert API_KEY not in caplog.text
    assert "50 Trubrics events undelivered" in caplog.text


def test_spool_can_be_turned_off(make_client, endpoint, private_spool):
    endpoint.fail_for(3600, status=503)  # down until healed, however slow the machine
    client = make_client(spool=False, retry_timeout=0.2)
    client.track(user_id="u", event="e")
    assert client.flush(timeout=0.5) == 1
    assert not private_spool.exists()  # no file anywhere
    endpoint.heal()
    assert client.flush(timeout=20) == 0  # held in memory, delivered once it is back
    assert len(endpoint.events()) == 1


# --- bad input ------------------------------------------------------------------------------


def _cyclic_and_deep() -> tuple[dict, list]:
    """A dict holding itself, and a list nested 5,000 deep (past orjson's, marshal's and the
    interpreter's recursion limits)."""
    cyclic: dict = {"name": "loop"}
    cyclic["self"] = cyclic
    deep: list = []
    cursor = deep
    for _ in range(5_000):
        cursor.append([])
        cursor = cursor[0]
    return cyclic, deep


def test_hostile_properties_are_bounded_and_the_event_still_goes(make_client, endpoint, caplog):
    cyclic, deep = _cyclic_and_deep()
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        client.track(user_id="u", event="huge", properties={"blob": "x" * 5_000_000})
        client.track(user_id="u", event="deep", properties={"deep": deep})
        client.track(user_id="u", event="cyclic", properties=cyclic)
        client.track(user_id="u", event="keys", properties={1: "a", (2, 3): "b", None: "c"})
        client.track(user_id="u", event="objects", properties={"o": object(), "s": {3, 1, 2}})
        client.track_llm(user_id="u", prompt="p" * 1_000_000, generation="g")
        client.flush(timeout=20)
    by_name = {e["event"]: e["properties"] for e in endpoint.events()}
    assert set(by_name) == {"huge", "deep", "cyclic", "keys", "objects"}
    assert len(by_name["huge"]["blob"]) <= MAX_STRING_CHARS
    assert len(json.dumps(by_name["deep"])) < MAX_PROPERTIES_CHARS
    depth, node = 0, by_name["deep"]["deep"]
    while isinstance(node, list) and node:
        depth, node = depth + 1, node[0]
    assert depth <= MAX_DEPTH and node == "<too deep>"
    assert by_name["cyclic"]["self"] == "<cycle>"
    assert {"1", "(2, 3)", "None"} <= set(by_name["keys"])
    assert by_name["objects"]["s"] == [1, 2, 3]
    [llm] = endpoint.events("publish_llm_events")
    assert "truncated" in llm["prompt"] and len(llm["prompt"]) < 1_000_000
    assert "converted" in caplog.text or "cut" in caplog.text


# Hostile properties tracked by an app already deep in its stack. Such properties once went down
# the fallback chain (orjson, marshal, then the C JSON encoder, which stops a cycle only at the
# interpreter's recursion limit), so whether the event survived depended on the frames the
# caller had left: with few left the RecursionError reached the logging in track()'s own
# handler and escaped into the app (this file failed that way in a full-suite run).

PACKAGE = str(Path(trubrics_otel.__file__).resolve().parent)


def _frames_left() -> int:
    """How many more frames this thread can push from the caller's level."""

    def down(n: int) -> int:
        try:
            return down(n + 1)
        except RecursionError:
            return n

    return down(0)


def _call_with_frames_left(left: int, call: Callable[[], object]) -> object:
    """``call()`` from deep in this thread's stack, with about ``left`` frames to spare: the
    app's own recursion, without touching the recursion limit (which all threads share)."""

    def down(n: int) -> object:
        return down(n - 1) if n > 0 else call()

    return down(_frames_left() - left)


def _escaped_from_our_code(error: BaseException) -> bool:
    """True when the traceback runs through trubrics_otel (the call itself got in: a
    RecursionError raised on entering ``track`` belongs to the app's own stack)."""
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(PACKAGE):
            return True
        tb = tb.tb_next
    return False


def test_hostile_properties_with_little_stack_left_never_raise_and_are_accounted(make_client, endpoint):
    client = make_client()
    client.track(user_id="u", event="started")  # the client's first-use start is not under test
    cyclic, deep = _cyclic_and_deep()
    calls, escaped = 0, []
    for headroom in range(2, 120, 3):
        for properties in (cyclic, {"deep": deep}):
            try:
                _call_with_frames_left(
                    headroom, lambda: client.track(user_id="u", event=f"hostile {headroom}", properties=properties)
                )
                calls += 1
            except RecursionError as error:
                if _escaped_from_our_code(error):
                    calls += 1
                    escaped.append(headroom)
    assert escaped == []
    client.flush(timeout=20)
    stats = client.stats()
    delivered = [e for e in endpoint.events() if e["event"].startswith("hostile")]
    assert calls > 0 and len(delivered) + stats.get("dropped_call_failed", 0) == calls
    assert stats["dropped_call_failed"] <= 6  # only with under ~10 frames left (the call's own)
    # with 60 frames left both go, bounded: the depth limit is counted by our own loop
    roomy = [e["properties"] for e in delivered if int(e["event"].split()[1]) >= 60]
    assert len(roomy) == 2 * len(range(62, 120, 3))
    for properties in roomy:
        assert properties.get("self") == "<cycle>" or "<too deep>" in json.dumps(properties.get("deep"))


def test_sync_calls_with_little_stack_left_never_raise(make_client, endpoint):
    client = make_client()
    cyclic, deep = _cyclic_and_deep()
    escaped, answers = [], []
    calls = (lambda: client.track_sync(user_id="u", event="sync", properties=cyclic, timeout=5),
             lambda: client.track_llm_sync(user_id="u", prompt="p", generation="g", properties={"deep": deep},
                                           timeout=5))
    for headroom in range(2, 60, 3):
        for call in calls:
            try:
                answers.append(_call_with_frames_left(headroom, call))
            except RecursionError as error:
                if _escaped_from_our_code(error):
                    escaped.append(headroom)
    assert escaped == []
    assert answers and all(isinstance(answer, SyncResult) for answer in answers)
    assert any(answer.delivered for answer in answers)  # with room enough, they go


def test_flush_with_little_stack_left_never_raises_and_loses_nothing(make_client, endpoint):
    client = make_client()
    escaped, answers = [], []
    for headroom in range(2, 60, 3):
        client.track(user_id="u", event=f"flush {headroom}")
        try:
            answers.append(_call_with_frames_left(headroom, lambda: client.flush(timeout=5)))
        except RecursionError as error:
            if _escaped_from_our_code(error):
                escaped.append(headroom)
    assert escaped == []
    assert answers and all(isinstance(answer, int) for answer in answers)
    assert client.flush(timeout=20) == 0  # with room: every event delivered, none lost meanwhile
    assert {f"flush {h}" for h in range(2, 60, 3)} <= {e["event"] for e in endpoint.events()}


def test_close_with_little_stack_left_never_raises_and_loses_nothing(make_client, endpoint):
    """close() shuts the processor down on a thread of its own: a spent stack in the app's
    thread neither escapes nor stops the delivery halfway."""
    escaped, expected = [], set()
    for headroom in range(2, 40, 3):
        client = make_client()
        for i in range(3):
            client.track(user_id="u", event=f"close {headroom} {i}")
            expected.add(f"close {headroom} {i}")
        try:
            _call_with_frames_left(headroom, lambda: client.close(timeout=5))
        except RecursionError as error:
            if _escaped_from_our_code(error):
                escaped.append(headroom)
    assert escaped == []
    deadline = time.monotonic() + 30  # a close cut short leaves its thread finishing the delivery
    while not expected <= {e["event"] for e in endpoint.events()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert expected <= {e["event"] for e in endpoint.events()}


# The app's own TracerProvider (``tracer_provider=``, or ``configure()``): its force_flush() calls
# our processor's, which must keep the SDK's SpanProcessor contract (False once the timeout is
# exceeded) and never turn the app's thread into our export thread.


def test_the_apps_force_flush_with_little_stack_left_never_raises_and_loses_nothing(make_client, endpoint):
    """The export runs on our worker, the app's thread only waits: a spent stack there stops
    the wait, never a batch halfway (taken from the queue, neither delivered nor spooled)."""
    provider = TracerProvider()
    client = make_client(tracer_provider=provider, flush_interval=3600)
    escaped, expected = [], set()
    for headroom in range(2, 60, 3):
        for i in range(3):
            client.track(user_id="u", event=f"force_flush {headroom} {i}")
            expected.add(f"force_flush {headroom} {i}")
        try:
            _call_with_frames_left(headroom, lambda: provider.force_flush(5_000))
        except RecursionError as error:
            if _escaped_from_our_code(error):
                escaped.append(headroom)
    assert escaped == []
    assert provider.force_flush(20_000) is True  # with room: True, everything exported
    assert client.flush(timeout=20) == 0
    assert expected <= {e["event"] for e in endpoint.events()}
    provider.shutdown()


def test_the_apps_force_flush_returns_false_past_its_timeout_and_keeps_the_events(make_client, endpoint):
    provider = TracerProvider()
    client = make_client(tracer_provider=provider, flush_interval=3600)
    client.track(user_id="u", event="slow answer")
    endpoint.reply(delay=3)  # the export outlasts the app's timeout
    assert provider.force_flush(200) is False
    assert client.flush(timeout=20) == 0  # still on its way meanwhile: delivered, not lost
    assert [e["event"] for e in endpoint.events()] == ["slow answer"]
    provider.shutdown()
