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


# --- the store's two engines: SQLite (a file) and PostgreSQL (a real throwaway cluster) ---------

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """One real PostgreSQL cluster for the whole run (initdb + pg_ctl on a free loopback port),
    with a migrated template database each test's database is copied from."""
    import postgres_cluster as pg

    reason = pg.unavailable()
    if reason:
        pytest.skip(reason)
    with pg.PostgresCluster() as cluster:
        from trubrics_otel.server.store import Store

        template = Store(cluster.create_database())
        template.count()  # migrated once; each test's CREATE DATABASE ... TEMPLATE copies it
        template.close()
        cluster.template = template.location.rsplit("/", 1)[-1]
        yield cluster


def _database(engine: str, directory: Path, request: pytest.FixtureRequest) -> str:
    if engine == "sqlite":
        return str(directory / "events.sqlite3")
    return request.getfixturevalue("postgres_cluster").create_database(template=True)


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store for each engine: a SQLite path, or a new PostgreSQL database's URL."""
    return _database(request.param, tmp_path, request)


@pytest.fixture(scope="module", params=ENGINES)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """:func:`db_url` shared by a module's tests."""
    return _database(request.param, tmp_path_factory.mktemp("db"), request)
