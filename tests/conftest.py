"""Shared fixtures: a real local Trubrics endpoint and clients that are always closed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from trubrics_endpoint import TrubricsEndpoint  # noqa: E402

from trubrics_otel import Trubrics  # noqa: E402

API_KEY = "sk-test-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def load_quickstart() -> Any:
    """``examples/quickstart.py`` as a module: tests drive its simulated chat app."""
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(autouse=True)
def private_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test spools into its own directory (subprocesses inherit it), never ~/.cache."""
    directory = tmp_path / "spool"
    monkeypatch.setenv("TRUBRICS_SPOOL", str(directory))
    return directory


@pytest.fixture
def endpoint() -> Iterator[TrubricsEndpoint]:
    with TrubricsEndpoint() as server:
        yield server


@pytest.fixture
def make_client(endpoint: TrubricsEndpoint) -> Iterator[Callable[..., Trubrics]]:
    """``make_client(**kwargs)``: a Trubrics client aimed at the local endpoint."""
    clients: list[Trubrics] = []

    def make(**kwargs: Any) -> Trubrics:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("host", endpoint.url)
        kwargs.setdefault("flush_interval", 0.05)
        client = Trubrics(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)
