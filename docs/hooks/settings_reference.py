"""MkDocs hook: the configuration reference, generated from ``trubrics_otel/settings.py``.

Every ``Variable`` that settings.py defines is rendered with its default, the rule its value
is parsed by (the parser's docstring) and its ``doc``; the page holds only the marker
``<!-- settings-reference -->``, so a new setting appears (or fails the docs test) by itself.

    from docs.hooks.settings_reference import render   # or load it by path, as tests/test_docs.py does
    print(render())
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- settings-reference -->"


def _code(text: str) -> str:
    """reStructuredText's ``literal`` → Markdown's `literal`."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"`{value}` ({value >> 20} MiB)"
    if isinstance(value, tuple) and len(value) == 2:
        return f"`{value[0]}:{value[1]}`"
    return f"`{value}`"


def _rules() -> str:
    """The rules every variable follows: the part of settings.py's docstring after its example."""
    from trubrics_otel import settings

    text = settings.__doc__ or ""
    return _code(text[text.index("An argument given"):].strip())


def render() -> str:
    """The reference as Markdown: the shared rules, then one row per variable."""
    from trubrics_otel import settings

    rows = ["| variable | default | accepts | what it sets |", "|---|---|---|---|"]
    for variable in settings.VARIABLES:
        accepts = _code((variable.parse.__doc__ or variable.parse.__name__).strip().splitlines()[0])
        doc = variable.doc + (" *Secret.*" if variable.secret else "")
        rows.append(f"| `{variable.name}` | {_default(variable.default)} | {accepts} | {doc} |")
    return _rules() + "\n\n" + "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
