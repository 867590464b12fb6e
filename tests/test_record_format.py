"""Stored records outlive a Python upgrade, and a format this release does not know is kept.

The journal and the spool hold ``track()`` records as bytes (``translate/record_codec.py``):
JSON when orjson takes them (read back by the stdlib too), else a format tag and then
marshal's version-2 layout, read by the C ``marshal`` or, where that fails, by a
pure-Python reader. Here records written by one interpreter are read by another
(every other CPython 3 found on the machine), records from before the tag are still read,
and bytes in an unknown format — a newer release's — are refused loudly and kept on disk.
"""

from __future__ import annotations

import json
import logging
import marshal
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API_KEY
from hypothesis import given, settings
from hypothesis import strategies as st

from trubrics_otel.deliver.exporter import TrubricsSpanExporter
from trubrics_otel.deliver.journal import Journal
from trubrics_otel.deliver.journal_recovery import recover
from trubrics_otel.deliver.refused import read_refused
from trubrics_otel.deliver.spool import SPANS_PATH, Spool
from trubrics_otel.translate import record_codec
from trubrics_otel.translate.record_codec import (
    FORMAT,
    JSON_FORMAT,
    UnknownFormat,
    decode,
    encode,
    read_marshal,
)
from trubrics_otel.translate.tracked import EVENT, LLM, VERSION, from_bytes, to_bytes

CODEC = Path(record_codec.__file__)
texts = st.text(max_size=40)  # surrogates included: marshal stores them, so must we
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(texts, inner, max_size=4) | st.frozensets(st.integers(), max_size=3),
    max_leaves=25,
)
RECORDS = [
    (VERSION, EVENT, 2**127 + 5, 2**63 + 7, 0, None, ("u1", "Sign up", {"plan": "pro", "seats": 3}, 1_700_000_000_123_456_789)),
    (VERSION, LLM, 1, 2, 3, {"user.id": "u2"}, ("u2", "Qu'est-ce que 漢字 ?" * 20, "Réponse…" * 60, "Prompt",
     "Generation", "gpt-4o", {"cost": 0.002, "tags": ["a", "b"], "n": -(2**70)}, 1_700_000_000_000_000_000,
     1.25, "t-42", {"gen_ai.usage.input_tokens": 12})),
]


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_pure_reader_reads_what_marshal_writes_at_every_version(value):
    for version in range(5):  # 0-1: no binary floats; 3-4: back-references, short strings
        data = marshal.dumps(value, version)
        assert read_marshal(data) == marshal.loads(data)


def test_records_round_trip_in_the_marshal_format_with_the_tag_first():
    for record in RECORDS:
        payload = encode(record)
        assert payload[0] == FORMAT
        assert from_bytes(payload) == record
        assert read_marshal(payload[1:]) == record  # what a Python with another marshal reads


def test_the_json_format_is_read_with_or_without_orjson(monkeypatch):
    """What the hot path wrote with orjson is read back after orjson is gone (stdlib json)."""
    pytest.importorskip("orjson")
    payload = to_bytes(RECORDS[0])
    assert payload[0] == JSON_FORMAT
    assert _as_tuples(from_bytes(payload)) == RECORDS[0]
    monkeypatch.setattr(record_codec, "read_json", json.loads)
    assert _as_tuples(from_bytes(payload)) == RECORDS[0]
    assert from_bytes(payload[:-1]) is None  # cut short: damaged, not guessed


def _as_tuples(record):
    """A record read from JSON holds its body as a list: the same fields."""
    return (*record[:-1], tuple(record[-1]))


def test_records_from_before_the_tag_are_still_read():
    """The previous release stored a bare ``marshal.dumps(record)`` (version 4, references)."""
    for record in RECORDS:
        legacy = marshal.dumps(record)
        assert from_bytes(legacy) == record
        assert read_marshal(legacy) == record


def test_a_python_whose_marshal_cannot_read_it_still_does(monkeypatch):
    def changed(data):
        raise ValueError("bad marshal data (unknown type code)")

    monkeypatch.setattr(record_codec, "_loads", changed)
    assert [decode(encode(r)) for r in RECORDS] == RECORDS


