"""Every example runs as its docstring says, installed as its docstring says, from this checkout.

Each example's docstring starts with an install line for a fresh clone. Here that line runs
as written, from the repository's root, into a fresh virtual environment (``.venv`` becomes a
temporary one, so the checkout's own is never touched), and the example then runs with that
environment's Python, against a local OpenAI-compatible server and a local Trubrics endpoint.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_quickstart
from fake_openai import FakeOpenAI
from trubrics_endpoint import TrubricsEndpoint

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
INSTALL = re.compile(r"^\s*(python3 -m venv \.venv && \.venv/bin/pip install -q -e (\S+))", re.MULTILINE)


def install_line(example: Path) -> tuple[str, str]:
    """The docstring's install command and the requirement it installs (``.`` or ``'.[x]'``)."""
    match = INSTALL.search(ast.get_docstring(ast.parse(example.read_text())) or "")
    assert match, f"{example.name}: no install line for a fresh clone in its docstring"
    return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def venvs(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """One fresh environment per distinct install line, made by running that line."""
    made: dict[str, Path] = {}
    for example in EXAMPLES:
        command, requirement = install_line(example)
        if requirement in made:
            continue
        venv = tmp_path_factory.mktemp("venv") / "v"
        done = subprocess.run(command.replace(".venv", str(venv)), shell=True, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        made[requirement] = venv
    yield made


def _run(venv: Path, argv: list[str], **env_extra: str | None) -> subprocess.CompletedProcess[str]:
    """``argv`` in ``venv`` with this test run's spool, and ``env_extra`` (None: unset)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "TRUBRICS_", "OPENAI_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["TRUBRICS_SPOOL"] = os.environ["TRUBRICS_SPOOL"]
    env.update(env_extra)
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_every_example_has_an_install_line():
    assert {e.name for e in EXAMPLES} >= {"quickstart.py", "tracing.py", "existing_tracing.py",
                                          "zero_code_app.py"}
    for example in EXAMPLES:
        install_line(example)


def test_quickstart(venvs, tmp_path):
    """As a newcomer runs it (no spool setting): its output, and nothing left behind in their
    cache (its server's port is new each run: a spool per run would pile up there)."""
    done = _run(venvs[install_line(ROOT / "examples/quickstart.py")[1]],
                ["python", "examples/quickstart.py"], TRUBRICS_SPOOL=None, XDG_CACHE_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "== 7 LLM events ==" in done.stdout and "--keep-serving" in done.stdout
    assert list(tmp_path.rglob("*")) == []


def test_quickstart_feedback_is_what_the_server_counts(capsys):
    """In-process (no venv): the quickstart's thumbs are feedback to the server, not mere events."""
    assert load_quickstart().main([]) == 0
    assert "== 1 feedback: 1 positive, 0 negative, on 1 of 2 threads ==" in capsys.readouterr().out


def test_tracing(venvs):
    done = _run(venvs[install_line(ROOT / "examples/tracing.py")[1]], ["python", "examples/tracing.py"])
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\d+ events received:", done.stdout, re.MULTILINE), done.stdout


def test_tracing_into_a_running_serve_as_its_docstring_says(tmp_path):
    """The docstring's second command, its 127.0.0.1:8787 a LocalServer here (the checkout's
    Python: the install is test_tracing's)."""
    from trubrics_otel.server import LocalServer

    docstring = ast.get_docstring(ast.parse((ROOT / "examples/tracing.py").read_text())) or ""
    (line,) = [x for x in docstring.splitlines() if "--host" in x]
    with LocalServer(tmp_path / "e.sqlite3") as server:
        argv = shlex.split(line.split("#")[0].replace("http://127.0.0.1:8787", server.url))
        done = _run(Path(sys.executable).parent.parent, [sys.executable, *argv[1:]])
        stored = {e["event"] for e in server.store.events(limit=None)}
    assert done.returncode == 0 and done.stdout.strip().endswith("0 undelivered"), done
    assert {"chat-completion", "retrieve", "cache-miss"} <= stored, stored


@pytest.mark.parametrize("example, launcher", [
    ("existing_tracing.py", []),
    ("zero_code_app.py", ["opentelemetry-instrument"]),
])
def test_openai_examples(venvs, example, launcher):
    venv = venvs[install_line(ROOT / "examples" / example)[1]]
    with FakeOpenAI() as fake, TrubricsEndpoint(api_key="sk-example") as endpoint:
        # under opentelemetry-instrument the distro turns content capture on by itself (this venv
        # holds openai-v2 alone: nothing else would capture the prompt)
        content = {} if launcher else {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}
        done = _run(venv, [*launcher, "python", f"examples/{example}"],
                    OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=fake.url, TRUBRICS_API_KEY="sk-example",
                    TRUBRICS_HOST=endpoint.url, OTEL_TRACES_EXPORTER="trubrics", **content)
        assert done.returncode == 0, done.stderr
        events = endpoint.events("publish_llm_events")
    assert "Echo: Say hello" in done.stdout
    assert [(e["user_id"], e["thread_id"], e["prompt"], e["generation"]) for e in events] == [
        ("u1", "t-42", "Say hello", "Echo: Say hello")]


README_APP = """
import openai
client = openai.OpenAI(max_retries=0)   # OPENAI_BASE_URL: the local stand-in
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
"""


def test_the_readme_zero_code_command_exactly_as_written(venvs, tmp_path):
    """No OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER: the command as the README prints it."""
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^OTEL_TRACES_EXPORTER=trubrics .*opentelemetry-instrument python app\.py$",
                            readme, re.MULTILINE)
    (tmp_path / "app.py").write_text(README_APP)
    venv = venvs[install_line(ROOT / "examples/zero_code_app.py")[1]]
    with FakeOpenAI() as fake, TrubricsEndpoint(api_key="sk-readme") as endpoint:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTEL_", "TRUBRICS_", "OPENAI_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OPENAI_API_KEY="sk-fake",
                   OPENAI_BASE_URL=fake.url, TRUBRICS_HOST=endpoint.url,
                   TRUBRICS_SPOOL=os.environ["TRUBRICS_SPOOL"])
        # the command's own key and host (the docs' local serve) point at this endpoint instead
        command = re.sub(r"\bTRUBRICS_HOST=\S+", f"TRUBRICS_HOST={endpoint.url}", command)
        command = re.sub(r"\bTRUBRICS_API_KEY=\S+", "TRUBRICS_API_KEY=sk-readme", command)
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr
        events = endpoint.events("publish_llm_events")
    assert "not found" not in done.stderr, done.stderr
    # one library, one event, with the content the distro turned capture on for
    assert [(e["assistant_id"], e["prompt"], e["generation"]) for e in events] == [
        ("gpt-4o-mini-2024-07-18", "Say hello", "Echo: Say hello")]
