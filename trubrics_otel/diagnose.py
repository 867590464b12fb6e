"""``trubrics-otel doctor``: what is wrong with this setup, and how to fix it.

::

    trubrics-otel doctor                 # one line per check; exit 0 healthy, 1 with problems
    trubrics-otel doctor --json          # [{"check": ..., "status": "ok"|"problem"|"note", ...}]

    import trubrics_otel
    trubrics_otel.doctor()               # in the app (stderr): also checks its global TracerProvider

Checks: the API key is set (never shown), the host is an http(s) URL that may be given the key,
the host answers (even with no key set) and accepts the key, the spool directory is writable and what waits in it
(for this host and key, and for others: where, and how to send them here), (from the command
line) the store ``TRUBRICS_DB_URL`` or ``TRUBRICS_DB`` names exists,
which LLM instrumentations are installed (do they import, will they capture prompts and
generations), which extras are installed, the Python and OpenTelemetry versions, and (in-app)
whether the global TracerProvider is an SDK one.

The host probe POSTs an empty JSON array to ``<host>/publish_events``: no event can come of it.
The ingestion API checks ``x-api-key`` before the body (a FastAPI dependency), so 401/403 means
the key is refused, and 2xx or 422 (an API that wants at least one event) means it was accepted.
A HEAD or OPTIONS would only say that something listens: it never looks at the key.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trubrics_otel import cli_args, settings
from trubrics_otel.extras import install_command, tested_instrumentation

OK, PROBLEM, NOTE = "ok", "problem", "note"
PROBE_TIMEOUT_S = 5.0
GENAI_CONTENT_ON_SPANS = frozenset({"span_only", "span_and_event", "true"})
COST_PYTHON = (3, 11)  # genai-prices, the [cost] extra's table, installs on these Pythons only


@dataclass
class Check:
    check: str
    status: str
    detail: str
    fix: str = ""


def diagnose(host: str | None = None, api_key: str | None = None, *, in_app: bool = True) -> list[Check]:
    """Every check, in order; ``host``/``api_key`` as the exporter takes them (else the
    environment)."""
    checks = [_versions()]
    key = str(settings.read(settings.API_KEY, api_key) or "")
    url, url_check = _host(host)
    checks.append(Check("api key", OK, f"set ({len(key)} character{'s' if len(key) != 1 else ''}, not shown)") if key else Check(
        "api key", PROBLEM, "no TRUBRICS_API_KEY", "export TRUBRICS_API_KEY=local-dev-key (a local serve without "
        "--api-key takes any key)" if _local(url) else "export TRUBRICS_API_KEY=... (or Trubrics(api_key=...))"))
    checks.append(url_check)
    if url and url_check.status == OK:  # without a key too: an unreachable host is a second problem to fix
        checks.append(_probe(url, key))
    checks.extend(_spool(str(settings.read(settings.HOST, host)), key))  # the exporter's, malformed or not
    if not in_app:  # the app reads no store: the reading commands and serve do
        checks.extend(_store())
    checks.extend(_instrumentations())
    checks.extend(_extras())
    checks.append(_provider() if in_app else Check(
        "tracer provider", NOTE, "not checked from the command line",
        "call trubrics_otel.doctor() inside the app to check its global TracerProvider"))
    return checks


def doctor(host: str | None = None, api_key: str | None = None, *, file: Any = None) -> bool:
    """Print the checks for this process (its TracerProvider included); True when healthy."""
    checks = diagnose(host, api_key, in_app=True)
    print(format_checks(checks), file=file or sys.stderr)
    return all(c.status != PROBLEM for c in checks)


def format_checks(checks: list[Check]) -> str:
    marks = {OK: "ok     ", PROBLEM: "PROBLEM", NOTE: "note   "}
    lines = []
    for c in checks:
        lines.append(f"{marks[c.status]} {c.check}: {c.detail}")
        if c.fix:
            lines.append(f"        → {c.fix}")
    problems = sum(c.status == PROBLEM for c in checks)
    lines.append(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "healthy")
    return "\n".join(lines)


# --- the checks -------------------------------------------------------------------------------


def _versions() -> Check:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return Check("versions", NOTE, f"Python {platform.python_version()}, trubrics-otel {version('trubrics-otel')}, "
                 f"opentelemetry-api {version('opentelemetry-api')}, opentelemetry-sdk {version('opentelemetry-sdk')}")


def _host(host: str | None) -> tuple[str | None, Check]:
    given = host if host is not None else settings.raw(settings.HOST)
    url = settings.DEFAULT_HOST if given is None else given
    refusal = settings.host_refusal(url, host, "--host")  # as the exporter and the bridge refuse it
    fix = "set TRUBRICS_HOST to the ingestion URL: https://…, or http://127.0.0.1:8787 for trubrics-otel serve"
    try:
        url = settings.url(url)
    except ValueError:
        return None, Check("host", PROBLEM, str(refusal), fix)
    if refusal:
        return url, Check("host", PROBLEM, refusal, fix)
    return url, Check("host", OK, url + (" (the default: Trubrics' own)" if given is None else ""))


def _probe(url: str, key: str) -> Check:
    import requests

    from trubrics_otel.deliver.transport import EVENTS_PATH, our_own_calls

    try:
        with our_own_calls():  # never an app span under requests/urllib3 instrumentation
            response = requests.post(f"{url}/{EVENTS_PATH}", data=b"[]", timeout=PROBE_TIMEOUT_S,
                                     headers={"Content-Type": "application/json", **({"x-api-key": key} if key else {})})
    except requests.RequestException as exc:
        return Check("reachable", PROBLEM, f"{url} did not answer: {unanswered(exc, url)}",
                     "is `trubrics-otel serve` (or the bridge) running there?" if _local(url) else
                     "check TRUBRICS_HOST and the network; for a local `trubrics-otel serve`: "
                     "--host http://127.0.0.1:8787 (or export TRUBRICS_HOST=http://127.0.0.1:8787)")
    status = response.status_code
    if not key:
        return Check("reachable", NOTE, f"{url} answered HTTP {status}; the key is checked once it is set")
    if status in (401, 403):
        return Check("reachable", PROBLEM, f"{url} refused the key (HTTP {status})",
                     "check TRUBRICS_API_KEY (for serve: its --api-key)")
    if status < 300 or status == 422:
        return Check("reachable", OK, f"{url} answered HTTP {status} and accepted the key (nothing was sent)")
    return Check("reachable", PROBLEM, f"{url} answered HTTP {status}", "is TRUBRICS_HOST the ingestion URL?")


def _local(url: str | None) -> bool:
    """Whether ``url`` is on this machine: a ``serve`` or a bridge, not Trubrics."""
    return bool(url) and settings.loopback(urlsplit(url).hostname or "")


def unanswered(exc: Exception, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Why a request to ``url`` got no answer, in words a newcomer acts on (never the request's
    headers, nor urllib3's "HTTPSConnectionPool(...): Max retries exceeded")."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.Timeout):  # serve and the bridge wait for a request TLS never sends
        plain = " (is it a plain http:// server?)" if url.startswith("https://") else ""
        return f"no answer within {timeout_s:g} s{plain}"
    if "Connection refused" in text:
        return "connection refused (nothing listens on that port)"
    if "resolve" in text or "Name or service not known" in text or "nodename nor servname" in text:
        return "its host name does not resolve"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (a certificate problem, or https:// to a plain-http server)"
    return type(exc).__name__


def _spool(host: str, key: str) -> list[Check]:
    """Whether the spool is writable, what waits in it for ``host`` and ``key``, and what waits
    for other destinations: events spooled while the host was malformed or had another value
    are sent by no process using this one (a spool is one host and key's)."""
    from trubrics_otel.deliver.exporter import spool_key
    from trubrics_otel.deliver.spool import waiting_events

    setting = settings.read(settings.SPOOL)
    if setting is False:
        return [Check("spool", NOTE, "off (TRUBRICS_SPOOL): undelivered events are kept in memory only")]
    base = settings.cache_directory() / "trubrics-otel" / "spool" if setting in (None, True) else Path(setting)
    existing = next(p for p in (base, *base.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return [Check("spool", PROBLEM, f"{base} cannot be created or written ({existing} is not a writable "
                      "directory)", "set TRUBRICS_SPOOL to a writable directory")]
    if existing == base:
        try:
            tempfile.TemporaryFile(dir=base).close()
        except OSError as exc:
            return [Check("spool", PROBLEM, f"{base}: {exc.strerror}", "set TRUBRICS_SPOOL to a writable directory")]
    mine = base / spool_key(host, key)
    segments = sorted(mine.glob("*.seg")) if mine.is_dir() else []
    size = sum(p.stat().st_size for p in segments)
    checks = [Check("spool", OK, f"{base} is writable; " + (
        f"{len(segments)} segment file(s), {size / 1024:.1f} KiB waiting for this host and key "
        f"({_events(waiting_events(mine))})" if segments else "nothing waiting for this host and key"))]
    others = sorted(p for p in base.iterdir() if p.is_dir() and p != mine) if base.is_dir() else []
    for directory in others:
        if events := waiting_events(directory):
            checks.append(_elsewhere(directory, events, mine, _spooled_for(directory.name, host, key)))
    return checks


def _events(count: int) -> str:
    return f"{count} event{'s' if count != 1 else ''}"


def _spooled_for(name: str, host: str, key: str) -> str | None:
    """The host a spool directory was this key's for, when it is an earlier form of ``host``
    (without its scheme, as in ``localhost:8000``, another scheme, a trailing ``/``) or the default."""
    from trubrics_otel.deliver.exporter import spool_key

    bare = host.split("://", 1)[-1]
    for candidate in (settings.DEFAULT_HOST, bare, f"http://{bare}", f"https://{bare}", f"{host}/", f"{bare}/"):
        if candidate != host and spool_key(candidate, key) == name:
            return candidate
    return None


def _elsewhere(directory: Path, events: int, mine: Path, spooled_for: str | None) -> Check:
    """Events spooled for another destination: where they are and how to send them to this
    one (no command sends them: that is the operator's call, they may be another project's)."""
    move = f"mkdir -p -m 700 {shlex.quote(str(mine))} && mv {shlex.quote(str(directory))}/*.seg* {shlex.quote(str(mine))}/"
    if spooled_for is None:
        return Check("spool", NOTE, f"{_events(events)} waiting in {directory} for another host or key: the next "
                     "process using that host and key sends them", f"if they are this app's, to send them to "
                     f"this host with this key, with no app running on the old setting: {move}")
    malformed = settings.destination_error(settings.HOST, spooled_for) is not None
    return Check("spool", PROBLEM if malformed else NOTE,
                 f"{_events(events)} waiting in {directory}, spooled with this key for the host {spooled_for!r}"
                 + (", which is malformed: no process sends them" if malformed else
                    ": only a process using that host sends them"),
                 f"to send them to this host instead, with no app running on the old setting: {move}")


def _store() -> list[Check]:
    """The store ``TRUBRICS_DB_URL`` or ``TRUBRICS_DB`` names, when one is set: it is checked
    as the reading commands check it (a typo there is refused by each, never read as empty)."""
    named = settings.named_store()
    if named is None:
        return []
    variable, value = named
    if problem := cli_args.store_problem(variable, value, cli_args.existing_database):
        serve_fails = cli_args.store_problem(variable, value, cli_args.new_database)  # malformed, no directory
        return [Check("store", PROBLEM if serve_fails else NOTE, serve_fails or problem,
                      "correct the setting" if serve_fails else
                      "the reading commands refuse it until `trubrics-otel serve` creates it (or correct it)")]
    return [Check("store", OK, f"{variable.name}={settings.hide_password(value)}")]


def _instrumentations() -> list[Check]:
    found: list[Check] = []
    seen: set[str] = set()
    for point in importlib.metadata.entry_points(group="opentelemetry_instrumentor"):
        dist = point.dist
        name = dist.metadata["Name"] if dist is not None else point.module
        requires = " ".join(dist.requires or []) if dist is not None else ""
        family = ("openinference" if name.startswith("openinference-") else
                  "openllmetry" if "semantic-conventions-ai" in requires else
                  "genai" if "opentelemetry-util-genai" in requires else None)
        if family is None or name in seen:
            continue  # HTTP, databases…: not LLM calls
        seen.add(name)
        label = f"{name} {dist.version if dist is not None else ''}".strip()
        try:
            importlib.import_module(point.module)
        except Exception as exc:  # noqa: BLE001 - a broken install is what we report
            found.append(Check("instrumentation", PROBLEM, f"{label} fails to import: {type(exc).__name__}: {exc}",
                               "install versions that match (see the zero-code docs for a tested pair)"))
            continue
        found.append(_content(label, family))
    return found or [Check("instrumentation", NOTE, "no LLM instrumentation installed (only track() events)",
                           f"e.g. for OpenAI, the tested set: {tested_instrumentation()}")]


def _content(label: str, family: str) -> Check:
    """Whether ``family``'s instrumentation puts prompts and generations on spans."""
    environ = os.environ  # third-party variables, reported here, never used by us
    if family == "openllmetry":
        on = environ.get("TRACELOOP_TRACE_CONTENT", "true").strip().lower() not in settings.FALSE_WORDS
        variable = "TRACELOOP_TRACE_CONTENT"
    elif family == "openinference":
        on = not any(environ.get(v, "").strip().lower() in settings.TRUE_WORDS
                     for v in ("OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_OUTPUTS"))
        variable = "OPENINFERENCE_HIDE_INPUTS/OUTPUTS"
    else:
        value = environ.get(settings.CAPTURE_CONTENT.name, "").strip().lower()
        zero_code = "trubrics" in environ.get("OTEL_TRACES_EXPORTER", "")
        on = value in GENAI_CONTENT_ON_SPANS or (not value and zero_code)
        variable = settings.CAPTURE_CONTENT.name
        if not on:
            return Check("instrumentation", NOTE, f"{label}: no prompts or generations on spans "
                         f"({variable}={value or 'unset'})", f"{variable}=span_only (opentelemetry-instrument "
                         "with OTEL_TRACES_EXPORTER=trubrics sets it for you)")
    return Check("instrumentation", OK if on else NOTE,
                 f"{label}: {'captures' if on else 'does not capture'} prompts and generations ({variable})")


def _extras() -> list[Check]:
    def has(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    extras = [("grpc", "grpc", "OTLP/gRPC for serve and bridge"),
              ("cost", "genai_prices", "the maintained LLM price table: cost_usd for known models"),
              ("zero-code", "opentelemetry.instrumentation", "opentelemetry-instrument"),
              ("postgres", "psycopg", "serve on PostgreSQL"),
              ("topics", "sklearn", "prompt topics: trubrics-otel topics and the page's Topics view")]
    checks = [Check(f"extra [{extra}]", OK if has(module) else NOTE,
                    ("installed: " if has(module) else "not installed: ") + what,
                    "" if has(module) else _install(extra))
              for extra, module, what in extras]
    from trubrics_otel.translate.fastjson import ACCELERATED

    checks.append(Check("orjson", OK if ACCELERATED else NOTE,
                        "installed" if ACCELERATED else "missing: the stdlib encodes (slower)",
                        "" if ACCELERATED else "pip install orjson"))
    return checks


def _install(extra: str) -> str:
    if extra == "cost" and sys.version_info < COST_PYTHON:  # the extra installs nothing here
        return (f"needs Python {'.'.join(map(str, COST_PYTHON))} or newer (genai-prices); on this one, "
                "custom prices (TRUBRICS_PRICES_FILE) are the only ones")
    return install_command(extra)


def _provider() -> Check:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return Check("tracer provider", OK, f"the global TracerProvider is the SDK's ({type(provider).__name__})")
    return Check("tracer provider", NOTE, f"the global TracerProvider is {type(provider).__name__}: "
                 "instrumentation spans go nowhere unless configure(tracer_provider=...) is given one",
                 "install an SDK TracerProvider (trace.set_tracer_provider) or use opentelemetry-instrument")


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", type=cli_args.http_url, help="check this host (default TRUBRICS_HOST)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    checks = diagnose(args.host, in_app=False)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print(format_checks(checks))
    return 1 if any(c.status == PROBLEM for c in checks) else 0
