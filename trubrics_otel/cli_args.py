"""The command line's argument checks, shared by every subcommand: a bad value is refused by
argparse before anything starts, in one line naming the argument, with exit code 2.

::

    parser = Parser(prog="trubrics-otel")                # errors are one line, no usage dump
    parser.add_argument("--limit", type=positive_int, default=50)
    parser.add_argument("--bind", type=ip_address, default="127.0.0.1")
    parser.add_argument("--db", type=new_database)       # its directory must exist

Each check is a ``type=`` function: it returns the value or raises
:class:`argparse.ArgumentTypeError`, whose message argparse puts after the argument's name.
Numbers and URLs are read by the same parsers as the environment variables
(:mod:`trubrics_otel.settings`), so ``--timeout`` and ``TRUBRICS_BRIDGE_TIMEOUT`` accept the same
things. A ``--db`` value containing ``://`` is a database URL: a server's is checked for its
shape (the store connects), a ``sqlite:///path`` is checked as the path.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import ipaddress
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from trubrics_otel import settings

T = TypeVar("T")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SQLITE_URL = "sqlite:///"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (``prog: message``) and exit 2:
    the usage dump argparse prints first pushes the message out of sight. A value that starts
    with ``-`` and a digit (``--within -1d``, ``--since -2h``) is the option's value, checked by
    its type (as Python 3.13's argparse does), not an unknown option leaving the option
    "expected one argument"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")  # no option of ours looks like one

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A mistyped choice (``serv``, ``--kind llms``) names the one it is close to, instead of
        listing all of them (fifteen commands)."""
        if action.choices is not None and value not in action.choices:
            if close := nearest(str(value), [str(choice) for choice in action.choices]):
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}; did you mean {close!r}?")
        super()._check_value(action, value)


def nearest(word: str, known: list[str]) -> str | None:
    """The one of ``known`` ``word`` is most likely a typo of, if any is close."""
    lowered = {name.lower(): name for name in known}  # --kind LLM is llm
    return next((lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=1, cutoff=0.7)), None)


def plain(text: str) -> str:
    """A docstring line for ``--help``: reST markup (````x````, ``:mod:`~a.b```) as plain text."""
    text = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rpartition(".")[2], text)
    return text.replace("``", "")


def _checked(parse: Callable[[str], T], expected: str) -> Callable[[str], T]:
    """``parse`` as an argparse ``type=``: a ValueError becomes "'value': expected …"."""
    def check(text: str) -> T:
        try:
            return parse(text)
        except (ValueError, TypeError, OverflowError):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
    check.__name__ = parse.__name__  # argparse names the type in some messages
    return check


def _whole(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError
    return level


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text.strip().strip("[]")))


positive_int = _checked(_whole, "a whole number of at least 1")
positive_number = _checked(settings.positive_number, "a number above 0")
port = _checked(_port, "a port from 0 to 65535 (0: any free port)")
log_level = _checked(_log_level, "one of " + ", ".join(LOG_LEVELS))
ip_address = _checked(_ip, "an IP address such as 127.0.0.1, 0.0.0.0 (every interface) or ::1")
http_url = _checked(settings.url, "an http:// or https:// URL such as http://127.0.0.1:8787")
address = _checked(lambda text: settings.address(text) and text.strip(), "host:port, such as 127.0.0.1:4319")
address_or_off = _checked(lambda text: text.strip() if settings.address_or_off(text) else "off",
                          "host:port, such as 127.0.0.1:4320, or off")
"""``host:port`` as given, or ``off`` for any false word (``no``, ``0``…)."""


def key(text: str) -> str:
    """An API key given on the command line: an empty one is a mistake (a shell variable that was
    not set), never "no key". Only its emptiness is checked, so the message never shows it.
    ``TRUBRICS_API_KEY=""`` in the environment counts as unset, like every empty variable."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give the key, or leave the option out")
    return text.strip()


def non_empty(text: str) -> str:
    """A filter or an id (``--user``, ``threads <id>``): an empty one is a shell variable that was
    not set, not "everyone" nor "the user named ''"; refused. Kept as given otherwise."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a value, or leave the option out")
    return text


