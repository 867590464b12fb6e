"""Every environment variable, every odd value: one parser, one meaning, a logged error.

``settings.py`` owns every ``TRUBRICS_*`` / ``OTEL_*`` variable. Booleans take exactly
``1 true yes on`` / ``0 false no off`` (stripped, any case); an empty value is unset; anything
else is a logged error and the default. ``TRUBRICS_ALLOW_INSECURE=" 0"`` once turned insecure
mode *on*: here it is off, and the exporter refuses plain http to a remote host.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trubrics_otel import Trubrics, TrubricsSpanExporter, settings

ODD_VALUES = (" 0", "FALSE", "", "maybe", " TRUE ", "1", "-5", "nan", "2.5")

# what each kind of variable makes of each odd value; None = the variable's default
BOOLEAN = {" 0": False, "FALSE": False, "": None, "maybe": None, " TRUE ": True, "1": True,
           "-5": None, "nan": None, "2.5": None}
NUMBER = {" 0": None, "FALSE": None, "": None, "maybe": None, " TRUE ": None, "1": 1.0,
          "-5": None, "nan": None, "2.5": 2.5}
INTEGER = {**NUMBER, "1": 1, "2.5": 2}
MILLISECONDS = {**NUMBER, "1": 0.001, "2.5": 0.0025}
RATIO = {" 0": 0.0, "FALSE": None, "": None, "maybe": None, " TRUE ": None, "1": 1.0,
         "-5": None, "nan": None, "2.5": None}
CONTENT = {**BOOLEAN}
SPOOL = {" 0": False, "FALSE": False, "": None, "maybe": Path("maybe"), " TRUE ": None, "1": None,
         "-5": Path("-5"), "nan": Path("nan"), "2.5": Path("2.5")}
ADDRESS = {value: None for value in ODD_VALUES}
ADDRESS_OR_OFF = {**ADDRESS, " 0": False, "FALSE": False}
TEXT = {value: value.strip() or None for value in ODD_VALUES}
URL = {**TEXT}  # a destination: kept as given for its user to refuse, never the default
PATH = {value: Path(value.strip()) if value.strip() else None for value in ODD_VALUES}
SAMPLER = {value: None for value in ODD_VALUES}

EXPECTED = {
    settings.API_KEY: TEXT,
    settings.HOST: URL,
    settings.TIMEOUT: NUMBER,
    settings.RETRY_TIMEOUT: NUMBER,
    settings.SPOOL: SPOOL,
    settings.MAX_SPOOL_BYTES: INTEGER,
    settings.ALLOW_INSECURE: BOOLEAN,
    settings.ALL_SPANS: BOOLEAN,
    settings.CAPTURE_CONTENT: CONTENT,
    settings.SCHEDULE_DELAY: MILLISECONDS,
    settings.MAX_EXPORT_BATCH_SIZE: INTEGER,
    settings.MAX_QUEUE_SIZE: INTEGER,
    settings.TRACES_SAMPLER: SAMPLER,
    settings.TRACES_SAMPLER_ARG: RATIO,
    settings.BRIDGE_LISTEN: ADDRESS,
    settings.BRIDGE_GRPC_LISTEN: ADDRESS_OR_OFF,
    settings.BRIDGE_CLIENT_TIMEOUT: NUMBER,
    settings.BRIDGE_MAX_BODY: INTEGER,
    settings.BRIDGE_TIMEOUT: NUMBER,
    settings.BRIDGE_RECEIVE_KEY: TEXT,
    settings.ATTRIBUTE_COUNT_LIMIT: INTEGER,
    settings.SPAN_ATTRIBUTE_COUNT_LIMIT: INTEGER,
    settings.DB: PATH,
    settings.DB_URL: TEXT,  # a path or a URL, as given
    settings.SERVE_WORKERS: INTEGER,
    settings.PRICES_FILE: PATH,
    settings.XDG_CACHE_HOME: PATH,
    settings.XDG_DATA_HOME: PATH,
}


def test_every_variable_is_covered():
    assert set(EXPECTED) == set(settings.VARIABLES)


@pytest.mark.parametrize("variable", settings.VARIABLES, ids=lambda v: v.name)
@pytest.mark.parametrize("raw", ODD_VALUES, ids=repr)
def test_every_variable_every_odd_value(variable, raw, monkeypatch, caplog):
    monkeypatch.setenv(variable.name, raw)
    expected = EXPECTED[variable][raw]
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        value = settings.read(variable)
    if expected is None:
        assert value == variable.default
    else:
        assert value == expected and type(value) is type(expected)
    # a value that is neither unset nor understood is one logged error naming the variable
    refused = raw.strip() != "" and expected is None and not (variable is settings.SPOOL)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    if refused and variable not in (settings.API_KEY,) and not variable.destination:
        assert len(errors) == 1 and variable.name in errors[0].getMessage()
    else:
        assert errors == []


def test_an_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("TRUBRICS_TIMEOUT", "99")
    assert settings.read(settings.TIMEOUT, 3.0) == 3.0
    assert settings.read(settings.TIMEOUT) == 99.0


def test_secret_values_are_never_logged(monkeypatch, caplog):
    secret = settings.Variable("TRUBRICS_TEST_SECRET", settings.boolean, None, secret=True)
    monkeypatch.setenv("TRUBRICS_TEST_SECRET", "sk-live-do-not-print")
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        settings.read(secret)
    assert "sk-live-do-not-print" not in caplog.text and "TRUBRICS_TEST_SECRET" in caplog.text
    assert "sk-live" not in repr(settings.Secret("sk-live-do-not-print"))


def test_allow_insecure_space_zero_keeps_the_key_off_plain_http(monkeypatch, caplog, tmp_path):
    """The bug that started this: ``" 0"`` meant *on*, and the key went over http."""
    monkeypatch.setenv("TRUBRICS_ALLOW_INSECURE", " 0")
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        exporter = TrubricsSpanExporter(api_key="sk-x", host="http://example.invalid:9", spool=tmp_path)
    assert "http://example.invalid:9: plain http:// off loopback would expose the API key" in caplog.text
    exporter.shutdown(timeout_millis=100)


@pytest.mark.parametrize("raw, expected", [("off", False), (" NO ", False), ("on", True), ("maybe", True)])
def test_all_spans_switch_reaches_the_encoder(raw, expected, monkeypatch, tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    monkeypatch.setenv("TRUBRICS_ALL_SPANS", raw)
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("GET /health").end()
    exporter = TrubricsSpanExporter(api_key="k", host="http://127.0.0.1:9", spool=tmp_path)
    [(_, events), _] = exporter.encode(memory.get_finished_spans())
    assert (len(events) == 1) is (expected and raw != "maybe")  # "maybe": default, off
    exporter.shutdown(timeout_millis=100)


def test_flush_settings_fall_back_to_the_bsp_variables(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "2500")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 50 ")
    client = Trubrics(api_key="k", host="http://127.0.0.1:9")
    assert "flush_interval=2.5" in repr(client) and "flush_batch_size=50" in repr(client)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "soon")
    assert "flush_interval=10.0" in repr(Trubrics(api_key="k", host="http://127.0.0.1:9"))
