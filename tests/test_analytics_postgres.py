"""Every analysis on PostgreSQL gives what it gives on SQLite, from the same events.

The same batches go through the ingestion API of two local servers, one on SQLite and one on a
throw-away PostgreSQL database (the ``postgres_cluster`` fixture: ``initdb`` / ``pg_ctl`` on
127.0.0.1); each maintains its analytics tables in its own insert transactions by the same
engine-neutral SQL (:mod:`trubrics_otel.server.analytics.schema`). Skipped without PostgreSQL
binaries or psycopg.
"""

from __future__ import annotations

import pytest
import requests
from analytics_data import FUNNEL, generate, rounded

from trubrics_otel.server import LocalServer
from trubrics_otel.server.analytics import api, topics
from trubrics_otel.server.store.dialect import POSTGRESQL
from trubrics_otel.server.analytics.query import AnalyticsQuery

pytest.importorskip("psycopg")


def _load(server, plain, llm) -> None:
    """The same batches, through the ingestion API, as an app would send them."""
    for kind, events in (("publish_events", plain), ("publish_llm_events", llm)):
        for start in range(0, len(events), 100):
            requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, json=events[start:start + 100],
                          timeout=30).raise_for_status()
    api.set_feedback_events(server.store, {"Thumbs down": 0.0})


@pytest.fixture(scope="module")
def both(postgres_cluster, tmp_path_factory):
    """One SQLite store and one PostgreSQL store holding the same events, each maintaining its
    analytics tables in its own insert transactions."""
    plain, llm = generate(users=80)
    with LocalServer(tmp_path_factory.mktemp("sqlite") / "events.sqlite3") as sqlite_server, \
            LocalServer(postgres_cluster.create_database(template=True)) as postgres_server:
        for server in (sqlite_server, postgres_server):
            _load(server, plain, llm)
        yield sqlite_server.store, postgres_server.store


CASES = [("active", {"period": "day"}), ("active", {"period": "week", "model": "gpt-4o"}), ("active", {"period": "month"}),
         ("retention", {"period": "week"}), ("retention", {"period": "day", "event": "Open app"}),
         ("funnel", {"steps": ",".join(FUNNEL), "within": "3d", "breakdown": "property:plan"}),
         ("funnel", {"steps": "Chat opened,Generation", "within": "1h", "breakdown": "model"}),
         ("feedback", {}), ("feedback", {"model": "gpt-4o"}), ("conversations", {}),
         ("conversation_list", {"q": "refund", "only": "abandoned"}), ("topics", {})]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_postgresql_answers_what_sqlite_does(both, name, params):
    sqlite_store, postgres_store = both
    assert postgres_store.engine.name == "postgresql"
    assert rounded(api.answer(postgres_store, name, params)) == rounded(api.answer(sqlite_store, name, params))


def test_the_dialect_fragments_run_on_postgresql(both):
    _, postgres_store = both
    with postgres_store.connection() as pg:
        assert pg.dialect is POSTGRESQL
        assert pg.rows(f"SELECT {pg.dialect.month_start_us('1772668800000000')}") == [(1772323200000000,)]  # 5 → 1 Mar 2026
        assert pg.rows(f"SELECT {pg.dialect.json_text('?', 'a.b')}", ['{"a.b": 2}']) == [("2",)]
        assert topics.topics(pg, AnalyticsQuery())["prompts"] > 0
