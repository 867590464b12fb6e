"""SDK objects written as their Python ``repr`` where a reply's text belongs, read back as data.

Some instrumentations ``str()`` a provider SDK object into a message's text part instead of
its text: OTel contrib's OpenAI Agents instrumentation writes a chat completions tool call as
the message's dict repr, a Responses API tool call as ``ResponseFunctionToolCall(...)`` and a
streamed reply as the whole response's dict repr. Read without evaluating anything::

    python_literal("ResponseFunctionToolCall(arguments='{}', name='f', type='function_call')")
    # {"arguments": "{}", "name": "f", "type": "function_call"}
    python_literal("Echo: hi")   # None: not a repr
    looks_like_repr(text)        # the cheap test a reply's text passes first (hot path)
"""

from __future__ import annotations

import ast
from typing import Any

MAX_REPR_CHARS = 200_000
"""Longer texts are left as they are: parsing is for replies, not for documents."""


def looks_like_repr(text: str) -> bool:
    """``{'...': ...}`` or ``Name(key=...)``: worth :func:`python_literal`. A few character
    tests, as every reply's text passes here."""
    if len(text) < 4 or len(text) > MAX_REPR_CHARS:
        return False
    first, last = text[0], text[-1]
    if first == "{":
        return last == "}" and text[1] == "'"
    return last == ")" and first.isupper() and "=" in text and text.partition("(")[0].isidentifier()


def python_literal(text: str) -> Any:
    """The data a repr of dicts, lists, constants and ``Name(key=value, ...)`` objects (as
    dicts of their keywords) spells, or ``None`` when the text is anything else."""
    if not looks_like_repr(text):
        return None
    try:
        return _value(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict):
        return {_value(k) if k is not None else None: _value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _value(node.operand)
        if isinstance(value, (int, float)):
            return -value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        return {k.arg: _value(k.value) for k in node.keywords if k.arg is not None}
    raise ValueError(f"not a literal: {type(node).__name__}")