def empty_window(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--since`` after ``--until`` (a window nothing can be in, read as
    "nothing happened"), naming the argument; None when the window is fine or open."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since is None or until is None or since <= until:
        return None
    return (f"argument --since: {since:%Y-%m-%d %H:%M:%S %Z} is after --until {until:%Y-%m-%d %H:%M:%S %Z}"
            " (since is the earlier end: --since 2d --until 1d)")


def database_location(text: str) -> str:
    """Any database location: a path, ``sqlite:///path`` or ``postgresql://…``, checked as
    ``TRUBRICS_DB_URL`` is (:func:`settings.database_url`): ``postgresql:/db``,
    ``postgres:user@host`` (no ``//``, else a file in a directory named ``postgresql:``), another
    scheme or a PostgreSQL URL naming nothing are refused, the password never shown."""
    if not text.strip():  # an unset shell variable, not the current directory
        raise argparse.ArgumentTypeError("empty: give a path or URL, or leave the option out")
    try:
        return settings.database_url(text) and text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{settings.hide_password(text)!r}: {exc}") from None


def database_setting(args: argparse.Namespace) -> str | None:
    """What is wrong with ``TRUBRICS_DB_URL`` (else ``TRUBRICS_DB``) when the command reads or
    serves the store it names (no ``--db``, no ``--url``), naming the variable, never its
    password; None when it is fine or unused. Refused before the command starts: never the
    default file instead. Its file is checked as the command's ``--db`` would be
    (``args.db_check``): ``serve`` creates no directory, a reader does not show a typo as an
    empty store (only the unset default, before anything was stored, reads as empty)."""
    if not hasattr(args, "db") or args.db is not None or getattr(args, "url", None):
        return None
    named = settings.named_store()
    return None if named is None else store_problem(*named, getattr(args, "db_check", database_location))


def store_problem(variable: settings.Variable, value: str, check: Callable[[str], object]) -> str | None:
    """What is wrong with the store ``variable`` names as ``value`` (see
    :func:`settings.named_store`) when its file is checked with ``check``; None when fine."""
    if variable.destination and (problem := settings.destination_error(variable, value)):
        return problem
    try:
        check(value)
    except argparse.ArgumentTypeError as exc:
        return f"{variable.name}={exc}"
    return None


def _sqlite_file(text: str) -> Path | None:
    """The SQLite file a location names (``sqlite:///rel``, ``sqlite:////abs`` as the store
    reads them), or None for a server's URL (``postgresql://…``: the store checks it)."""
    database_location(text)
    if text.startswith(_SQLITE_URL):
        return Path(text.removeprefix(_SQLITE_URL)).expanduser()
    return None if "://" in text else Path(text).expanduser()


def new_database(text: str) -> str:
    """A database file ``serve`` may create: its directory exists (nothing is created silently)
    and it is not itself a directory. A server's URL (``postgresql://…``) passes through."""
    path = _sqlite_file(text)
    if path is None:
        return text
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: it is a directory, not a database file")
    parent = path.parent
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: the directory {str(parent)!r} does not exist "
                                         "(create it first)")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {str(parent)!r} is not a directory")
    return text if text.startswith(_SQLITE_URL) else str(path)


def existing_database(text: str) -> str:
    """A database file to read: it must exist, so a typo is not mistaken for an empty store.
    A server's URL (``postgresql://…``) passes through."""
    path = _sqlite_file(text)
    if path is None:
        return text
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: no store there (the file does not exist)")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: it is a directory, not a database file")
    return text if text.startswith(_SQLITE_URL) else str(path)


def sqlite_failure(location: str | os.PathLike[str], error: Exception) -> str:
    """Why a SQLite file cannot be used, in words a user can act on: SQLite says "unable to
    open database file" for a file this user may not read and for a directory it may not write."""
    try:
        path = _sqlite_file(os.fspath(location))
    except argparse.ArgumentTypeError:
        path = None
    if path is None:
        return str(error)
    if path.is_dir():
        return "it is a directory"
    if path.exists() and not path.is_file():  # a FIFO, a device: not opened below (it could block)
        return "it is not a regular file"
    if path.exists() and not _may(lambda: open(path, "r+b").close()):
        return f"permission denied: this user may not read and write it ({error})"
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):  # left read-only by a process that could not write
        if side.is_file() and not _may(lambda: open(side, "r+b").close()):
            return f"permission denied: this user may not read and write {side} ({error})"
    if not _may(lambda: tempfile.TemporaryFile(dir=path.parent).close()):  # the -wal and -shm files go there
        return f"permission denied: this user may not create files in {path.parent} ({error})"
    return str(error)


def _may(attempt: Callable[[], object]) -> bool:
    """False when ``attempt`` is refused for lack of permission (other failures are not ours to explain)."""
    try:
        attempt()
    except PermissionError:
        return False
    except OSError:
        pass
    return True


def every_interface(bind: str) -> bool:
    """Whether ``bind`` listens on every interface (``0.0.0.0``, ``::``), so other machines
    reach it; ``::1`` and ``127.x`` are loopback, ``[::1]`` is read without its brackets."""
    try:
        return ipaddress.ip_address(bind.strip().strip("[]")).is_unspecified
    except ValueError:
        return False  # a host name: one interface


def reachable_host(bind: str) -> str:
    """The address a client on this machine dials for a server bound to ``bind``: ``0.0.0.0``
    and ``::`` mean every interface, which no client can connect to; IPv6 gets brackets."""
    try:
        address_ = ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        return bind  # a host name
    if address_.is_unspecified:
        address_ = ipaddress.ip_address("::1" if address_.version == 6 else "127.0.0.1")
    return f"[{address_}]" if address_.version == 6 else str(address_)


def cannot_listen(exc: OSError | OverflowError, busy: str, grpc_busy: str) -> str:
    """A port that cannot be had, as one line naming the address (the receivers put it in the
    message) and, in brackets, ``busy`` (or ``grpc_busy``): the option that picks another. No
    ``[Errno 98]``, no gRPC core advice."""
    text = exc.strerror if isinstance(exc, OSError) and exc.errno and exc.strerror else str(exc)
    text = text.split(";", 1)[0]  # grpcio's "; set GRPC_VERBOSITY=debug …"
    if "OTLP/gRPC" in text:
        return f"{text} ({grpc_busy})"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{text} ({busy})"
    return text
