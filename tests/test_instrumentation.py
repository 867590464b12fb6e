"""Third-party LLM spans → Trubrics events, end to end.

The official ``openai`` client talks to a local OpenAI-compatible server, instrumented by
each library in turn (one subprocess per library: instrumentors patch ``openai`` globally),
and its spans go through ``configure()`` → ``TrubricsSpanExporter`` to a local Trubrics
endpoint. The assertions are on what that endpoint received, field by field.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fake_openai import ERROR_MESSAGE, FakeOpenAI
from trubrics_endpoint import TrubricsEndpoint

pytest.importorskip("openai")

TESTS = Path(__file__).parent
APP = TESTS / "instrumented_app.py"

# (library, content-capture mode of the official instrumentation)
VARIANTS = {
    "openai-v2 (content on span)": ("openai-v2", "span_only"),
    "openai-v2 (content in log records)": ("openai-v2", "event_only"),
    "openllmetry": ("openllmetry", None),
    "openinference": ("openinference", None),
}


def run_app(lib: str, content: str | None, *extra: str) -> tuple[TrubricsEndpoint, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_"))}
    # the test's own spool (module fixtures run before the per-test one), never ~/.cache
    env["TRUBRICS_SPOOL"] = os.environ.get("TRUBRICS_SPOOL") or tempfile.mkdtemp(prefix="spool-")
    if content:
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = content
    with FakeOpenAI() as fake, TrubricsEndpoint() as endpoint:
        done = subprocess.run(
            [
                sys.executable,
                str(APP),
                "--lib",
                lib,
                "--openai-url",
                fake.url,
                "--trubrics-host",
                endpoint.url,
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        stats = json.loads(done.stdout.strip().splitlines()[-1])
    return endpoint, stats


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def received(request: pytest.FixtureRequest) -> tuple[str, TrubricsEndpoint, dict[str, Any]]:
    lib, content = VARIANTS[request.param]
    endpoint, stats = run_app(lib, content)
    return lib, endpoint, stats


def stable(event: dict[str, Any]) -> dict[str, Any]:
    """The event minus what differs run to run (ids, clock), after checking its form."""
    event = json.loads(json.dumps(event))
    properties = event["properties"]
    assert re.fullmatch(r"[0-9a-f]{32}", properties.pop("$trace_id"))
    assert re.fullmatch(r"[0-9a-f]{16}", properties.pop("$span_id"))
    # every call ran inside the app's "handle request" span
    assert re.fullmatch(r"[0-9a-f]{16}", properties.pop("$parent_span_id"))
    assert dt.datetime.fromisoformat(event.pop("timestamp")).tzinfo is not None
    if "time_to_first_token" in properties:  # measured: a number of seconds, not a constant
        assert 0 <= properties["time_to_first_token"] < 60
        properties["time_to_first_token"] = "<seconds>"
    if "latency" in event:
        latency = event.pop("latency")
        assert isinstance(latency, float) and 0 < latency < 60
    return event


def llm(prompt: str, generation: str, assistant_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "user_id": "u1",
        "prompt": prompt,
        "generation": generation,
        "prompt_event_name": "Prompt",
        "generation_event_name": "Generation",
        "assistant_id": assistant_id,
        "properties": {"plan": "pro", "provider": "openai", **properties},
        "thread_id": "t-42",
    }


def gpt_4o_mini_cost(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    """What genai-prices charges for gpt-4o-mini: $0.15 in, $0.60 out per million tokens."""
    spent_in, spent_out = round(tokens_in * 0.15 / 1e6, 10), round(tokens_out * 0.60 / 1e6, 10)
    return {"cost_usd": round(spent_in + spent_out, 10), "input_cost_usd": spent_in,
            "output_cost_usd": spent_out, "cost_source": f"genai-prices {version('genai-prices')}"}


def expected_llm_events(lib: str) -> list[dict[str, Any]]:
    total = lib != "openai-v2"  # openai-v2 writes no total
    tokens = lambda i, o: {  # noqa: E731  (absent cache and reasoning counts are 0)
        "input_tokens": i,
        "output_tokens": o,
        **({"total_tokens": i + o} if total else {}),
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
        **gpt_4o_mini_cost(i, o),
    }
    model, snapshot = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
    stream_params = {"stream": True} if lib == "openinference" else {}
    if lib in ("openllmetry", "openinference"):  # chunk events / "First Token Stream Event"
        stream_params["time_to_first_token"] = "<seconds>"
    return [
        llm(
            "Say hello",
            "Echo: Say hello",
            snapshot,
            **tokens(5, 3),
            finish_reason="stop",
            temperature=0.2,
            max_tokens=50,
            request_model=model,
        ),
        llm(
            "Count to three",
            "Echo: Count to three",
            snapshot,
            **tokens(6, 4),
            finish_reason="stop",
            request_model=model,
            **stream_params,
        ),
        llm(
            "Break",
            "",
            "fail-500",
            **{
                # openai-v2 with its own util-genai (1.0b0) writes the class's qualified name
                "error.type": "InternalServerError" if lib.startswith("openai-v2") else "openai.InternalServerError",
                "error.message": f"Error code: 500 - {ERROR_MESSAGE}",
            },
        ),
        llm(
            "Weather in Paris?",
            'tool_call: get_weather({"city": "Paris"})',
            snapshot,
            **tokens(3, 0),
            request_model=model,
            # each library spells it its own way; we pass it on as written
            finish_reason="tool_call" if lib == "openllmetry" else "tool_calls",
        ),
    ]


SOURCE = {"openai-v2": "opentelemetry-genai", "openllmetry": "opentelemetry-genai",
          "openinference": "openinference"}
"""The rule-table row that reads each library's spans (``$source``)."""


