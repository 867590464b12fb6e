"""Every ``TRUBRICS_*`` / ``OTEL_*`` variable we read: its default and its parsing, in one place.

::

    from trubrics_otel import settings

    timeout = settings.read(settings.TIMEOUT, timeout_argument)   # the argument wins
    if settings.read(settings.ALL_SPANS):
        ...

An argument given in code always wins; else the environment variable; else the default.
The rules are the same for every variable:

* values are stripped; an empty value counts as unset (as the OpenTelemetry specification
  says for its own variables);
* booleans take exactly ``1 true yes on`` and ``0 false no off``, in any case;
* numbers must be finite and positive;
* anything else is logged as an error naming the variable, and the default is used. The
  value of a secret (the API key) is never logged;
* except for a destination (``TRUBRICS_HOST``, ``TRUBRICS_DB_URL``): a malformed one is never
  replaced by the default, which would send the events and the key somewhere the user did not
  name, or read another store than the one named. It is returned as given for the caller to
  refuse (:func:`destination_error`): nothing is sent, nothing is read.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
DEFAULT_HOST = "https://app.trubrics.com/api/ingestion"

_logger = logging.getLogger("trubrics")


class Secret:
    """Holds the API key so that no repr, log line or traceback of ours can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


# --- parsers: text -> value, ValueError for what they cannot read ---------------------------


def boolean(text: str) -> bool:
    """A boolean: ``1 true yes on`` or ``0 false no off``, in any case."""
    word = text.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected one of 1, true, yes, on or 0, false, no, off")


def positive_number(text: str) -> float:
    """A finite number above 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a positive number")
    return value


def positive_integer(text: str) -> int:
    """A finite number above 0, as a whole number (at least 1)."""
    return max(1, int(positive_number(text)))


def milliseconds(text: str) -> float:
    """Milliseconds (the ``OTEL_BSP_*`` unit) as seconds."""
    return positive_number(text) / 1000


def ratio(text: str) -> float:
    """A number from 0 to 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (and a port from 0 to 65535, if any); a
    trailing ``/`` is dropped."""
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    _ = parts.port  # ValueError for ":99999" or ":abc", now rather than at every send
    return text.rstrip("/")


def address(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:4319`` for IPv6) as a pair."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port with a port from 0 to 65535")
    return host.strip("[]") or "127.0.0.1", int(port)


def address_or_off(text: str) -> tuple[str, int] | bool:
    """``host:port``, or a false word (``off``) for "do not listen"."""
    return False if text.strip().casefold() in FALSE_WORDS else address(text)


def text_value(text: str) -> str:
    """Any text, stripped."""
    return text.strip()


def path(text: str) -> Path:
    """A file or directory path; ``~`` is expanded."""
    return Path(text.strip()).expanduser()


def spool_location(text: str) -> Path | bool | None:
    """A directory; a false word turns the spool off; a true word keeps the default one."""
    word = text.strip().casefold()
    if word in FALSE_WORDS:
        return False
    if word in TRUE_WORDS:
        return None
    return path(text)


_CONTENT_ON = frozenset({"span_only", "event_only", "span_and_event"})


def content_capture(text: str) -> bool:
    """The GenAI instrumentations' switch: a boolean, or their ``*_only`` / ``no_content`` modes."""
    word = text.strip().casefold()
    if word in ("no_content", "none"):  # fail closed: a value that means "nothing" is off
        return False
    if word in _CONTENT_ON:
        return True
    return boolean(word)


_SAMPLER_RATIOS = {"always_on": 1.0, "parentbased_always_on": 1.0,
                   "always_off": 0.0, "parentbased_always_off": 0.0}
_RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})


def sampler_name(text: str) -> str:
    """``always_on``, ``always_off``, ``traceidratio`` or their ``parentbased_`` forms."""
    name = text.strip().casefold()
    if name not in _SAMPLER_RATIOS and name not in _RATIO_SAMPLERS:
        raise ValueError(f"expected one of {', '.join(sorted(_SAMPLER_RATIOS.keys() | _RATIO_SAMPLERS))}")
    return name


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: C:/x is a path
_POSTGRES = ("postgresql", "postgres")


