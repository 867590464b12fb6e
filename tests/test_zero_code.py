"""Zero-code as documented: ``opentelemetry-instrument`` with our distro stores prompts and
generations at a local ``trubrics-otel serve``, and works with whichever exporters are installed.

The real launcher, the real openai-v2 instrumentation and ``openai`` client, against
tests/fake_openai.py and a real local server on 127.0.0.1. The documented command (the docs'
zero-code section) is ``DOCUMENTED_ENV`` + ``opentelemetry-instrument python app.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from trubrics_otel.capture.distro import defaults
from trubrics_otel.server.app import LocalServer

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
APP = """\
import os, openai
client = openai.OpenAI(max_retries=0)   # OPENAI_API_KEY and OPENAI_BASE_URL from the environment
model = os.environ.get("APP_MODEL", "gpt-4o-mini")
try:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}])
    print(reply.choices[0].message.content)
except openai.APIStatusError as exc:
    print("failed", exc.status_code)
"""


def documented_env(server_url: str) -> dict[str, str]:
    """The documented command's variables, exactly: nothing about content capture or metrics."""
    return {"OTEL_TRACES_EXPORTER": "trubrics", "TRUBRICS_HOST": server_url, "TRUBRICS_API_KEY": "local-dev-key"}


def launch(tmp_path: Path, fake: FakeOpenAI, **env_extra: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_", "OPENAI_"))}
    env.update(OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=fake.url, TRUBRICS_SPOOL=tempfile.mkdtemp(prefix="spool-"))
    env.update(env_extra)
    return subprocess.run([str(INSTRUMENT), sys.executable, str(app)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.fixture
def serve(tmp_path):
    with LocalServer(tmp_path / "events.sqlite3", port=0, grpc_port=0) as server:
        yield server


def llm_events(server: LocalServer) -> list[tuple[str, str | None, str | None]]:
    return [(e["user_id"], e["prompt"], e["generation"]) for e in server.store.events(kind="llm")]


def test_the_documented_command_stores_prompts_and_generations(tmp_path, serve):
    with FakeOpenAI() as fake:
        done = launch(tmp_path, fake, **documented_env(serve.url))
    assert done.returncode == 0 and done.stdout == "Echo: Say hello\n", done.stderr
    assert llm_events(serve) == [("anonymous", "Say hello", "Echo: Say hello")]
    assert "Invalid type" not in done.stderr  # util-genai's pairing with openai-v2, pinned


def test_a_failing_call_logs_no_attribute_type_warning(tmp_path, serve):
    with FakeOpenAI() as fake:
        done = launch(tmp_path, fake, APP_MODEL="fail-500", **documented_env(serve.url))
    assert done.stdout == "failed 500\n", done.stderr
    assert "Invalid type" not in done.stderr, done.stderr
    (event,) = serve.store.events(kind="llm")
    assert event["error"] and "InternalServerError" in event["error"]


def test_content_capture_set_to_false_is_kept(tmp_path, serve):
    with FakeOpenAI() as fake:
        done = launch(tmp_path, fake, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="false",
                      **documented_env(serve.url))
    assert done.returncode == 0, done.stderr
    ((user, prompt, generation),) = llm_events(serve)
    assert user == "anonymous" and not prompt and not generation


def test_without_a_key_one_line_says_so_at_start(tmp_path):
    with FakeOpenAI() as fake:
        done = launch(tmp_path, fake, OTEL_TRACES_EXPORTER="trubrics")  # no key, no host
    assert done.returncode == 0 and done.stdout == "Echo: Say hello\n"
    lines = done.stderr.splitlines()
    assert "no Trubrics API key" in lines[0] and "TRUBRICS_API_KEY" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_plain_opentelemetry_instrument_sends_otlp_to_serve(tmp_path, serve):
    """No OTEL_TRACES_EXPORTER at all: OTLP over gRPC (installed here) reaches serve's port."""
    with FakeOpenAI() as fake:
        done = launch(tmp_path, fake, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{serve.grpc_port}",
                      OTEL_METRIC_EXPORT_INTERVAL="600000")
    assert done.returncode == 0 and "RuntimeError" not in done.stderr, done.stderr
    assert [user for user, _, _ in llm_events(serve)] == ["anonymous"]


GRPC, HTTP = "otlp_proto_grpc", "otlp_proto_http"
CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
TRACES, METRICS, LOGS = "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"


@pytest.mark.parametrize("environ, installed, expected", [
    # nothing named, the gRPC exporter installed: as opentelemetry-distro
    ({}, {GRPC, HTTP}, {TRACES: "otlp", METRICS: "otlp", LOGS: "otlp"}),
    # only the HTTP exporter: that one, instead of "Requested component 'otlp_proto_grpc' not found"
    ({}, {HTTP}, {TRACES: HTTP, METRICS: HTTP, LOGS: HTTP}),
    # no OTLP exporter at all: traces to Trubrics (content captured), nothing else
    ({}, set(), {TRACES: "trubrics", METRICS: "none", LOGS: "none", CONTENT: "span_only"}),
    # a protocol asked for and not installed: not silently another one
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, {GRPC},
     {TRACES: "trubrics", METRICS: "none", LOGS: "none", CONTENT: "span_only"}),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, {HTTP}, {TRACES: "otlp", METRICS: "otlp", LOGS: "otlp"}),
    # traces to Trubrics: metrics and logs nowhere, content on spans
    ({TRACES: "trubrics"}, {GRPC}, {METRICS: "none", LOGS: "none", CONTENT: "span_only"}),
    ({TRACES: "console, trubrics"}, {GRPC}, {METRICS: "none", LOGS: "none", CONTENT: "span_only"}),
    # what the user set wins
    ({TRACES: "trubrics", CONTENT: "false", METRICS: "otlp"}, {GRPC}, {LOGS: "none"}),
    ({TRACES: "trubrics", CONTENT: "event_only"}, {GRPC}, {METRICS: "none", LOGS: "none"}),
    ({TRACES: "otlp"}, set(), {METRICS: "none", LOGS: "none"}),
], ids=["grpc installed", "http only", "no otlp", "http asked, grpc only", "http asked and installed",
        "trubrics", "trubrics among others", "user's false kept", "user's mode kept", "otlp named"])
def test_defaults_follow_what_is_installed(environ, installed, expected):
    assert defaults(environ, lambda group, name: name in installed) == expected
