"""``trubrics-otel`` command line: one subcommand per job.

    trubrics-otel serve      # local Trubrics-compatible server (SQLite + page)
    trubrics-otel bridge     # OTLP/HTTP receiver that forwards Trubrics batches
    trubrics-otel events | sessions | threads | users | stats   # the local server's store

Each subcommand lives in the module that owns the job; this file only wires them up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# subcommand -> module (or ``module:object``) defining ``add_arguments(parser)`` and
# ``run(args) -> int``
SUBCOMMANDS: dict[str, str] = {
    "bridge": "trubrics_otel.receive.bridge",
    "serve": "trubrics_otel.server.cli:serve",
    "events": "trubrics_otel.server.cli:events",
    "sessions": "trubrics_otel.server.cli:sessions",
    "threads": "trubrics_otel.server.cli:threads",
    "users": "trubrics_otel.server.cli:users",
    "stats": "trubrics_otel.server.stats_cli",
}


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trubrics-otel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, target in SUBCOMMANDS.items():
        command = _load(target)
        help_text = (command.__doc__ or "").strip().splitlines()
        command.add_arguments(sub.add_parser(name, help=help_text[0] if help_text else None))
    args = parser.parse_args(argv)
    return int(_load(SUBCOMMANDS[args.command]).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
