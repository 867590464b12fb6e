"""The command that adds an extra to *this* install. trubrics-otel is not on the package index,
so a printed ``pip install 'trubrics-otel[grpc]'`` would fail for everyone who followed the
README; the hint names what this copy was installed from instead (PEP 610's
``direct_url.json``)::

    install_command("grpc")
    # pip install -e '/home/me/trubrics-otel[grpc]'                        from a clone, editable
    # pip install '/home/me/trubrics-otel[grpc]'                           from a clone
    # pip install '/tmp/dist/trubrics_otel-0.1.0-py3-none-any.whl[grpc]'   from a wheel
    # pip install 'trubrics-otel[grpc]'                                    from an index
"""

from __future__ import annotations

import functools
import json
import shlex
from importlib import metadata
from urllib.parse import unquote, urlsplit

DISTRIBUTION = "trubrics-otel"


def _installed() -> metadata.Distribution | None:
    """The copy an installer put there (not a build's .egg-info in the working directory)."""
    return next((d for d in metadata.distributions(name=DISTRIBUTION) if d.read_text("INSTALLER")), None)


@functools.lru_cache(maxsize=1)
def _installed_from() -> tuple[str, str | None, bool]:
    """(the name or path pip was given, a direct reference for the name or None, editable?)
    for this install; the project's name alone when unknown."""
    try:
        text = (installed := _installed()) and installed.read_text("direct_url.json")
        origin = json.loads(text) if text else {}
    except Exception:  # unreadable metadata: the project's name will do
        origin = {}
    url = origin.get("url", "") if isinstance(origin, dict) else ""
    if url.startswith("file://"):
        return unquote(urlsplit(url).path), None, bool(origin.get("dir_info", {}).get("editable"))
    if url and "vcs_info" in origin:  # pip install git+https://…
        return DISTRIBUTION, f"{origin['vcs_info'].get('vcs', 'git')}+{url}", False
    return DISTRIBUTION, None, False


def install_command(extra: str) -> str:
    """``pip install …`` adding ``extra`` to this install, ready to paste."""
    source, reference, editable = _installed_from()
    if reference is not None:  # a direct reference: the extra goes on the name
        return f"pip install {shlex.quote(f'{source}[{extra}] @ {reference}')}"
    return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{source}[{extra}]')}"


def tested_instrumentation() -> str:
    """``pip install …`` for the OpenAI instrumentation at the versions the tests run (the
    ``examples`` extra, less the app's own ``openai``): the newest openai-v2 with the newest
    opentelemetry-util-genai does not import."""
    try:
        requires = (installed := _installed()) and installed.requires or []
    except Exception:
        requires = []
    tested = [r.split(";")[0].strip() for r in requires if 'extra == "examples"' in r]
    pins = [r for r in tested if not r.startswith((DISTRIBUTION, "openai="))]
    return "pip install " + " ".join(shlex.quote(r) for r in pins or ["opentelemetry-instrumentation-openai-v2"])
