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


def section(variable: Any) -> str:
    """One variable: its heading, what it sets, its default and what it accepts."""
    accepts = _code((variable.parse.__doc__ or variable.parse.__name__).strip().splitlines()[0])
    lines = [f"### `{variable.name}`", "", variable.doc, "",
             f"- **Default:** {_default(variable.default)}", f"- **Accepts:** {accepts}"]
    if variable.secret:
        lines.append("- **Secret:** its value is never logged, not even when it is refused.")
    return "\n".join(lines)


def render() -> str:
    """The reference as Markdown: the shared rules, a summary table, then one section per variable."""
    from trubrics_otel import settings

    rows = ["| variable | default |", "|---|---|"]
    rows += [f"| [`{v.name}`](#{v.name.lower()}) | {_default(v.default)} |" for v in settings.VARIABLES]
    sections = [section(v) for v in settings.VARIABLES]
    return "\n\n".join([_rules(), "\n".join(rows), "## Variables", *sections]) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
