"""The bytes of a stored record (journal, spool): a fixed ``marshal`` subset behind a tag, or JSON.

::

    payload = encode(record)             # b"\\x02" + marshal.dumps(record, 2)
    record = decode(payload)             # the same tuple, under this Python or the next
    decode(b"\\x07...")                  # raises UnknownFormat: a newer trubrics-otel wrote it
    dumps, option = json_encoder()       # with orjson: dumps(record, None, option) == b"[1,...]"

Why not plain ``marshal``: its format belongs to the Python version (the docs promise
nothing across versions), and events spooled under Python 3.11 must still be sent after
the machine moves to 3.13. The stdlib's JSON would be portable but costs ``track()``
several times more. So a record is written by the C ``marshal`` at its *version 2* — no
back-references, the layout every CPython 3 reads and writes — behind a one-byte tag,
:data:`FORMAT`. Reading uses the C ``marshal`` too, and when that fails (a Python that
changed it) the pure-Python reader below, which is the format's definition: the types a
record holds (None, bools, ints of any size, floats, str, bytes, tuples, lists, dicts, sets)
in marshal's versions 0–4. ``tests/test_record_format.py`` writes under one interpreter and
reads under another.

The hot path writes a second format when ``orjson`` is installed (a core dependency on CPython): the
record as a JSON array, whose first byte ``[`` is its tag (:func:`json_encoder`). ``orjson``
stores an LLM record in about half marshal's time and reads it back faster, and JSON needs
no reader of our own: the stdlib reads it on any Python, with or without ``orjson``. It is
only given what it writes as the stdlib would (the options refuse datetimes, dataclasses and
subclasses, and it refuses integers beyond 64 bits, non-string keys, sets and bytes); a
record it refuses is stored in the marshal format, as are all records without ``orjson``.
Tuples come back as lists, and the record's 128-bit trace id is stored in two halves:
:func:`~trubrics_otel.translate.tracked.from_bytes` knows the layout.

Tags: ``0x02`` the marshal format, ``[`` (0x5B) the JSON one. Records from before the tag (a
bare ``marshal`` tuple, first byte ``(`` or ``)``, optionally with the 0x80 reference flag)
are still read. Any other first byte is a format this version does not know:
:class:`UnknownFormat`, which the caller keeps on disk and reports rather than drops.
"""

from __future__ import annotations

import json
import marshal
import struct
from collections.abc import Callable
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # no orjson (PyPy): every record is stored by marshal
    _orjson = None  # type: ignore[assignment]

FORMAT = 2
JSON_FORMAT = ord("[")
_TAG = bytes([FORMAT])
_LEGACY_FIRST_BYTES = frozenset(b"()" + bytes([ord("(") | 0x80, ord(")") | 0x80]))
_MARSHAL_VERSION = 2
_dumps = marshal.dumps
_loads = marshal.loads


class UnknownFormat(ValueError):
    """Bytes written in a format this version cannot read (by a newer trubrics-otel)."""

    def __init__(self, tag: int) -> None:
        super().__init__(f"stored record format {tag} is unknown to this trubrics-otel (it reads {FORMAT})")
        self.tag = tag


def encode(record: tuple[Any, ...]) -> bytes:
    """The record's stored bytes; raises ValueError for an object ``marshal`` cannot store."""
    return _TAG + _dumps(record, _MARSHAL_VERSION)


def encoder() -> tuple[bytes, Any, int]:
    """``(tag, dumps, version)``: :func:`encode` is ``tag + dumps(record, version)``; for a
    hot path that inlines it."""
    return _TAG, _dumps, _MARSHAL_VERSION


def json_encoder() -> tuple[Callable[..., bytes], int] | None:
    """``(dumps, option)`` when ``orjson`` is installed: ``dumps(value, None, option)`` is a
    record in the JSON format, or raises TypeError for what the stdlib would write differently
    (then store it with :func:`encode`). None without ``orjson``."""
    if _orjson is None:
        return None
    return _orjson.dumps, (_orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
                           | _orjson.OPT_PASSTHROUGH_SUBCLASS)


def decode(payload: bytes) -> Any:
    """What :func:`encode` stored (or a record from before the tag). Raises
    :class:`UnknownFormat` for a format this version does not know, ValueError for damage."""
    if not payload:
        raise ValueError("empty record")
    first = payload[0]
    if first == JSON_FORMAT:
        return read_json(payload)
    if first == FORMAT:
        body = memoryview(payload)[1:]
    elif first in _LEGACY_FIRST_BYTES:
        body = memoryview(payload)
    else:
        raise UnknownFormat(first)
    try:
        return _loads(body)
    except (ValueError, EOFError, TypeError):  # this Python's marshal changed: read it ourselves
        return read_marshal(bytes(body))


read_json: Callable[[bytes], Any] = _orjson.loads if _orjson is not None else json.loads
"""orjson reads the integers orjson wrote exactly (it wrote none beyond 64 bits)."""


def read_marshal(data: bytes) -> Any:
    """Pure-Python reader for marshal data of the types a record holds (versions 0-4)."""
    reader = _Reader(data)
    try:
        value = reader.read()
    except (IndexError, KeyError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"damaged record: {exc!r}") from None
    if reader.position != len(data):
        raise ValueError("trailing bytes after the record")
    return value


class _Reader:
    _CONSTANTS = {ord("N"): None, ord("F"): False, ord("T"): True, ord("."): Ellipsis}

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.refs: list[Any] = []

    def read(self) -> Any:
        code = self._take(1)[0]
        flag, code = code & 0x80, code & 0x7F
        if code in self._CONSTANTS:
            return self._CONSTANTS[code]
        if code == ord("r"):  # a back-reference (versions 3+)
            return self.refs[self._int32()]
        slot = len(self.refs)
        if flag:
            self.refs.append(None)  # reserved before the items, as marshal numbers them
        value = self._value(chr(code))
        if flag:
            self.refs[slot] = value
        return value

    def _value(self, code: str) -> Any:
        if code == "i":
            return self._int32()
        if code == "l":
            return self._long()
        if code == "g":
            return struct.unpack("<d", self._take(8))[0]
        if code == "f":  # versions 0-1: the float's text
            return float(self._take(self._take(1)[0]).decode("ascii"))
        if code == "y":
            real, imag = struct.unpack("<dd", self._take(16))
            return complex(real, imag)
        if code in "ut":
            return self._take(self._int32()).decode("utf-8", "surrogatepass")
        if code in "aA":
            return self._take(self._int32()).decode("ascii")
        if code in "zZ":
            return self._take(self._take(1)[0]).decode("ascii")
        if code == "s":
            return bytes(self._take(self._int32()))
        if code == ")":
            return tuple(self.read() for _ in range(self._take(1)[0]))
        if code in "([<>":
            items = [self.read() for _ in range(self._int32())]
            return {"(": tuple, "[": list, "<": set, ">": frozenset}[code](items)
        if code == "{":
            result = {}
            while self.data[self.position] != ord("0"):
                key = self.read()
                result[key] = self.read()
            self.position += 1
            return result
        raise ValueError(f"marshal type {code!r} is not part of the record format")

    def _take(self, n: int) -> bytes:
        end = self.position + n
        if n < 0 or end > len(self.data):
            raise ValueError("record cut short")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def _int32(self) -> int:
        return int.from_bytes(self._take(4), "little", signed=True)

    def _long(self) -> int:
        count = self._int32()
        value = 0
        for i in range(abs(count)):
            value |= int.from_bytes(self._take(2), "little") << (15 * i)
        return -value if count < 0 else value