def test_an_unknown_format_is_refused_not_guessed():
    with pytest.raises(UnknownFormat) as refused:
        decode(bytes([FORMAT + 1]) + marshal.dumps(RECORDS[0], 2))
    assert "format 3" in str(refused.value)
    with pytest.raises(UnknownFormat):  # a newer record layout inside a known format
        from_bytes(encode((VERSION + 1, *RECORDS[0][1:])))


_OTHER_SIDE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("record_codec", sys.argv[1])
codec = importlib.util.module_from_spec(spec); spec.loader.exec_module(codec)
job = json.load(sys.stdin)
read = [repr(codec.decode(bytes.fromhex(h))) for h in job["read"]]
pure = [repr(codec.read_marshal(bytes.fromhex(h)[1:])) for h in job["read"]]
json_read = [repr(codec.decode(bytes.fromhex(h))) for h in job["json"]]
written = [codec.encode(eval(r)).hex() for r in job["write"]]
print(json.dumps({"read": read, "pure": pure, "json": json_read, "written": written}))
"""


def _other_pythons() -> list[str]:
    """Other CPython 3.10+ interpreters on PATH or under pyenv, one per version."""
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = {}
    for version in ("3.10", "3.12", "3.13", "3.14"):
        candidates = [shutil.which(f"python{version}")]
        candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python3"))
        for path in filter(None, candidates):
            if version == ours or version in found:
                continue
            probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                   capture_output=True, text=True)
            if probe.returncode == 0:
                found[version] = path
    return list(found.values())


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no other CPython 3 on PATH (python3.10/3.12/3.13/3.14)"))])
def test_written_by_one_python_read_by_another(python):
    """Records spooled under this Python are read under another, and the other way round."""
    in_json = [p for p in map(to_bytes, RECORDS) if p[0] == JSON_FORMAT]
    job = {"read": [encode(r).hex() for r in RECORDS], "write": [repr(r) for r in RECORDS],
           "json": [p.hex() for p in in_json]}
    done = subprocess.run([python, "-c", _OTHER_SIDE, str(CODEC)], input=json.dumps(job),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["read"] == result["pure"] == [repr(r) for r in RECORDS]
    assert result["json"] == [repr(decode(p)) for p in in_json]
    assert [from_bytes(bytes.fromhex(h)) for h in result["written"]] == RECORDS


def test_a_newer_format_in_the_spool_is_kept_and_reported_not_dropped(endpoint, caplog):
    """A rollback meets a newer release's records: the others are sent, those are kept aside."""
    exporter = TrubricsSpanExporter(api_key=API_KEY, host=endpoint.url)
    directory = exporter._delivery.directory
    future = bytes([FORMAT + 1]) + b"a record only a newer release can read"
    spool = Spool(directory)  # what an earlier process left
    spool.append(SPANS_PATH, [to_bytes(RECORDS[0]), future, to_bytes(RECORDS[1])])
    spool.close()
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        exporter.force_flush(10_000)
        exporter.shutdown()
    assert [e["event"] for e in endpoint.events()] == ["Sign up"]
    assert [e["user_id"] for e in endpoint.events("publish_llm_events")] == ["u2"]
    [kept] = directory.glob("refused-*.records")
    assert read_refused(kept) == [future]
    assert any(str(kept) in r.getMessage() and "cannot read" in r.getMessage() for r in caplog.records)


def test_a_journal_in_a_newer_format_is_kept_and_reported(tmp_path, caplog):
    journal = Journal(tmp_path, size=64 * 1024)
    journal.append(to_bytes(RECORDS[0]))
    file = journal.file
    journal._pages.forget()
    journal._mm[8:12] = (99).to_bytes(4, "little")  # the version field, as a newer release writes it
    journal._mm[24:28] = __import__("zlib").crc32(bytes(journal._mm[:24])).to_bytes(4, "little")
    journal._mm.flush()
    journal.after_fork()  # let go of the file without the clean close (which would delete it)
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        assert recover(tmp_path) == []
    assert file.exists()
    assert any("newer than this trubrics-otel" in r.getMessage() for r in caplog.records)
