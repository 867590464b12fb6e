"""The optional orjson accelerator writes what the stdlib writes, in meaning, for every value.

Request bodies and the redaction policy's limit checks go through
``trubrics_otel.translate.fastjson``; with ``orjson`` installed (a core dependency on CPython) it does
the work. Here the module is loaded twice, with and without orjson, and both are fed the
same values: plain JSON, values only the stdlib knows how to refuse or write, and the events
the encoder really produces.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import sys
import uuid
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trubrics_otel.translate import fastjson
from trubrics_otel.translate.jsonable import to_jsonable

pytest.importorskip("orjson")


def _without_orjson() -> ModuleType:
    """A second copy of the module, loaded as if orjson were not installed."""
    saved = sys.modules.get("orjson")
    sys.modules["orjson"] = None  # type: ignore[assignment]  # makes `import orjson` fail
    try:
        spec = importlib.util.find_spec("trubrics_otel.translate.fastjson")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        if saved is None:
            del sys.modules["orjson"]
        else:
            sys.modules["orjson"] = saved
    return module


STDLIB = _without_orjson()
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


def test_the_two_copies_differ_in_their_engine_only() -> None:
    assert fastjson.ACCELERATED and not STDLIB.ACCELERATED


@settings(max_examples=400, deadline=None)
@given(plain)
def test_plain_json_means_the_same(value: object) -> None:
    fast, slow = fastjson.dumps(value), STDLIB.dumps(value)
    assert json.loads(fast) == json.loads(slow)
    assert json.loads(fastjson.measure(value)) == json.loads(STDLIB.measure(value))


@pytest.mark.parametrize("value", [
    {"big": 2**70},                       # beyond 64 bits: orjson refuses, the stdlib writes it
    {1: "int key"},                       # non-string keys: the stdlib's str(key)
    {"when": dt.datetime(2024, 1, 2, 3, 4, 5, 6)},  # stdlib refuses: so must we
    {"id": uuid.UUID(int=5)},
    {"sub": type("Str", (str,), {})("x")},
    {"text": "é 漢字 \u2028 \"quoted\" \\ \x00"},
])
def test_values_at_the_edges_are_written_or_refused_alike(value: dict) -> None:
    """Where the stdlib refuses a value, orjson refuses it too or writes the form the
    encoder documents for it (:func:`~trubrics_otel.translate.jsonable.to_jsonable`)."""
    try:
        slow = json.loads(STDLIB.dumps(value))
    except TypeError:
        try:
            fast = fastjson.dumps(value)
        except TypeError:
            return
        assert json.loads(fast) == to_jsonable(value)
        return
    assert json.loads(fastjson.dumps(value)) == slow


def test_a_limit_check_refuses_at_least_what_the_stdlib_check_refuses() -> None:
    """A refusal sends the policy down its careful path: orjson may refuse more, never less."""
    for value in ({"d": dt.date(2024, 1, 1)}, {"s": {1, 2}}, {"o": object()}):
        with pytest.raises((TypeError, ValueError)):
            STDLIB.measure(value)
        with pytest.raises((TypeError, ValueError)):
            fastjson.measure(value)
    for value in ({"x": 2**70}, {1: 2}):  # the stdlib writes these; orjson sends them the careful way
        STDLIB.measure(value)
        with pytest.raises(TypeError):
            fastjson.measure(value)


def test_nan_is_never_written_as_invalid_json_by_orjson() -> None:
    assert json.loads(fastjson.dumps({"x": math.nan})) == {"x": None}


def test_encoded_llm_events_post_the_same_body() -> None:
    import logging

    from trubrics_otel.capture.arguments import llm_body
    from trubrics_otel.translate.encoder import encode_record
    from trubrics_otel.translate.tracked import LLM, VERSION

    body = llm_body("u1", "What is 漢字?" * 20, "An answer…" * 50, "Prompt", "Generation", "gpt-4o",
                    {"seq": 1, "cost": 0.002, "tags": ["a", "b"]}, None, 1.25, "t-1",
                    logging.getLogger("test"))
    events = [encode_record((VERSION, LLM, 2**127 + i, 2**63 + i, 0, None, body))[1] for i in range(3)]
    assert json.loads(fastjson.dumps(events)) == json.loads(STDLIB.dumps(events))


@settings(max_examples=300, deadline=None)
@given(plain, st.sampled_from(["", " ", "\n", "\ufeff"]), st.sampled_from(["", " ", "x", "\t\n"]))
def test_loads_reads_what_json_loads_reads_and_refuses_what_it_refuses(value, before, after):
    """``fastjson.loads`` calls json's own scanner directly; every text must read, or fail,
    exactly as ``json.loads`` — leading space, a BOM, trailing data included."""
    text = before + json.dumps(value, ensure_ascii=False) + after
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)) as raised:
            fastjson.loads(text)
        assert str(raised.value) == str(exc)
    else:
        assert fastjson.loads(text) == expected


@pytest.mark.parametrize("text", ["", "[", "NaN", "[Infinity, -Infinity]", "123456789012345678901234567890",
                                  "1e400", '"\\ud800"', '{"a": 1, "a": 2}', "[1] [2]", "tru", '"x'])
def test_loads_at_the_edges(text):
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc), match=None) as raised:
            fastjson.loads(text)
        assert str(raised.value) == str(exc)
    else:
        got = fastjson.loads(text)
        assert repr(got) == repr(expected) and type(got) is type(expected)


def test_the_default_install_is_the_fast_one() -> None:
    """orjson is a core dependency on CPython: ``pip install trubrics-otel`` gets the figures the
    benchmarks show, with no extra to remember (the stdlib path stays for other Pythons)."""
    import importlib.metadata

    requirements = importlib.metadata.requires("trubrics-otel") or []
    core = [r for r in requirements if r.startswith("orjson") and "extra ==" not in r]
    assert core, requirements
    assert fastjson.ACCELERATED


@pytest.mark.parametrize("text", [
    b'{"a":1,"b":"x"}', b'{"a":{"b":1}}', b'{"a":[1,2]}', b'{"a":"{"}', b'{"a":"["}', b"[1]", b"{}",
    b'"text"', b"1", b"", b'{"a":1}{', b"[{}]",
])
def test_brackets_counts_every_brace_and_bracket(text):
    """The depth checks (redaction policy, validation) take ``brackets`` for the two counts."""
    assert fastjson.brackets(text) == text.count(b"{") + text.count(b"[")


@given(st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b"a", b":", b","]), max_size=12))
@settings(max_examples=300, deadline=None)
def test_brackets_counts_any_text(pieces):
    text = b"".join(pieces)
    assert fastjson.brackets(text) == text.count(b"{") + text.count(b"[")
