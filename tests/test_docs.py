"""The README stays a front page and the documentation site stays true to the code.

* the README is at most ~200 lines, and its first ``bash`` block is exactly the two commands
  (the quickstart, the tests) that ``.ci/run`` reads;
* no page cites internal issue numbers;
* every relative link in the README and ``docs/`` points at a file that exists (and the
  README's own ``#anchors`` at one of its headings);
* the configuration reference, generated from ``trubrics_otel/settings.py`` by
  ``docs/hooks/settings_reference.py``, lists every variable with a description, and the
  command-line reference (``docs/hooks/cli_reference.py``) every subcommand;
* ``mkdocs build --strict`` passes, where mkdocs is installed (the ``docs`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trubrics_otel import settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
MAX_README_LINES = 200
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python examples/quickstart.py",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q",
]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
ISSUE = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where a link is not a link."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def _load_hook(name: str = "settings_reference"):
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_is_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_first_bash_block_is_exactly_the_two_commands():
    text = README.read_text()
    first = re.search(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert first, "README.md has no ```bash block"
    assert first.group(1).splitlines() == FIRST_COMMANDS


def test_ci_reads_the_same_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'test_command="{FIRST_COMMANDS[1]}"' in ci


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_internal_issue_numbers(page):
    found = ISSUE.findall(page.read_text())
    assert not found, f"{page.relative_to(ROOT)} cites internal issue numbers: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_readme_anchors_name_its_headings():
    text = README.read_text()
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", FENCE.sub("", text), re.MULTILINE)}
    anchors = [t[1:] for t in LINK.findall(_prose(text)) if t.startswith("#")]
    assert anchors, "the README's contents line is gone"
    assert not [a for a in anchors if a not in headings], headings


def test_configuration_reference_lists_every_setting():
    hook = _load_hook()
    assert hook.MARKER in (DOCS / "reference" / "configuration.md").read_text()
    reference = hook.render()
    for variable in settings.VARIABLES:
        assert variable.doc.strip(), f"{variable.name} has no doc= in trubrics_otel/settings.py"
        assert variable.parse.__doc__, f"{variable.name}'s parser {variable.parse.__name__} has no docstring"
        assert f"### `{variable.name}`\n\n{variable.doc}\n" in reference, \
            f"{variable.name} is missing from the configuration reference"
        assert f"| [`{variable.name}`](#{variable.name.lower()}) |" in reference


def test_cli_reference_lists_every_command():
    from trubrics_otel import cli

    hook = _load_hook("cli_reference")
    assert hook.MARKER in (DOCS / "reference" / "cli.md").read_text()
    reference = hook.render()
    for name in cli.SUBCOMMANDS:
        assert f"## `trubrics-otel {name}`\n\n```text\nusage: trubrics-otel {name}" in reference


def test_configuration_reference_follows_settings(monkeypatch):
    """A setting added to settings.py appears in the reference without touching the docs."""
    extra = settings.Variable("TRUBRICS_DOCS_PROBE", settings.boolean, True, doc="A probe.")
    monkeypatch.setattr(settings, "VARIABLES", (*settings.VARIABLES, extra))
    reference = _load_hook().render()
    assert "### `TRUBRICS_DOCS_PROBE`\n\nA probe.\n\n- **Default:** `true`\n- **Accepts:** A boolean" in reference


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("mkdocs", "material", "mkdocstrings")),
                    reason="the docs extra is not installed")
def test_mkdocs_build_strict(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TRUBRICS_API_KEY" in (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text()