def database_url(text: str) -> str:
    """A path, ``sqlite:///path`` or ``postgresql://user@host:port/db`` (the store's engine).
    Refused: another scheme, a URL missing its ``//`` (``postgres:user@host`` would be a file
    in a directory named ``postgres:``), ``sqlite:///`` naming no file, a PostgreSQL URL naming
    neither a host nor a database, a port that is no port. The messages never quote the value
    (a password may be in it)."""
    value = text.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        if _URL_SCHEME.match(value):
            raise ValueError("a database URL is scheme://…, such as postgresql://user@host:5432/database "
                             "or sqlite:///path")
        return value
    if scheme == "sqlite":
        if not rest.startswith("/") or not rest.strip("/"):
            raise ValueError("expected sqlite:///relative/path or sqlite:////absolute/path")
    elif scheme in _POSTGRES:
        parts = urlsplit(value)
        host = parts.netloc.rpartition("@")[2]
        if not host and not parts.path.strip("/") and not parts.query:
            raise ValueError("a postgresql:// URL names a host or a database: postgresql://user@host:5432/database")
        _, colon, port = host.rpartition("]")[2].rpartition(":")
        if colon and "," not in host and not (port.isdigit() and int(port) <= 65535):
            raise ValueError("its port is not a number from 0 to 65535")
    else:
        named = f"{scheme}:// is" if _URL_SCHEME.fullmatch(scheme + ":") else "that scheme is"
        raise ValueError(f"{named} not a store: expected a path, sqlite:///path or "
                         "postgresql://user@host:port/database")
    return value


def hide_password(location: str) -> str:
    """A database location for people: ``postgresql://user:secret@host/db`` →
    ``postgresql://user:***@host/db``, and a ``password=`` parameter's value hidden. Everything
    up to the last ``@`` is taken as the user and password (a password may hold ``@`` or ``/``)."""
    location = re.sub(r"(password=)[^&]*", r"\1***", location)
    scheme, sep, rest = location.partition("://")
    if not sep and (missing_slashes := _URL_SCHEME.match(location)):  # postgres:user:secret@host
        scheme, sep, rest = location[:missing_slashes.end() - 1], ":", location[missing_slashes.end():]
    if not sep or "@" not in rest:
        return location
    user_info, _, host = rest.rpartition("@")
    user, colon, _ = user_info.partition(":")
    return f"{scheme}{sep}{user}:***@{host}" if colon else location


# --- the variables --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One environment variable; ``doc`` is what the generated configuration reference says."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    secret: bool = False
    doc: str = ""
    destination: bool = False
    """Where events (and the key) go, or are read from: a malformed value is kept, never the default."""
    shown: Callable[[str], str] | None = None
    """How a secret's value may be shown (a URL without its password); None: never."""


API_KEY = Variable("TRUBRICS_API_KEY", text_value, None, secret=True,
                   doc="The Trubrics API key (`api_key=`). Never logged, never in a repr or a file.")
HOST = Variable("TRUBRICS_HOST", url, DEFAULT_HOST, destination=True,
                doc="The Trubrics ingestion API (`host=`; `bridge --host`). A malformed value (no "
                    "`http://` or `https://`, a port above 65535) is never replaced by the default: "
                    "nothing is sent, one error names it and the events stay pending.")
TIMEOUT = Variable("TRUBRICS_TIMEOUT", positive_number, 10.0,
                   doc="Seconds per HTTP request to Trubrics (`timeout=`).")
RETRY_TIMEOUT = Variable("TRUBRICS_RETRY_TIMEOUT", positive_number, 60.0,
                         doc="Seconds of retries per batch before it is held in the spool (`retry_timeout=`).")
SPOOL = Variable("TRUBRICS_SPOOL", spool_location, None,
                 doc="The disk spool's directory (`spool=`); unset: under the cache directory, one per "
                     "endpoint and key; a false word keeps events in memory only.")
MAX_SPOOL_BYTES = Variable("TRUBRICS_MAX_SPOOL_BYTES", positive_integer, 256 * 1024 * 1024,
                           doc="Bytes the spool may hold; past it events are dropped and counted "
                               "(`max_spool_bytes=`).")
ALLOW_INSECURE = Variable("TRUBRICS_ALLOW_INSECURE", boolean, False,
                          doc="Send the API key over plain `http://` to a host that is not loopback "
                              "(`allow_insecure=`).")
ALL_SPANS = Variable("TRUBRICS_ALL_SPANS", boolean, False,
                     doc="Turn every span, not only LLM calls and product events, into an event (`all_spans=`).")
CAPTURE_CONTENT = Variable("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", content_capture, True,
                           doc="Whether prompts and generations are sent (`capture_content=`); the GenAI "
                               "instrumentations' own switch.")
SCHEDULE_DELAY = Variable("OTEL_BSP_SCHEDULE_DELAY", milliseconds, None,
                          doc="The batch delay (`flush_interval=` in seconds); unset: 10 s for the "
                              "client, 5 s for `configure()`.")
MAX_EXPORT_BATCH_SIZE = Variable("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", positive_integer, None,
                                 doc="Events per export batch (`flush_batch_size=`); unset: 20 for the client.")
