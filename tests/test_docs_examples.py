"""The Python examples a newcomer copies from the docs run as written and do what the page says.

Each block runs against a real local server (``LocalServer`` on 127.0.0.1); only the host is
pointed at it (``http://127.0.0.1:8787`` in the text, ``TRUBRICS_HOST`` where the text leaves
the host to the environment). A ``$ trubrics-otel …`` line shown in a ``text`` block prints
exactly the lines the page shows under it.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
from pathlib import Path

import pytest
import requests

from trubrics_otel.server import LocalServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLIENT = 'from trubrics_otel import Trubrics\ntrubrics = Trubrics(api_key="...")\n'
PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[str]:
    return PYTHON.findall((DOCS / page).read_text())


README = DOCS.parent / "README.md"


def run_block(code: str, server: LocalServer) -> None:
    code = code.replace("http://127.0.0.1:8787", server.url)
    namespace: dict = {}
    exec(compile(code, "<docs>", "exec"), namespace)  # noqa: S102 - the docs' own example
    if "trubrics" in namespace:
        namespace["trubrics"].close()


def feedback_totals(server: LocalServer) -> dict:
    return requests.get(f"{server.url}/api/feedback", timeout=10).json()["totals"]


@pytest.mark.parametrize("page", [README, DOCS / "getting-started.md"], ids=["README", "getting-started"])
def test_the_front_example_sends_events_cost_and_feedback_to_a_local_serve(tmp_path, page):
    (code,) = [b for b in PYTHON.findall(page.read_text()) if "Trubrics(" in b]
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
    first, *rest = blocks("guide/tracking.md")
    feedback = [b for b in rest if "$feedback" in b]
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
    (code,) = [b for b in blocks("guide/security.md") if "mask=" in b]
    with LocalServer(tmp_path / "e.sqlite3") as server:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        run_block(code + 'trubrics.track_llm(user_id="u1", prompt="mail me at ann@example.com", generation="ok",'
                  ' properties={"contact": ["bob@example.org"]})\n', server)
        (llm,) = server.store.events(kind="llm", limit=None)
    assert llm["prompt"] == "mail me at <email>" and llm["properties"]["contact"] == ["<email>"]


def test_the_tracing_guide_example_runs_and_every_observation_arrives(tmp_path, monkeypatch):
    (code,) = blocks("guide/tracing.md")
    with LocalServer(tmp_path / "e.sqlite3") as server:
        monkeypatch.setenv("TRUBRICS_HOST", server.url)
        run_block(code, server)
        (llm,) = server.store.events(kind="llm", limit=None)
        events = {e["event"]: e for e in server.store.events(kind="event", limit=None)}
    assert (llm["user_id"], llm["thread_id"], llm["prompt"], llm["generation"]) == (
        "u1", "t-42", "What is Trubrics?", "An analytics platform.")
    assert {"chat-completion", "retrieve-docs", "cache-miss", "Score", "plan"} <= set(events)
    assert events["Score"]["properties"]["observation_id"] == llm["span_id"]


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
