"""``trubrics-otel`` command line: one subcommand per job.

    trubrics-otel serve      # local Trubrics-compatible server (SQLite + page)
    trubrics-otel bridge     # OTLP/HTTP receiver that forwards Trubrics batches
    trubrics-otel events | sessions | threads   # query the local server's store

Each subcommand lives in the module that owns the job; this file only wires them up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> module defining ``add_arguments(parser)`` and ``run(args) -> int``
SUBCOMMANDS: dict[str, str] = {
    "bridge": "trubrics_otel.bridge",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trubrics-otel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args(argv)
    return int(importlib.import_module(SUBCOMMANDS[args.command]).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