MAX_QUEUE_SIZE = Variable("OTEL_BSP_MAX_QUEUE_SIZE", positive_integer, 20_000,
                          doc="Spans waiting in memory; beyond it they go to the disk spool (`max_queue_size=`).")
TRACES_SAMPLER = Variable("OTEL_TRACES_SAMPLER", sampler_name, None,
                          doc="The standard sampler, honoured for instrumentation spans under `configure()`.")
TRACES_SAMPLER_ARG = Variable("OTEL_TRACES_SAMPLER_ARG", ratio, 1.0,
                              doc="The share of traces a `traceidratio` sampler keeps.")
BRIDGE_LISTEN = Variable("TRUBRICS_BRIDGE_LISTEN", address, ("127.0.0.1", 4319),
                         doc="Where `trubrics-otel bridge` listens for OTLP/HTTP (`--listen`).")
BRIDGE_GRPC_LISTEN = Variable("TRUBRICS_BRIDGE_GRPC_LISTEN", address_or_off, None,
                              doc="Where the bridge listens for OTLP/gRPC (`--grpc-listen`); unset: "
                                  "`trubrics-otel bridge` uses 127.0.0.1:4320, the `Bridge` class none.")
BRIDGE_CLIENT_TIMEOUT = Variable("TRUBRICS_BRIDGE_CLIENT_TIMEOUT", positive_number, 30.0,
                                 doc="Seconds before the bridge closes an idle or stalled connection "
                                     "(`--client-timeout`).")
BRIDGE_MAX_BODY = Variable("TRUBRICS_BRIDGE_MAX_BODY", positive_integer, 32 << 20,
                           doc="Bytes of one OTLP request, on the wire and decompressed (`--max-body`).")
BRIDGE_TIMEOUT = Variable("TRUBRICS_BRIDGE_TIMEOUT", positive_number, 3.0,
                          doc="Seconds the bridge tries Trubrics before answering 503 (`--timeout`).")
BRIDGE_RECEIVE_KEY = Variable("TRUBRICS_BRIDGE_RECEIVE_KEY", text_value, None, secret=True,
                              doc="The key senders must present to the bridge (`--receive-key`); "
                                  "required when it listens off loopback.")
ATTRIBUTE_COUNT_LIMIT = Variable("OTEL_ATTRIBUTE_COUNT_LIMIT", positive_integer, None,
                                 doc="Attributes an OTLP receiver keeps per span, event or link, when "
                                     "`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` is unset; unset: 1024.")
SPAN_ATTRIBUTE_COUNT_LIMIT = Variable("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", positive_integer, None,
                                      doc="Attributes the bridge and `serve` keep per received span "
                                          "(and per span event or link); the rest are counted and logged.")
RECEIVED_ATTRIBUTE_LIMIT = 1024
"""Attributes the receivers keep per span, event or link when neither OTel variable is set:
above the SDK's 128, since senders' SDKs have bounded them already (a Collector does not)."""
DB = Variable("TRUBRICS_DB", path, None,
              doc="The local server's SQLite file (`--db`); unset: `trubrics-otel/events.sqlite3` "
                  "under the data directory. A reading command refuses a path where no store exists "
                  "(one line, exit 2; never an empty answer); `serve` creates it.")
DB_URL = Variable("TRUBRICS_DB_URL", database_url, None, secret=True, destination=True, shown=hide_password,
                  doc="The store for `serve` and the reading commands (`--db`): a SQLite path, "
                      "`sqlite:///path` or `postgresql://…`; wins over `TRUBRICS_DB`. A malformed value "
                      "(another scheme, no `//`, no host nor database) is never replaced by the default "
                      "file: the command refuses it in one line. Its password is never shown.")
SERVE_WORKERS = Variable("TRUBRICS_SERVE_WORKERS", positive_integer, 1,
                        doc="Worker processes of `trubrics-otel serve` accepting on its port at once "
                            "(`--workers`): several decode, validate and store in parallel; OTLP/gRPC is "
                            "served by the first.")
PRICES_FILE = Variable("TRUBRICS_PRICES_FILE", path, None,
                       doc="A JSON file of custom model prices (`prices=` entries win over it).")
XDG_CACHE_HOME = Variable("XDG_CACHE_HOME", path, None,
                          doc="The cache directory that holds the spool; unset: `%LOCALAPPDATA%` "
                              "on Windows, else `~/.cache`.")
XDG_DATA_HOME = Variable("XDG_DATA_HOME", path, None,
                         doc="The data directory that holds the local server's database; unset: "
                             "`~/.local/share`.")

VARIABLES: tuple[Variable, ...] = tuple(v for v in globals().values() if isinstance(v, Variable))


