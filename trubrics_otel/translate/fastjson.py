"""Compact UTF-8 JSON for request bodies and limit checks, with ``orjson`` when installed.

::

    body = dumps(events)           # bytes, as json.dumps(..., ensure_ascii=False,
                                   # separators=(",", ":")).encode() gives, in meaning
    value = loads(text)            # json.loads(text), exactly (the stdlib's own scanner)
    ACCELERATED                    # True when orjson does the work

Why: on the export thread the stdlib encoder is the largest single cost of an LLM event
(~5 µs of a 100-event batch's share, ``orjson`` ~0.3 µs). ``orjson`` is a core
dependency where it installs (CPython; wheels for every common platform, no compiler):
elsewhere, or if it is missing, the stdlib does the same job. The output means the same either way
(``tests/test_fastjson.py``): ``orjson`` is only given what the stdlib would write as is —
datetimes, dataclasses, subclasses of ``str``/``int``/``dict``/``list`` and anything else it
does not know go back to the stdlib, as do integers beyond 64 bits and non-string keys.
The two differ only in spelling (``1e+16`` / ``1e16``) and in NaN, which orjson writes as
``null`` (valid JSON) where the stdlib writes ``NaN`` (not JSON); the encoder and the
redaction policy turn NaN into ``null`` before it gets here anyway.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # a Python orjson does not support (PyPy): the stdlib does it
    _orjson = None  # type: ignore[assignment]

ACCELERATED = _orjson is not None

_scan_once = json.JSONDecoder().scan_once  # json.loads' own C scanner, default settings


def loads(text: str) -> Any:
    """``json.loads(text)`` for a ``str``: the same C scanner, called directly.

    Why: every GenAI span carries its messages as JSON text, parsed per span; ``json.loads``
    spends more time in its Python layers (BOM and whitespace checks, ``raw_decode``) than
    the scanner does on a short message list. A text that does not start with a value or
    has anything after it (whitespace, a BOM, an error) goes to ``json.loads``, which
    answers or raises exactly as always. (orjson is not used to read: it reads integers
    beyond 64 bits as floats.)
    """
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


_stdlib = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_strict = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


if _orjson is not None:
    _OPTIONS = (
        _orjson.OPT_PASSTHROUGH_DATETIME
        | _orjson.OPT_PASSTHROUGH_DATACLASS
        | _orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    _fast = _orjson.dumps

    def dumps(value: Any) -> bytes:
        """``value`` as compact UTF-8 JSON; raises like ``json.dumps`` for what JSON cannot hold."""
        try:
            return _fast(value, _refuse, _OPTIONS)
        except TypeError:  # orjson.JSONEncodeError too: big ints, non-str keys, other types
            return _stdlib(value).encode("utf-8")

    def measure(value: Any) -> bytes:
        """``value``'s JSON for a size check, orjson only: raises TypeError for anything it
        refuses (the caller then takes its careful path)."""
        return _fast(value, _refuse, _OPTIONS)

else:

    def measure(value: Any) -> bytes:
        """``value``'s JSON for a size check: raises for anything that is not plain JSON."""
        return _strict(value).encode("utf-8")

    def dumps(value: Any) -> bytes:
        """``value`` as compact UTF-8 JSON; raises like ``json.dumps`` for what JSON cannot hold."""
        return _stdlib(value).encode("utf-8")


def brackets(data: bytes) -> int:
    """How many ``{`` and ``[`` a JSON text holds, a bound of its depth. A flat object's (most
    events' properties) is found by two scans for one byte, at half the cost of counting both."""
    if data.find(b"{", 1) == -1 and data.find(b"[") == -1:  # not `in`: bytes try it as an int first
        return 1 if data.startswith(b"{") else 0
    return data.count(b"{") + data.count(b"[")
