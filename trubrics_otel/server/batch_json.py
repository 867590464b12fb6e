"""A request body as JSON with the standard library, element by element when the whole cannot be read.

::

    items = parse_batch(b'[{"user_id": "u1"}, [[[...too deep...]]]]')
    # [{"user_id": "u1"}, Unparsable("nested deeper than 100 levels")]

The careful reading of the ingestion API (:mod:`.validation` checks what it gives): Python's
parser, whose answers (integers of any size, every depth it can hold) are the reference the
quick reading with ``orjson`` matches. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100  # levels of objects and arrays in one event; deeper is refused, not half-stored


class Unparsable:
    """An element of a batch that could not be parsed on its own (nested too deeply)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def parse_batch(body: bytes | str) -> Any:
    """The request body as JSON. Raises ``ValueError`` (also ``UnicodeDecodeError``) for text
    that is not JSON; an array with elements Python's parser refuses (too deep, an integer
    of 5,000 digits, a syntax error in one of them) is parsed element by element, those as
    :class:`Unparsable`, so their neighbours are still stored."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (RecursionError, ValueError) as exc:
        problem = exc
    try:
        elements = _array_elements(text)
    except ValueError:
        if isinstance(problem, RecursionError):
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
        raise problem from None
    items: list[Any] = []
    for element in elements:
        try:
            items.append(json.loads(element, parse_constant=_reject_constant))
        except RecursionError:
            items.append(Unparsable(f"nested deeper than {MAX_DEPTH} levels"))
        except ValueError as exc:
            items.append(Unparsable(f"is invalid JSON: {exc}"))
    return items


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def _array_elements(text: str) -> list[str]:
    """The texts of a JSON array's top-level elements (strings skipped whole), or ValueError."""
    elements: list[str] = []
    depth, start = 0, None
    for token in _TOKENS.finditer(text):
        kind = token.group()
        if kind in "[{":
            depth += 1
            if depth == 1:
                if kind != "[" or text[:token.start()].strip():
                    raise ValueError("the body is not a JSON array")
                start = token.end()
        elif kind in "]}":
            depth -= 1
            if depth == 0:
                if text[token.end():].strip():
                    raise ValueError("extra data after the JSON array")
                if text[start:token.start()].strip():
                    elements.append(text[start:token.start()])
                return elements
        elif kind == "," and depth == 1:
            elements.append(text[start:token.start()])
            start = token.end()
    raise ValueError("the JSON array is not closed")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
