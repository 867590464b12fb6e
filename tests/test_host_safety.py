"""A malformed host never sends anything anywhere, least of all to Trubrics' hosted service.

``TRUBRICS_HOST=localhost:8000`` (no scheme) or ``host="http://127.0.0.1:99999"`` used to be
logged and replaced by the default, the hosted service: the app's prompts and its key went
there. Here a local endpoint stands in for that default and must receive nothing, while one
error names what is wrong and the events stay pending (a fixed configuration can send them).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys

import pytest
from conftest import API_KEY

from trubrics_otel import Trubrics, settings
from trubrics_otel.receive.bridge import Bridge

CASES = [  # (environment, host= argument, what the one error names)
    ("localhost:8000", None, "TRUBRICS_HOST='localhost:8000'"),
    (None, "http://127.0.0.1:99999", "host='http://127.0.0.1:99999'"),
    ("localhost:8000", "http://127.0.0.1:99999", "host='http://127.0.0.1:99999'"),  # the argument wins
]


@pytest.fixture
def saas(endpoint, monkeypatch):
    """The local endpoint, standing in for the hosted service as the default host."""
    monkeypatch.setattr(settings, "HOST", dataclasses.replace(settings.HOST, default=endpoint.url))
    monkeypatch.setattr(settings, "DEFAULT_HOST", endpoint.url)
    return endpoint


@pytest.mark.parametrize("environment, argument, named", CASES)
def test_a_malformed_host_sends_nothing_and_keeps_the_events(saas, environment, argument, named,
                                                             monkeypatch, caplog):
    if environment is None:
        monkeypatch.delenv("TRUBRICS_HOST", raising=False)
    else:
        monkeypatch.setenv("TRUBRICS_HOST", environment)
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        client = Trubrics(api_key=API_KEY, host=argument, flush_interval=0.05)
        for i in range(3):
            client.track(user_id="u", event=f"e{i}")  # never raises
        assert client.flush(timeout=10) == 3  # not delivered: pending, not lost
        assert client.stats()["pending"] == 3
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        client.close(timeout=5)
    assert len(errors) == 1 and named in errors[0] and "not usable" in errors[0], errors
    [closing] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Closing with 3 Trubrics")]
    # kept on disk, where no process sends them while the host stands: never "the next process"
    assert named in closing and f"spooled in {client._exporter._delivery.directory}" in closing, closing
    assert "next process" not in closing and "`trubrics-otel doctor` (run with the corrected setting)" in closing
    assert API_KEY not in caplog.text
    assert saas.requests == []  # nothing reached the default host


def test_the_bridge_refuses_a_malformed_trubrics_host_in_one_line(saas, monkeypatch):
    monkeypatch.setenv("TRUBRICS_HOST", "localhost:8000")
    with pytest.raises(ValueError, match="TRUBRICS_HOST='localhost:8000' is not usable"):
        Bridge(api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="off")
    done = subprocess.run([sys.executable, "-m", "trubrics_otel", "bridge", "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TRUBRICS_API_KEY": API_KEY})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "TRUBRICS_HOST='localhost:8000'" in done.stderr
    assert saas.requests == []


@pytest.mark.parametrize("value, says", [
    ("localhost:8000", "TRUBRICS_HOST='localhost:8000' is not usable"),
    ("http://192.0.2.7:8000", "http://192.0.2.7:8000: plain http:// off loopback would expose the API key"),
])
def test_the_exporter_the_bridge_and_doctor_refuse_a_host_for_one_reason(value, says, saas, monkeypatch,
                                                                       caplog, tmp_path):
    """One rule, one wording: the exporter logs it (and spools), the bridge does not start,
    doctor reports it; with TRUBRICS_ALLOW_INSECURE=1 all three accept plain http."""
    from trubrics_otel import TrubricsSpanExporter
    from trubrics_otel.diagnose import diagnose

    monkeypatch.setenv("TRUBRICS_HOST", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TRUBRICS_ALLOW_INSECURE", raising=False)
    reason = settings.host_refusal(value)
    assert reason is not None and says in reason and "TRUBRICS_" in reason
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        TrubricsSpanExporter(api_key=API_KEY, spool=tmp_path / "spool").shutdown(timeout_millis=100)
    assert [r.getMessage() for r in caplog.records] == [f"Trubrics events will not be sent: {reason}. They are spooled."]
    with pytest.raises(ValueError) as refused:
        Bridge(api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="off")
    assert str(refused.value) == reason
    [host] = [c for c in diagnose(api_key=API_KEY, in_app=False) if c.check == "host"]
    assert (host.status, host.detail) == ("problem", reason)
    assert API_KEY not in caplog.text + reason

    monkeypatch.setenv("TRUBRICS_ALLOW_INSECURE", "1")  # the operator's opt-in: plain http only
    assert (settings.host_refusal(value) is None) is value.startswith("http://")
    if value.startswith("http://"):
        assert Bridge(api_key=API_KEY, listen="127.0.0.1:0", grpc_listen="off").host == value
        [host] = [c for c in diagnose(api_key=API_KEY, in_app=False) if c.check == "host"]
        assert host.status == "ok"
    assert saas.requests == []