def read(variable: Variable, argument: Any = None) -> Any:
    """The argument when given, else the variable's value from the environment, else its default."""
    if argument is not None:
        return argument
    raw = os.environ.get(variable.name)
    if raw is None or not raw.strip():
        return variable.default
    try:
        return variable.parse(raw)
    except ValueError as exc:
        if variable.destination:  # the caller refuses it (destination_error) and says so, once
            return raw.strip()
        _logger.error("Ignoring %s=%s: %s; using the default (%r).", variable.name, _shown(variable, raw), exc,
                      variable.default)
        return variable.default


def destination_error(variable: Variable, value: str, argument: Any = None, argument_name: str = "") -> str | None:
    """Why ``value`` (read for ``variable``) cannot be sent to, naming the argument when one
    was given, else the variable; None when it parses."""
    try:
        variable.parse(str(value))
    except ValueError as exc:
        source = f"{argument_name}=" if argument is not None and argument_name else f"{variable.name}="
        return f"{source}{_shown(variable, str(value))} is not usable: {exc}"
    return None


def host_refusal(host: str, argument: Any = None, argument_name: str = "host",
                 allow_insecure: bool | None = None) -> str | None:
    """Why nothing may be sent to ``host`` (read for ``TRUBRICS_HOST``; ``argument`` when one
    was given, named ``argument_name``), or None. The one rule the exporter (it spools), the
    bridge (it does not start) and ``doctor`` (it reports) apply: a malformed host is named and
    never replaced by the default; plain ``http://`` off loopback would put the API key on the
    wire readable, unless ``allow_insecure`` (else ``TRUBRICS_ALLOW_INSECURE``) says the network
    is trusted. Never quotes the key."""
    if malformed := destination_error(HOST, host, argument, argument_name):
        return f"{malformed}; nothing is sent (never to the default host)"
    parts = urlsplit(str(host))
    if parts.scheme == "https" or loopback(parts.hostname or "") or read(ALLOW_INSECURE, allow_insecure):
        return None
    return (f"{host}: plain http:// off loopback would expose the API key; use https://, or "
            f"{ALLOW_INSECURE.name}=1 (allow_insecure=True) on a trusted network")


def loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``: 127.0.0.0/8, ``::1``, ``localhost``, or a
    name under ``.localhost`` this machine resolves to loopback addresses alone (RFC 6761 asks
    resolvers to; one that does not may send the name anywhere). The one rule for a server's
    address (off loopback: no write, no read without its key) and a client's (no key over
    plain ``http://`` off loopback)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        if not host.endswith(".localhost"):
            return False
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(address[4][0]).is_loopback for address in found)


def _shown(variable: Variable, value: str) -> str:
    """``value`` as a message may quote it: a secret hidden (whole, or its password)."""
    if not variable.secret:
        return repr(value)
    return repr(variable.shown(value)) if variable.shown else "(hidden)"


def raw(variable: Variable) -> str | None:
    """The variable's text as set (stripped), None when unset or empty: for reporting what is
    wrong with it (``trubrics-otel doctor``) rather than falling back to the default."""
    value = os.environ.get(variable.name, "").strip()
    return value or None


def named_store() -> tuple[Variable, str] | None:
    """The variable that names the store and its text as set: ``TRUBRICS_DB_URL``, else
    ``TRUBRICS_DB``; None when neither is set (the default file)."""
    for variable in (DB_URL, DB):
        if (value := raw(variable)) is not None:
            return variable, value
    return None


def received_attribute_limit() -> int:
    """Attributes an OTLP receiver keeps per span (and per span event or link): the OTel SDK's
    ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, else ``OTEL_ATTRIBUTE_COUNT_LIMIT``, else 1024."""
    return int(read(SPAN_ATTRIBUTE_COUNT_LIMIT) or read(ATTRIBUTE_COUNT_LIMIT) or RECEIVED_ATTRIBUTE_LIMIT)


def sample_rate() -> float | None:
    """The share of traces ``OTEL_TRACES_SAMPLER`` (+ ``_ARG``) keeps; None when it keeps all
    or names no sampler."""
    name = read(TRACES_SAMPLER)
    if name is None:
        return None
    if name in _SAMPLER_RATIOS:
        return _SAMPLER_RATIOS[name]
    return read(TRACES_SAMPLER_ARG)


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME`` (``%LOCALAPPDATA%`` on Windows), else ``~/.cache``."""
    base = read(XDG_CACHE_HOME) or (Path(os.environ["LOCALAPPDATA"]) if os.environ.get("LOCALAPPDATA") else None)
    return base or Path.home() / ".cache"


def data_directory() -> Path:
    """``$XDG_DATA_HOME``, else ``~/.local/share``."""
    return read(XDG_DATA_HOME) or Path.home() / ".local" / "share"
