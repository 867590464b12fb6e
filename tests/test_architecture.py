"""The package's shape: wings by the stage a span is in, imports pointing down, no circles.

``capture`` → ``deliver`` → ``translate`` → ``settings`` / ``semconv`` / ``logs``, and
``server`` → ``receive`` → ``deliver`` / ``translate``. ``translate`` is pure: no sockets,
files, processes or threads. Read from the source with ``ast``, so a new import that breaks
the layering fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trubrics_otel"
BASE = {"settings", "semconv", "logs", "cli_args", "extras"}
MAY_IMPORT = {  # wing -> wings it may import (besides itself and BASE)
    "translate": set(),
    "deliver": {"translate"},
    "capture": {"deliver", "translate"},
    "receive": {"deliver", "translate"},
    "server": {"receive", "deliver", "translate"},
}
IMPURE = {"os", "socket", "subprocess", "mmap", "requests", "http", "urllib", "sqlite3", "shutil", "tempfile"}
MAX_LINES = 450  # "about 400"


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }


def _imports(path: Path, module: str) -> set[str]:
    """Modules imported anywhere in the file except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
        and getattr(stmt.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(stmt)
    }
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:  # ``from pkg import module`` needs the module, not pkg
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULE_NAMES else base)
    return found


MODULES = _modules()
MODULE_NAMES = set(MODULES)
GRAPH = {m: {i for i in _imports(p, m) if i in MODULES and i != m} for m, p in MODULES.items()}


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    wing = _wing(module)
    if wing not in MAY_IMPORT:
        return  # the top: __init__, cli, __main__ wire everything together
    allowed = MAY_IMPORT[wing] | BASE | {wing}
    wrong = sorted(i for i in GRAPH[module] if _wing(i) and _wing(i) not in allowed)
    assert not wrong, f"{module} ({wing}) must not import {wrong}"


def test_base_modules_import_no_wing():
    for name in BASE:
        module = f"trubrics_otel.{name}"
        assert not {i for i in GRAPH[module] if _wing(i) not in BASE}, module


def test_no_import_circle():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in GRAPH[module]:
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target] if target in path else [module, target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _wing(m) == "translate"))
def test_translate_is_pure(module):
    path = MODULES[module]
    imported = {name.split(".")[0] for name in _imports(path, module)}
    assert not imported & IMPURE, f"{module} imports {imported & IMPURE}"
    source = path.read_text()
    for forbidden in ("threading.Thread(", "open(", "time.time(", "time.monotonic("):
        assert forbidden not in source, f"{module} uses {forbidden}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_a_house_of_its_own(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by job"


STORE_MAY_NOT_IMPORT = ("trubrics_otel.server.analytics", "trubrics_otel.server.app", "trubrics_otel.server.read_api",
                        "trubrics_otel.server.cli")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("trubrics_otel.server.store")))
def test_store_points_down(module):
    """The store is the server's floor: analytics and the server wire into it (``store.Hook``),
    never the other way."""
    wrong = sorted(i for i in GRAPH[module] if i.startswith(STORE_MAY_NOT_IMPORT))
    assert not wrong, f"{module} must not import {wrong}"
