"""The install command printed for a missing extra is one a newcomer can paste: trubrics-otel is
not on the package index, so it names what this copy was installed from (pip's record,
``direct_url.json``), read by the real ``importlib.metadata`` from a dist-info on ``sys.path``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from trubrics_otel import extras


def installed_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: dict | None) -> str:
    info = tmp_path / "site" / "trubrics_otel-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trubrics-otel\nVersion: 0.1.0\n")
    (info / "INSTALLER").write_text("pip\n")
    if record is not None:
        (info / "direct_url.json").write_text(json.dumps(record))
    monkeypatch.syspath_prepend(str(info.parent))
    extras._installed_from.cache_clear()
    try:
        return extras.install_command("grpc")
    finally:
        extras._installed_from.cache_clear()


@pytest.mark.parametrize(("record", "command"), [
    ({"url": "file:///home/me/dist/trubrics_otel-0.1.0-py3-none-any.whl", "archive_info": {}},
     "pip install '/home/me/dist/trubrics_otel-0.1.0-py3-none-any.whl[grpc]'"),
    ({"url": "file:///home/me/trubrics%20otel", "dir_info": {"editable": True}}, "pip install -e '/home/me/trubrics otel[grpc]'"),
    ({"url": "file:///home/me/trubrics-otel", "dir_info": {}}, "pip install '/home/me/trubrics-otel[grpc]'"),
    ({"url": "https://github.com/trubrics/trubrics-otel", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
     "pip install 'trubrics-otel[grpc] @ git+https://github.com/trubrics/trubrics-otel'"),
    (None, "pip install 'trubrics-otel[grpc]'"),  # from an index: no record
], ids=["wheel", "editable clone", "clone", "git", "index"])
def test_the_command_names_where_this_copy_came_from(tmp_path, monkeypatch, record, command):
    assert installed_from(tmp_path, monkeypatch, record) == command


def test_the_command_for_this_install_names_a_source_that_exists():
    """This test's copy is never from an index (an editable clone in CI, or a wheel): the command
    names that clone or wheel, and it is there."""
    argv = shlex.split(extras.install_command("zero-code"))
    source = Path(argv[-1].removesuffix("[zero-code]"))
    assert argv[:2] == ["pip", "install"] and argv[-1].endswith("[zero-code]"), argv
    assert (source / "pyproject.toml").is_file() or (source.suffix == ".whl" and source.is_file()), argv
