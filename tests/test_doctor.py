"""``trubrics-otel doctor`` on a table of broken setups: it names the problem, exits 1, never
shows the key and never creates an event; a healthy setup exits 0.

Real endpoints on 127.0.0.1: tests/trubrics_endpoint.py (the ingestion API's wire format, with
a key it checks) and the local ``serve``.
"""

from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from trubrics_endpoint import TrubricsEndpoint

from trubrics_otel.cli import main
from trubrics_otel.extras import install_command
from trubrics_otel.server.app import LocalServer

KEY = "sk-doctor-secret-1234"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith(("TRUBRICS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRUBRICS_SPOOL", str(tmp_path / "spool"))
    return monkeypatch


def run_doctor(capsys) -> tuple[int, dict[str, list[dict]], str]:
    code = main(["doctor", "--json"])
    out = capsys.readouterr().out
    by_check: dict[str, list[dict]] = {}
    for check in json.loads(out):
        by_check.setdefault(check["check"], []).append(check)
    return code, by_check, out


SETUPS = {  # name -> (environment given the endpoint's URL and a tmp dir, failing check, words)
    "no key": (lambda url, tmp: {"TRUBRICS_HOST": url}, "api key", "no TRUBRICS_API_KEY"),
    "host not a url": (lambda url, tmp: {"TRUBRICS_HOST": "localhost:8000", "TRUBRICS_API_KEY": KEY},
                       "host", "TRUBRICS_HOST='localhost:8000' is not usable: expected an http:// or https:// URL"),
    "ftp host": (lambda url, tmp: {"TRUBRICS_HOST": "ftp://x", "TRUBRICS_API_KEY": KEY},
                 "host", "expected an http:// or https:// URL"),
    "host port out of range": (lambda url, tmp: {"TRUBRICS_HOST": "http://127.0.0.1:99999", "TRUBRICS_API_KEY": KEY},
                               "host", "TRUBRICS_HOST='http://127.0.0.1:99999' is not usable: Port out of range"),
    "key over plain http": (lambda url, tmp: {"TRUBRICS_HOST": "http://example.invalid", "TRUBRICS_API_KEY": KEY},
                            "host", "http://example.invalid: plain http:// off loopback would expose the API key"),
    "unreachable host": (lambda url, tmp: {"TRUBRICS_HOST": _closed_port_url(), "TRUBRICS_API_KEY": KEY},
                         "reachable", "did not answer: connection refused (nothing listens on that port)"),
    "wrong key (401)": (lambda url, tmp: {"TRUBRICS_HOST": url, "TRUBRICS_API_KEY": "sk-wrong-key"},
                        "reachable", "refused the key (HTTP 401)"),
    "unwritable spool": (lambda url, tmp: {"TRUBRICS_HOST": url, "TRUBRICS_API_KEY": KEY,
                                           "TRUBRICS_SPOOL": str(_a_file(tmp) / "spool")},
                         "spool", "cannot be created or written"),
    "store setting naming no store": (lambda url, tmp: {"TRUBRICS_HOST": url, "TRUBRICS_API_KEY": KEY,
                                                        "TRUBRICS_DB": str(tmp / "typo" / "x.sqlite3")},
                                      "store", "typo' does not exist"),
}


def _a_file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a directory")
    return path


@pytest.mark.parametrize("name", list(SETUPS))
def test_a_broken_setup_is_named_and_exits_1(name, clean_env, tmp_path, capsys):
    environment, failing, words = SETUPS[name]
    with TrubricsEndpoint(api_key=KEY) as endpoint:
        for variable, value in environment(endpoint.url, tmp_path).items():
            clean_env.setenv(variable, value)
        code, checks, out = run_doctor(capsys)
        assert endpoint.events("publish_events") == [] and endpoint.events("publish_llm_events") == []
    assert code == 1
    problems = [c for group in checks.values() for c in group if c["status"] == "problem"]
    assert [c["check"] for c in problems] == [failing], out
    assert words in problems[0]["detail"] and problems[0]["fix"]
    assert KEY not in out


def test_a_store_setting_naming_a_file_not_yet_served_is_a_note(clean_env, tmp_path, capsys):
    clean_env.setenv("TRUBRICS_DB", str(tmp_path / "events.sqlite3"))
    _, checks, out = run_doctor(capsys)
    assert checks["store"][0]["status"] == "note", out
    assert "no store there" in checks["store"][0]["detail"] and "serve" in checks["store"][0]["fix"]
    assert not (tmp_path / "events.sqlite3").exists()


@pytest.mark.parametrize(("url", "status", "words"), [
    ("postgresql://me:s3cret@127.0.0.1:5432/events", "ok", "TRUBRICS_DB_URL=postgresql://me:***@127.0.0.1:5432/events"),
    ("postgres:me:s3cret@127.0.0.1/events", "problem", "TRUBRICS_DB_URL='postgres:me:***@127.0.0.1/events' is not usable"),
])
def test_the_store_url_setting_wins_over_the_path_and_its_password_stays_hidden(url, status, words, clean_env,
                                                                                  tmp_path, capsys):
    clean_env.setenv("TRUBRICS_DB_URL", url)
    clean_env.setenv("TRUBRICS_DB", str(tmp_path / "typo" / "x.sqlite3"))  # not the one checked
    _, checks, out = run_doctor(capsys)
    [store] = checks["store"]
    assert store["status"] == status and store["detail"].startswith(words), out
    assert "s3cret" not in out


def test_without_a_key_the_host_is_still_checked(clean_env, capsys):
    """A newcomer with neither a key nor a reachable host learns both at once, not one per run."""
    clean_env.setenv("TRUBRICS_HOST", _closed_port_url())
    code, checks, out = run_doctor(capsys)
    assert code == 1
    assert [c["check"] for group in checks.values() for c in group if c["status"] == "problem"] == [
        "api key", "reachable"], out
    with TrubricsEndpoint(api_key=KEY) as endpoint:
        clean_env.setenv("TRUBRICS_HOST", endpoint.url)
        _, checks, out = run_doctor(capsys)
        (probe,) = endpoint.requests
    assert "x-api-key" not in {h.lower() for h in probe.headers} and probe.body == []
    assert checks["reachable"][0]["status"] == "note" and "answered HTTP 401" in checks["reachable"][0]["detail"]


def test_a_healthy_setup_exits_0_and_creates_nothing(clean_env, capsys):
    with TrubricsEndpoint(api_key=KEY) as endpoint:
        clean_env.setenv("TRUBRICS_HOST", endpoint.url)
        clean_env.setenv("TRUBRICS_API_KEY", KEY)
        code, checks, out = run_doctor(capsys)
        (probe,) = endpoint.requests
    assert code == 0, out
    assert probe.headers.get("x-api-key") == KEY and probe.body == []  # the empty batch: no event
    assert checks["reachable"][0]["status"] == "ok" and KEY not in out
    assert "tracer provider" in checks and "versions" in checks
    assert {c["check"] for c in checks["extra [cost]"]} == {"extra [cost]"}


def test_every_extra_a_user_installs_is_checked(clean_env, capsys):
    """``pip install 'trubrics-otel[x]'``: doctor says whether x is there, for every such extra."""
    declared = set(importlib.metadata.metadata("trubrics-otel").get_all("Provides-Extra") or [])
    _, checks, _ = run_doctor(capsys)
    checked = {name[len("extra ["):-1] for name in checks if name.startswith("extra [")}
    assert declared - {"test", "docs", "examples", "fast"} == checked


def test_a_missing_extra_gets_a_fix_that_works_on_this_python(clean_env, capsys, monkeypatch):
    """On a Python genai-prices does not support, ``pip install '…[cost]'`` adds nothing: doctor
    must not send the newcomer round that loop."""
    import importlib.util

    from trubrics_otel import diagnose

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "genai_prices" else real(name, *a))
    (cost,) = run_doctor(capsys)[1]["extra [cost]"]
    assert cost["status"] == "note" and cost["fix"] == install_command("cost")
    monkeypatch.setattr(diagnose, "COST_PYTHON", (99,))
    (cost,) = run_doctor(capsys)[1]["extra [cost]"]
    assert cost["fix"].startswith("needs Python 99 or newer") and "pip install" not in cost["fix"]