def test_llm_calls_become_llm_events_field_by_field(received: Any) -> None:
    lib, endpoint, _ = received
    expected = expected_llm_events(lib)
    for event in expected:
        event["properties"]["$source"] = SOURCE[lib]
    assert [stable(e) for e in endpoint.events("publish_llm_events")] == expected


def test_tool_run_becomes_an_event_in_the_same_trace(received: Any) -> None:
    _, endpoint, _ = received
    (tool,) = endpoint.events("publish_events")
    call = endpoint.events("publish_llm_events")[-1]
    assert tool["properties"]["$trace_id"] == call["properties"]["$trace_id"]
    assert tool["properties"]["$parent_span_id"] == call["properties"]["$parent_span_id"]
    assert stable(tool) == {
        "user_id": "u1",
        "event": "execute_tool get_weather",
        "properties": {
            "plan": "pro",
            "tool_name": "get_weather",
            "tool_call_id": "call_fake_0001",
            "$thread_id": "t-42",
            "$source": "opentelemetry-genai-tool",
        },
    }


def test_non_llm_spans_are_not_sent(received: Any) -> None:
    _, endpoint, stats = received
    # the four "handle request" server spans were dropped, nothing else was
    assert stats["skipped_spans"] == 4
    assert stats["sent"] == 5
    names = [e["event"] for e in endpoint.events("publish_events")]
    assert "handle request" not in names


def test_non_llm_spans_are_sent_when_opted_in_under_the_anonymous_id() -> None:
    endpoint, stats = run_app("openai-v2", "span_only", "--cases", "chat", "--all-spans")
    (event,) = endpoint.events("publish_events")
    assert stats["skipped_spans"] == 0
    # "handle request" started before user_context: no user anywhere
    assert event["event"] == "handle request"
    assert event["user_id"] == "anonymous"
    assert event["properties"]["span_kind"] == "server"
    (call,) = endpoint.events("publish_llm_events")
    assert call["properties"]["$parent_span_id"] == event["properties"]["$span_id"]


ZERO_CODE_APP = """
import openai, sys
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-fake", max_retries=0)
client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
)
"""


def test_zero_code_opentelemetry_instrument(tmp_path: Path) -> None:
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_"))}
    # the test's own spool (module fixtures run before the per-test one), never ~/.cache
    env["TRUBRICS_SPOOL"] = os.environ.get("TRUBRICS_SPOOL") or tempfile.mkdtemp(prefix="spool-")
    with FakeOpenAI() as fake, TrubricsEndpoint(api_key="sk-zero") as endpoint:
        env.update(  # the README's command as written: no metrics or logs exporter set
            OTEL_TRACES_EXPORTER="trubrics",
            OTEL_SERVICE_NAME="zero-code-app",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
            TRUBRICS_API_KEY="sk-zero",
            TRUBRICS_HOST=endpoint.url,
        )
        done = subprocess.run(
            [str(instrument), sys.executable, str(app), fake.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        events = endpoint.events("publish_llm_events")
    # The test env holds all three libraries, all registered as "openai": the launcher runs
    # each, so the one call yields three nested spans, each read by its own rule; they are
    # recognised as one model call and merged into one event.
    assert [(e["user_id"], e["prompt"], e["generation"], e["assistant_id"]) for e in events] == [
        ("anonymous", "Say hello", "Echo: Say hello", "gpt-4o-mini-2024-07-18")
    ]
    assert all(r.headers.get("x-api-key") == "sk-zero" for r in endpoint.requests)


EXAMPLES = TESTS.parent / "examples"


def run_example(command: list[str], **env_extra: str) -> tuple[TrubricsEndpoint, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "TRUBRICS_", "OPENAI_")) or k == "TRUBRICS_SPOOL"
    }
    with FakeOpenAI() as fake, TrubricsEndpoint(api_key="sk-example") as endpoint:
        env.update(
            OPENAI_API_KEY="sk-fake",
            OPENAI_BASE_URL=fake.url,
            TRUBRICS_API_KEY="sk-example",
            TRUBRICS_HOST=endpoint.url,
            **env_extra,
        )
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return endpoint, done.stdout


def test_example_existing_tracing() -> None:
    endpoint, stdout = run_example([sys.executable, str(EXAMPLES / "existing_tracing.py")])
    assert "Echo: Say hello" in stdout
    (event,) = endpoint.events("publish_llm_events")
    assert (event["user_id"], event["thread_id"], event["prompt"], event["generation"]) == (
        "u1",
        "t-42",
        "Say hello",
        "Echo: Say hello",
    )
    assert event["properties"]["plan"] == "pro"


def test_example_zero_code_with_user_context() -> None:
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    endpoint, stdout = run_example(
        [str(instrument), sys.executable, str(EXAMPLES / "zero_code_app.py")],
        OTEL_TRACES_EXPORTER="trubrics",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
    )
    assert "Echo: Say hello" in stdout
    events = endpoint.events("publish_llm_events")
    # all three instrumentation libraries are in the test env: three spans, one model call
    assert [(e["user_id"], e["thread_id"], e["prompt"]) for e in events] == [
        ("u1", "t-42", "Say hello")
    ]
