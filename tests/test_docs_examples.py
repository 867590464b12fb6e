"""The Python examples a newcomer copies from the docs run as written and do what the page says.

Each block runs against a real local server (``LocalServer`` on 127.0.0.1); only the host is
pointed at it (``http://127.0.0.1:8787`` in the text, ``TRUBRICS_HOST`` where the text leaves
the host to the environment). A ``$ trubrics-otel …`` line shown in a ``text`` block prints
exactly the lines the page shows under it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from fake_openai import FakeOpenAI

from trubrics_otel.server import LocalServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLIENT = 'from trubrics_otel import Trubrics\ntrubrics = Trubrics(api_key="...")\n'
PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[str]:
    return PYTHON.findall((DOCS / page).read_text())


README = DOCS.parent / "README.md"


# page → the words by which the tests below pick each of its ```python blocks; a block none of
# them picks is run by no test (test_every_python_block_is_run_by_a_test)
PICKED_BY = {
    "README.md": ["Trubrics("],
    "getting-started.md": ["Trubrics("],
    "guide/tracking.md": ["# was: from trubrics", "$feedback", "track_sync("],
    "guide/security.md": ["mask="],
    "guide/tracing.md": ["trubrics.trace(", "get_client().track("],
    "guide/instrumentation.md": ["configure(tracer_provider=provider"],
    "guide/zero-code.md": ["UserContextSpanProcessor()"],
}


def block(page: str, words: str) -> str:
    """The one ```python block of ``page`` holding ``words`` (one of its PICKED_BY)."""
    assert words in PICKED_BY[page]
    text = (README if page == "README.md" else DOCS / page).read_text()
    (code,) = [b for b in PYTHON.findall(text) if words in b]
    return code


def test_every_python_block_is_run_by_a_test():
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    unpicked = [(str(page.relative_to(DOCS.parent if page == README else DOCS)), code.splitlines()[0])
                for page in pages for code in PYTHON.findall(page.read_text())
                if not any(words in code for words in PICKED_BY.get(
                    "README.md" if page == README else str(page.relative_to(DOCS)), []))]
    assert not unpicked, f"```python blocks no test runs (make them run, then add them to PICKED_BY): {unpicked}"


def run_block(code: str, server: LocalServer, **names: object) -> dict:
    """Run ``code`` with ``names`` (what it leaves to the app, such as ``client``) defined."""
    code = code.replace("http://127.0.0.1:8787", server.url)
    namespace: dict = dict(names)
    exec(compile(code, "<docs>", "exec"), namespace)  # noqa: S102 - the docs' own example
    if "trubrics" in namespace:
        namespace["trubrics"].close()
    return namespace


def run_app(code: str, server: LocalServer, *launcher: str) -> subprocess.CompletedProcess[str]:
    """``code`` as an app.py of its own, as the page runs it (under ``launcher``), its OpenAI
    calls answered by tests/fake_openai.py and its events sent to ``server``."""
    with tempfile.TemporaryDirectory() as directory, FakeOpenAI() as fake:
        app = Path(directory) / "app.py"
        app.write_text(code)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRUBRICS_", "OPENAI_"))}
        env.update(OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=fake.url, TRUBRICS_HOST=server.url,
                   TRUBRICS_SPOOL=str(Path(directory) / "spool"))
        return subprocess.run([*launcher, sys.executable, str(app)], env=env, capture_output=True, text=True,
                              timeout=120, cwd=directory)


def llm_turns(server: LocalServer) -> list[tuple]:
    return [(e["user_id"], e["thread_id"], e["prompt"], e["generation"])
            for e in server.store.events(kind="llm", limit=None)]


def feedback_totals(server: LocalServer) -> dict:
    return requests.get(f"{server.url}/api/feedback", timeout=10).json()["totals"]