def test_against_a_local_serve_with_its_key(clean_env, tmp_path, capsys):
    with LocalServer(tmp_path / "e.sqlite3", port=0, api_key=KEY) as server:
        clean_env.setenv("TRUBRICS_HOST", server.url)
        clean_env.setenv("TRUBRICS_API_KEY", KEY)
        code, checks, out = run_doctor(capsys)
        assert server.store.count()["events"] == 0
        clean_env.setenv("TRUBRICS_API_KEY", "not-the-key")
        assert run_doctor(capsys)[0] == 1
    assert code == 0, out


def test_a_newcomer_beside_a_local_serve_is_told_what_to_set(clean_env, tmp_path, capsys):
    """``serve`` in one terminal, ``doctor --host`` in another, no key yet: the fix it gives is
    one that works there, and following it makes the setup healthy."""
    with LocalServer(tmp_path / "e.sqlite3", port=0) as server:
        assert main(["doctor", "--json", "--host", server.url]) == 1
        (key,) = [c for c in json.loads(capsys.readouterr().out) if c["status"] == "problem"]
        assert key["check"] == "api key" and "TRUBRICS_API_KEY=local-dev-key" in key["fix"], key
        clean_env.setenv("TRUBRICS_API_KEY", key["fix"].split("TRUBRICS_API_KEY=")[1].split()[0])
        code, checks, out = run_doctor_at(server.url, capsys)
    assert code == 0, out
    code, checks, out = run_doctor_at(_closed_port_url(), capsys)
    assert code == 1 and "serve" in checks["reachable"][0]["fix"], out  # on this machine: is it running?


