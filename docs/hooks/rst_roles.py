"""MkDocs hook: the docstrings' Sphinx roles (``:mod:`~a.b```) shown as plain code (``b``).

The package's docstrings are written for Sphinx and ``help()``; mkdocstrings keeps the role's
name in front of the code (``:mod:<code>…</code>``). This drops the role and, as Sphinx does
for ``~``, keeps only the last dotted part.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, page: Any, **_: Any) -> str:
    return ROLE.sub(_plain, html)
