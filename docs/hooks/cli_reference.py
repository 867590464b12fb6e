"""MkDocs hook: the command-line reference, generated from ``trubrics-otel <command> --help``.

The page holds only the marker ``<!-- cli-reference -->``; each subcommand the CLI registers
(``trubrics_otel.cli.SUBCOMMANDS``) is rendered with its own ``--help``, so a new command or
flag appears by itself.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

MARKER = "<!-- cli-reference -->"


def _help(argv: list[str]) -> str:
    from trubrics_otel import cli

    out = io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "96"  # argparse wraps to the terminal; the page has its own width
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            cli.main([*argv, "--help"])
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return out.getvalue().replace(str(Path.home()), "~").rstrip()


def render() -> str:
    """Every subcommand's ``--help``, in the order the CLI lists them."""
    from trubrics_otel import cli

    parts = ["```text", _help([]), "```"]
    for name in cli.SUBCOMMANDS:
        parts += ["", f"## `trubrics-otel {name}`", "", "```text", _help([name]), "```"]
    return "\n".join(parts) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