@pytest.mark.parametrize("page", [README, DOCS / "getting-started.md"], ids=["README", "getting-started"])
def test_the_front_example_sends_events_cost_and_feedback_to_a_local_serve(tmp_path, page):
    code = block("README.md" if page == README else "getting-started.md", "Trubrics(")
    with LocalServer(tmp_path / "e.sqlite3") as server:
        run_block(code, server)
        (llm,) = server.store.events(kind="llm", limit=None)
        events = server.store.events(kind="event", limit=None)
        totals = feedback_totals(server)
    assert (llm["prompt"], llm["cost_usd"], llm["input_tokens"], llm["thread_id"]) == (
        "What is Trubrics?", 0.0001, 9, "t-42")
    assert sorted(e["event"] for e in events) == ["Sign up", "Thumbs up"]
    assert (totals["feedback"], totals["positive"], totals["threads_with_feedback"]) == (1, 1, 1)


def test_tracking_guide_examples_run_and_feedback_counts(tmp_path, monkeypatch):
    first = block("guide/tracking.md", "# was: from trubrics")
    feedback = [b for b in blocks("guide/tracking.md") if "$feedback" in b and b != first]
    assert feedback, "the tracking guide shows how to send feedback"
    with LocalServer(tmp_path / "e.sqlite3") as server:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        run_block(first, server)
        for code in feedback:  # with the client the first block made
            run_block(CLIENT + code, server)
        (llm,) = server.store.events(kind="llm", limit=None)
        totals = feedback_totals(server)
    assert (llm["thread_id"], llm["cost_usd"]) == ("t-42", 0.0001)
    assert (totals["feedback"], totals["positive"]) == (len(feedback), len(feedback))


def test_the_tracking_guide_track_sync_example_says_it_was_delivered(tmp_path, monkeypatch):
    with LocalServer(tmp_path / "e.sqlite3") as server:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        result = run_block(CLIENT + block("guide/tracking.md", "track_sync("), server)["result"]
        (event,) = server.store.events(kind="event", limit=None)
    assert (result.delivered, result.status, result.queued) == (True, 200, False)
    assert (event["event"], event["properties"]["total"]) == ("Checkout", 42)


def test_the_instrumentation_guide_example_stores_the_call_under_its_user(tmp_path):
    with LocalServer(tmp_path / "e.sqlite3") as server:
        done = run_app(block("guide/instrumentation.md", "configure(tracer_provider=provider"), server)
        assert done.returncode == 0, done.stderr
        assert llm_turns(server) == [("u1", "t-42", "Say hello", "Echo: Say hello")]


def test_the_zero_code_guide_example_runs_under_the_launcher_with_its_user(tmp_path):
    """The page's app, under its command (``OTEL_TRACES_EXPORTER=trubrics … opentelemetry-instrument
    python app.py``): the marked lines put the call under ``u1`` in ``t-42``."""
    instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
    with LocalServer(tmp_path / "e.sqlite3") as server:
        done = run_app(block("guide/zero-code.md", "UserContextSpanProcessor()"), server, "env",
                       "OTEL_TRACES_EXPORTER=trubrics", "TRUBRICS_API_KEY=local-dev-key", instrument)
        assert done.returncode == 0, done.stderr
        assert llm_turns(server) == [("u1", "t-42", "Say hello", "Echo: Say hello")]


def test_the_zero_code_install_line_names_what_the_tested_instrumentation_needs():
    """The guide's pip line installs what the ``examples`` extra (the tested set) adds for the
    OpenAI instrumentation: without ``httpx`` openai-v2 fails to import under openai 3.x."""
    (line,) = [x for x in (DOCS / "guide/zero-code.md").read_text().splitlines()
               if x.startswith("pip install opentelemetry-instrumentation-openai-v2")]
    named = {re.split(r"[<>=\[;]", word.strip("'"))[0] for word in line.split("#")[0].split()[2:]}
    tested = {re.split(r"[<>=\[; ]", r)[0] for r in importlib.metadata.requires("trubrics-otel") or []
              if 'extra == "examples"' in r}
    assert tested - {"trubrics-otel", "openai"} <= named, tested - named