def run_doctor_at(host: str, capsys) -> tuple[int, dict[str, list[dict]], str]:
    code = main(["doctor", "--json", "--host", host])
    out = capsys.readouterr().out
    return code, {c["check"]: [c] for c in json.loads(out)}, out


def test_spool_shows_what_is_waiting(clean_env, tmp_path, capsys):
    from trubrics_otel.deliver.exporter import spool_key

    url = _closed_port_url()
    clean_env.setenv("TRUBRICS_HOST", url)
    clean_env.setenv("TRUBRICS_API_KEY", KEY)
    waiting = tmp_path / "spool" / spool_key(url, KEY)
    waiting.mkdir(parents=True)
    (waiting / "1-2.seg").write_bytes(b"x" * 2048)
    _, checks, _ = run_doctor(capsys)
    assert "1 segment file(s), 2.0 KiB waiting for this host and key" in checks["spool"][0]["detail"]


def test_content_capture_is_reported_per_instrumentation(clean_env, capsys):
    clean_env.setenv("TRUBRICS_API_KEY", KEY)
    clean_env.setenv("TRUBRICS_HOST", _closed_port_url())
    _, checks, _ = run_doctor(capsys)
    v2 = [c for c in checks["instrumentation"] if "openai-v2" in c["detail"]]
    assert v2 and "no prompts or generations" in v2[0]["detail"] and "span_only" in v2[0]["fix"]
    clean_env.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    _, checks, _ = run_doctor(capsys)
    v2 = [c for c in checks["instrumentation"] if "openai-v2" in c["detail"]]
    assert "captures prompts and generations" in v2[0]["detail"]


@pytest.mark.parametrize("sdk", [True, False])
def test_in_app_doctor_checks_the_global_tracer_provider(sdk, tmp_path):
    setup = ("from opentelemetry import trace; from opentelemetry.sdk.trace import TracerProvider; "
             "trace.set_tracer_provider(TracerProvider()); " if sdk else "")
    code = setup + "import sys, trubrics_otel; sys.exit(0 if trubrics_otel.doctor() else 1)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRUBRICS_API_KEY": KEY,
                               "TRUBRICS_HOST": _closed_port_url()})
    (line,) = [line for line in done.stderr.splitlines() if "tracer provider" in line]
    assert line.startswith("ok ") == sdk, done.stderr
    assert KEY not in done.stderr and done.returncode == 1  # the closed port is a problem


