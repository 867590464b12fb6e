"""What the docs tell a newcomer to type names only things that exist.

Each check reads the README, every page of ``docs/``, ``collector-config/README.md`` and the
examples' docstrings, and holds one kind of name to the code it names:

* every ``trubrics-otel <command> … --flag`` written as code (a fenced block, or inline code
  such as ```serve --api-key```) is a flag of that command's parser (what ``--help`` shows);
* every ``--flag`` of ``python benchmarks/x.py`` or ``examples/x.py`` is defined in that script;
* every ``TRUBRICS_*`` variable is one ``trubrics_otel/settings.py`` reads;
* every extra in an install command (``'.[grpc]'``, ``trubrics-otel[cost]``) is one the package
  declares, and the Getting started table lists every extra a user installs;
* every repository path (``tests/…``, ``trubrics_otel/…``, ``server/….py``, ``examples/…``) and
  every test named (``tests/x.py::test_y``, or ``::test_z`` after it) exists;
* every ``python`` block compiles, and its imports from ``trubrics_otel`` and ``opentelemetry``
  resolve against the installed package (the blocks that run are run by
  ``tests/test_docs_examples.py``).

All static: the whole file runs in about a second.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest

from trubrics_otel import cli, settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "collector-config" / "README.md",
         *sorted((ROOT / "examples").glob("*.py"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
ONLY_FOR_DEVELOPERS = {"test", "docs", "examples", "fast"}  # not in Getting started's table of extras


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _code(text: str) -> list[str]:
    """The lines of every fenced block (a ``\\`` continuation joined) and every inline code span."""
    lines = []
    for block in FENCE.finditer(text):
        lines += block.group(2).replace("\\\n", " ").splitlines()
    lines += re.findall(r"`([^`\n]+)`", FENCE.sub("", text))
    return lines


@functools.lru_cache(maxsize=None)
def _parsers() -> dict[str, set[str]]:
    _, subparsers = cli.build_parser()
    return {name: {o for action in p._actions for o in action.option_strings} for name, p in subparsers.items()}


def documented_flags(text: str, commands: set[str]) -> list[tuple[str, str, str]]:
    """(command, flag, the line) for each ``--flag`` written after ``trubrics-otel <command>``
    or at the start of inline code naming a command, up to a pipe, comment or other code."""
    names = "|".join(sorted(commands, key=len, reverse=True))
    start = re.compile(rf"(?:trubrics-otel\s+|python -m trubrics_otel\s+|^)({names})\b([^|;#&`]*)")
    found = []
    for line in _code(text):
        for match in start.finditer(line.strip()):
            command, rest = match.groups()
            found += [(command, flag, line.strip()) for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest)]
    return found


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_documented_flag_exists(page):
    parsers = _parsers()
    wrong = [(command, flag, line) for command, flag, line in documented_flags(page.read_text(), set(parsers))
             if flag not in parsers[command] | {"--help", "--version"}]
    assert not wrong, f"{_name(page)} names flags these commands do not have: {wrong}"


def test_the_flag_check_reads_what_a_newcomer_types():
    """The matcher itself: a fenced command, a continuation line, inline code, a pipe."""
    text = ("```bash\ntrubrics-otel serve --port 0 \\\n    --no-such-flag   # --not-this\n"
            "trubrics-otel events --json | jq --raw-output\n```\nThen `bridge --listen x` runs.\n")
    assert documented_flags(text, {"serve", "events", "bridge"}) == [
        ("serve", "--port", "trubrics-otel serve --port 0      --no-such-flag   # --not-this"),
        ("serve", "--no-such-flag", "trubrics-otel serve --port 0      --no-such-flag   # --not-this"),
        ("events", "--json", "trubrics-otel events --json | jq --raw-output"),
        ("bridge", "--listen", "bridge --listen x"),
    ]


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_flag_of_a_script_named_is_in_the_script(page):
    """``python benchmarks/x.py --flag`` / ``examples/x.py --flag``: the script defines the flag."""
    wrong = []
    for line in _code(page.read_text()):
        for script, rest in re.findall(r"((?:benchmarks|examples)/\w+\.py)([^|;#&`]*)", line):
            source = (ROOT / script).read_text() if (ROOT / script).exists() else ""
            wrong += [(script, flag) for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest)
                      if f'"{flag}"' not in source and f"'{flag}'" not in source]
    assert not wrong, f"{_name(page)} names flags these scripts do not define: {wrong}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_trubrics_variable_named_exists(page):
    known = {variable.name for variable in settings.VARIABLES}
    named = set(re.findall(r"\bTRUBRICS_[A-Z0-9_]*[A-Z0-9]", page.read_text()))
    assert named <= known, f"{_name(page)} names variables settings.py does not read: {sorted(named - known)}"


def _declared_extras() -> set[str]:
    return set(importlib.metadata.metadata("trubrics-otel").get_all("Provides-Extra") or [])


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_extra_in_an_install_command_exists(page):
    named = set()
    for group in re.findall(r"(?:trubrics-otel|\.|\.whl|>)\[([\w,\s-]+)\]", page.read_text()):
        named |= {extra.strip() for extra in group.split(",")}
    assert named <= _declared_extras(), f"{_name(page)} installs extras the package lacks: {named - _declared_extras()}"


def test_getting_started_lists_every_extra():
    rows = set(re.findall(r"^\| `([\w-]+)` \|", (ROOT / "docs" / "getting-started.md").read_text(), re.MULTILINE))
    assert _declared_extras() - ONLY_FOR_DEVELOPERS <= rows, _declared_extras() - rows


PATH = re.compile(r"(?<![\w./-])((?:trubrics_otel|tests|benchmarks|examples|collector-config|\.ci)/[\w./-]*\w"
                  r"|(?:server|translate|deliver|capture|receive)/[\w/]*\.py)")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_path_and_test_named_exists(page):
    text = page.read_text()
    missing = []
    for path in set(PATH.findall(text)):
        if not ((ROOT / path).exists() or (ROOT / "trubrics_otel" / path).exists()):
            missing.append(path)
    last_file = None
    for match in re.finditer(r"(tests/[\w/]+\.py)(?:::(test_\w+))?|(?<![\w.])::(test_\w+)", text):
        test_file, name = match.group(1) or last_file, match.group(2) or match.group(3)
        last_file = match.group(1) or last_file
        if name and test_file and (ROOT / test_file).exists() and \
                not re.search(rf"^def {name}\b", (ROOT / test_file).read_text(), re.MULTILINE):
            missing.append(f"{test_file}::{name}")
    assert not missing, f"{_name(page)} names what does not exist: {sorted(missing)}"


def _python_blocks(page: Path) -> list[str]:
    return [code for lang, code in FENCE.findall(page.read_text()) if lang == "python"]


@pytest.mark.parametrize("page", [p for p in PAGES if p.suffix == ".md" and _python_blocks(p)], ids=_name)
def test_python_blocks_compile_and_import_what_exists(page):
    for code in _python_blocks(page):
        tree = ast.parse(code, f"{_name(page)} block")  # a SyntaxError names the page
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules, names = [node.module], [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                modules, names = [a.name for a in node.names], []
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top != "trubrics_otel" and not (top == "opentelemetry" and _installed(module)):
                    continue  # a library the page asks the reader to install
                imported = importlib.import_module(module)
                absent = [n for n in names if not hasattr(imported, n)
                          and importlib.util.find_spec(f"{module}.{n}") is None]
                assert not absent, f"{_name(page)}: from {module} import {absent}: no such name"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False
