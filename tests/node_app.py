"""Run the real Node apps under ``tests/node/`` from Python: install once, then one case a process.

``tests/node/vercel-ai/app.mjs`` is a real Vercel AI SDK app exporting its spans over OTLP/HTTP
(protobuf) with ``@opentelemetry/sdk-node``; ``tests/node/otlp-sender/sender.mjs`` sends plain
spans through the Node OTLP exporters. Use them live against any OTLP receiver (the bridge,
the local server, ``tests/otlp_receiver.py``)::

    from fake_openai_extended import ExtendedFakeOpenAI
    from node_app import VERCEL_AI_APP, ensure_npm_ci, run_vercel_ai_app

    ensure_npm_ci(VERCEL_AI_APP)           # npm ci, only when the lockfile changed
    with ExtendedFakeOpenAI() as openai_server:
        outcome = run_vercel_ai_app("tool_call", otlp_url=f"{bridge}/v1/traces",
                                    openai_url=openai_server.url)
    outcome["text"]                        # what the app got back (its one JSON line)
    outcome["export"]                      # {"exported": 4, "failed": 0, "errors": []}

The app exits only after its exporter has flushed, so the spans were sent (and answered) by
the time ``run_vercel_ai_app`` returns. Needs ``node`` (18.19+ or >= 20.6, as OpenTelemetry
JS 0.223 does) and ``npm`` on ``PATH``. ``python3 tests/node_app.py`` installs every app's
packages (stdlib only, for CI before any venv exists).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"
VERCEL_AI_APP = NODE_DIR / "vercel-ai"
OTLP_SENDER = NODE_DIR / "otlp-sender"
NODE_APPS = (VERCEL_AI_APP, OTLP_SENDER)
VERCEL_AI_CASES = (
    "chat",
    "stream",
    "error",
    "error_retries",
    "tool_call",
    "stream_tool_call",
    "object",
    "nested",
)
_STAMP = ".trubrics-npm-ci.sha256"


class NodeAppError(RuntimeError):
    """Node or npm is missing, the install failed, or the app did not finish."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NodeAppError(
            f"`{name}` is not on PATH: the Node.js tests need Node.js 18.19+ or >= 20.6 and npm "
            "(Debian: apt-get install nodejs npm)"
        )
    return path


def ensure_npm_ci(package_dir: Path, *, timeout: float = 600) -> None:
    """``npm ci`` in ``package_dir`` unless it already ran for this exact lockfile.

    Idempotent and safe across processes (a file lock): the hash of ``package-lock.json`` is
    stamped into ``node_modules`` after a successful install. Raises :class:`NodeAppError`
    when npm is missing or the install fails, with npm's output.
    """
    lockfile = package_dir / "package-lock.json"
    if not lockfile.is_file():
        raise NodeAppError(f"{lockfile} is missing: `npm install` there and commit the lockfile")
    wanted = hashlib.sha256(lockfile.read_bytes()).hexdigest()
    stamp = package_dir / "node_modules" / _STAMP
    with open(package_dir / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == wanted:
            return
        command = [_tool("npm"), "ci", "--prefer-offline", "--no-audit", "--no-fund"]
        done = subprocess.run(
            command, cwd=package_dir, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise NodeAppError(
                f"`{' '.join(command)}` failed in {package_dir} ({done.returncode}):\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        stamp.write_text(wanted + "\n")


def run_node(
    script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``node script args...`` in the script's directory; raise unless it exits 0."""
    command = [_tool("node"), script.name, *args]
    done = subprocess.run(
        command,
        cwd=script.parent,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise NodeAppError(
            f"`node {' '.join([script.name, *args])}` exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def run_vercel_ai_app(
    case: str,
    *,
    otlp_url: str,
    openai_url: str,
    function_id: str | None = None,
    sequential_ids: bool = False,
    check_export: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    app: Path = VERCEL_AI_APP,
) -> dict[str, Any]:
    """Run one case of ``tests/node/vercel-ai/app.mjs``; return the JSON line it printed.

    ``app`` picks another copy of the app (``tests/node/vercel-ai-7``: ``ai`` 7, for recording).

    ``otlp_url`` is the full traces URL (``.../v1/traces``): the exporter uses it verbatim.
    ``sequential_ids`` makes trace / span ids 1, 2, ... (fixtures diff cleanly between runs).
    ``check_export`` raises :class:`NodeAppError` when the OTLP receiver did not accept every
    span (the app itself only reports it, in ``outcome["export"]``: ``exported``, ``failed``,
    ``errors``); pass ``False`` to assert on a refusal.
    ``env`` adds variables for the Node process, e.g. ``OTEL_EXPORTER_OTLP_HEADERS`` for an
    ``x-api-key`` or ``OTEL_EXPORTER_OTLP_COMPRESSION=gzip``.
    """
    if case not in VERCEL_AI_CASES:
        raise ValueError(f"unknown case {case!r}: one of {VERCEL_AI_CASES}")
    args = [case, "--otlp-url", otlp_url, "--openai-url", openai_url]
    if function_id is not None:
        args += ["--function-id", function_id]
    if sequential_ids:
        args.append("--sequential-ids")
    done = run_node(app / "app.mjs", *args, env=env, timeout=timeout)
    return _reported(done, f"{case!r} to {otlp_url}", check_export)


def run_otlp_sender(
    protocol: str,
    url: str,
    count: int,
    *,
    check_export: bool = True,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send ``count`` spans with ``tests/node/otlp-sender/sender.mjs`` (``proto`` or ``json``).

    Returns the JSON line it printed: the protocol, the URL, the spans it sent (name, trace /
    span id, whether it is a GenAI chat span) and ``export``; ``check_export`` as for
    :func:`run_vercel_ai_app`.
    """
    done = run_node(OTLP_SENDER / "sender.mjs", protocol, url, str(count), env=env)
    return _reported(done, f"{count} spans as {protocol} to {url}", check_export)


def _reported(
    done: subprocess.CompletedProcess[str], what: str, check_export: bool
) -> dict[str, Any]:
    """The app's last stdout line; raises when ``check_export`` and spans were refused."""
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    export = outcome["export"]
    if check_export and (export["failed"] or export["errors"]):
        raise NodeAppError(f"the OTLP receiver refused spans sending {what}: {export}")
    return outcome


if __name__ == "__main__":
    for app in NODE_APPS:
        ensure_npm_ci(app)
        print(f"Node packages ready in {app}")