def test_events_spooled_while_the_host_was_malformed_are_reported_with_how_to_send_them(clean_env, capsys):
    """``TRUBRICS_HOST=127.0.0.1:8000`` (no scheme) keeps the events in that host's spool; once the
    host is fixed nothing sends them. doctor says where they are and gives the command that
    hands them to the fixed host's spool; the next process then sends them."""
    from trubrics_otel import Trubrics

    with TrubricsEndpoint(api_key=KEY) as endpoint:
        malformed = endpoint.url.removeprefix("http://")
        clean_env.setenv("TRUBRICS_API_KEY", KEY)
        clean_env.setenv("TRUBRICS_HOST", malformed)
        client = Trubrics(flush_interval=0.05)
        for i in range(3):
            client.track(user_id="u", event=f"e{i}")
        client.flush(timeout=5)
        client.close(timeout=5)

        clean_env.setenv("TRUBRICS_HOST", endpoint.url)  # fixed
        code, checks, out = run_doctor(capsys)
        assert code == 1 and KEY not in out
        [waiting] = [c for c in checks["spool"] if c["status"] == "problem"]
        assert waiting["detail"].startswith("3 events waiting in ")
        assert f"spooled with this key for the host {malformed!r}, which is malformed" in waiting["detail"]
        command = waiting["fix"].split("setting: ", 1)[1]
        assert subprocess.run(["sh", "-c", command], timeout=30).returncode == 0

        code, checks, out = run_doctor(capsys)
        assert code == 0, out
        assert "(3 events)" in checks["spool"][0]["detail"] and len(checks["spool"]) == 1
        client = Trubrics(flush_interval=0.05)  # the fixed host's next process sends them
        client.track(user_id="u", event="e3")
        client.flush(timeout=10)
        client.close(timeout=5)
        assert sorted(e["event"] for e in endpoint.events("publish_events")) == ["e0", "e1", "e2", "e3"]


def test_events_spooled_for_another_host_or_key_are_a_note(clean_env, tmp_path, capsys):
    from trubrics_otel import Trubrics

    clean_env.setenv("TRUBRICS_API_KEY", "another-project-key")
    clean_env.setenv("TRUBRICS_HOST", _closed_port_url())
    client = Trubrics(flush_interval=0.05, retry_timeout=0.1)
    client.track(user_id="u", event="e")
    client.flush(timeout=5)
    client.close(timeout=5)
    with TrubricsEndpoint(api_key=KEY) as endpoint:
        clean_env.setenv("TRUBRICS_API_KEY", KEY)
        clean_env.setenv("TRUBRICS_HOST", endpoint.url)
        code, checks, out = run_doctor(capsys)
    assert code == 0, out
    [note] = checks["spool"][1:]
    assert note["status"] == "note" and note["detail"].startswith("1 event waiting in ")
    assert "for another host or key" in note["detail"] and "another-project-key" not in out


def test_without_an_instrumentation_the_suggestion_is_the_tested_set(clean_env, capsys, monkeypatch):
    """Not a bare ``pip install opentelemetry-instrumentation-openai-v2``: its newest release
    with the newest opentelemetry-util-genai does not import (the zero-code guide's pins)."""
    import importlib.metadata
    import re
    import shlex
    from pathlib import Path

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])  # none installed
    (note,) = run_doctor(capsys)[1]["instrumentation"]
    suggested = set(shlex.split(note["fix"].split(": ", 1)[1])[2:])
    guide = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "zero-code.md").read_text()
    (line,) = re.findall(r"^pip install (opentelemetry-instrumentation-openai-v2.*?)\s+#", guide, re.MULTILINE)
    assert note["status"] == "note" and suggested == set(shlex.split(line)), (note, line)