def test_the_security_guide_mask_example_masks_what_is_stored(tmp_path, monkeypatch):
    code = block("guide/security.md", "mask=")
    with LocalServer(tmp_path / "e.sqlite3") as server:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        run_block(code + 'trubrics.track_llm(user_id="u1", prompt="mail me at ann@example.com", generation="ok",'
                  ' properties={"contact": ["bob@example.org"]})\n', server)
        (llm,) = server.store.events(kind="llm", limit=None)
    assert llm["prompt"] == "mail me at <email>" and llm["properties"]["contact"] == ["<email>"]


def test_the_tracing_guide_example_runs_and_every_observation_arrives(tmp_path, monkeypatch):
    """As written, plus one call of its ``ask`` (an ``@observe`` generation) with the app's
    OpenAI client, answered by tests/fake_openai.py."""
    import openai

    code = block("guide/tracing.md", "trubrics.trace(")
    code = code.replace('plan("compare plans")\n', 'plan("compare plans")\nask([{"role": "user", "content": "Say hello"}])\n')
    with LocalServer(tmp_path / "e.sqlite3") as server, FakeOpenAI() as fake:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        run_block(code, server, client=openai.OpenAI(base_url=fake.url, api_key="sk-fake", max_retries=0))
        llm, asked = sorted(server.store.events(kind="llm", limit=None), key=lambda e: e["prompt"] != "What is Trubrics?")
        events = {e["event"]: e for e in server.store.events(kind="event", limit=None)}
    assert (llm["user_id"], llm["thread_id"], llm["prompt"], llm["generation"]) == (
        "u1", "t-42", "What is Trubrics?", "An analytics platform.")
    assert (asked["prompt"], asked["generation"], asked["assistant_id"], asked["input_tokens"]) == (
        "Say hello", "Echo: Say hello", "gpt-4o", 2)
    assert {"chat-completion", "retrieve-docs", "cache-miss", "Score", "plan"} <= set(events)
    assert events["Score"]["properties"]["observation_id"] == llm["span_id"]


def test_the_tracing_guide_langfuse_form_runs_on_the_client_the_environment_configures(tmp_path):
    """As written, as an app of its own (fresh process-wide state) with TRUBRICS_API_KEY set."""
    with LocalServer(tmp_path / "e.sqlite3") as server:
        app = run_app(block("guide/tracing.md", "get_client().track("), server, "env", "TRUBRICS_API_KEY=sk-docs")
        assert app.returncode == 0, app.stderr
        (llm,) = server.store.events(kind="llm", limit=None)
        events = {e["event"]: e for e in server.store.events(kind="event", limit=None)}
    assert (llm["user_id"], llm["thread_id"], llm["prompt"], llm["generation"], llm["assistant_id"]) == (
        "u1", "t-42", "Say hello", "Echo: Say hello", "gpt-4o")
    assert (events["plan"]["user_id"], events["plan"]["properties"]["output"]) == ("u1", ["search", "answer"])
    assert events["Thumbs up"]["user_id"] == "u1"


def transcripts() -> list[tuple[str, str, str]]:
    """(page, command, what the page says it prints) for each ``$ trubrics-otel …`` line shown
    in a ``text`` block of the docs, with the lines up to the next ``$``."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in re.findall(r"^```text\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL):
            for command, output in re.findall(r"^\$ (trubrics-otel .+)\n((?:(?!\$ ).*\n)*)", block, re.MULTILINE):
                found.append((str(page.relative_to(DOCS)), command, output.strip()))
    return found


@pytest.mark.parametrize(("page", "command", "shown"), [pytest.param(*t, id=t[1]) for t in transcripts()])
def test_a_shown_command_prints_what_the_page_shows(page, command, shown, tmp_path, monkeypatch, capsys):
    from trubrics_otel.cli import main

    monkeypatch.chdir(tmp_path)  # a relative --db names nothing here
    with LocalServer(tmp_path / "e.sqlite3") as server:  # where the page says 127.0.0.1:8787
        argv = shlex.split(command.replace("http://127.0.0.1:8787", server.url))[1:]
        try:
            main(argv)
        except SystemExit:
            pass
        out, err = capsys.readouterr()
    assert (out + err).strip() == shown.replace("http://127.0.0.1:8787", server.url), f"{page}: $ {command}"
