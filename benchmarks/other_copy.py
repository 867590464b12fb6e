"""Run another copy of the package (a baseline checkout, ``--compare DIR``) in place of this
worktree's editable install: the benchmarks' one way to do it.

::

    from other_copy import use, command
    use("/tmp/base")                       # this process, before it imports trubrics_otel
    subprocess.run([*command("/tmp/base", script=__file__), "--inner", ...])     # a script
    subprocess.run([*command("/tmp/base", module="trubrics_otel"), "serve", ...])  # python -m

An editable install puts a finder on ``sys.meta_path``, consulted before ``sys.path``: a
directory first on ``sys.path`` (or on ``PYTHONPATH``) alone would still import this
worktree's package. ``use`` sets that finder aside, then puts ``DIR`` first.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)


def use(package: str | None) -> None:
    """Import ``trubrics_otel`` from ``package`` (the directory holding ``trubrics_otel/``) from
    now on in this process; nothing when it is None or empty (this worktree's own)."""
    if package:
        sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder)]
        sys.path.insert(0, package)


def command(package: str, *, script: str | None = None, module: str | None = None) -> list[str]:
    """``[python, -c, code]`` that runs ``script`` (as ``python script``) or ``module`` (as
    ``python -m module``) on ``package``'s copy; the caller appends the arguments."""
    run = (f"sys.argv[0] = {script!r}; runpy.run_path({script!r}, run_name='__main__')" if script else
           f"sys.argv[0] = {module!r}; runpy.run_module({module!r}, run_name='__main__')")
    return [sys.executable, "-c", f"import runpy, sys; sys.path.insert(0, {HERE!r}); from other_copy import use; "
                                  f"use({package!r}); {run}"]
