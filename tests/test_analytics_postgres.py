"""Every analysis on PostgreSQL gives what it gives on SQLite, from the same events.

A throw-away PostgreSQL cluster (``initdb`` / ``pg_ctl``, run as the ``postgres`` user when we
are root) on 127.0.0.1 gets a copy of the SQLite store's ``events`` rows; the analytics tables
are built there by the same engine-neutral SQL (:mod:`trubrics_otel.server.analytics.schema`)
through a small psycopg reader that turns ``?`` into ``%s`` as the contract says. Skipped
without PostgreSQL binaries or psycopg.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from analytics_data import FUNNEL, generate

from trubrics_otel.server import LocalServer
from trubrics_otel.server.analytics import api, schema, topics
from trubrics_otel.server.analytics.dialect import POSTGRESQL
from trubrics_otel.server.analytics.query import AnalyticsQuery

psycopg = pytest.importorskip("psycopg")
INITDB = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
pytestmark = pytest.mark.skipif(INITDB is None, reason="needs PostgreSQL's initdb and pg_ctl")
_QUESTION = re.compile(r"'[^']*'|\?|%")


class PostgresReader:
    """The contract's reader, minimal: ``?`` → ``%s`` and ``%`` → ``%%`` outside string literals."""

    dialect = POSTGRESQL

    def __init__(self, connection) -> None:
        self.connection = connection

    @staticmethod
    def _sql(sql: str) -> str:
        return _QUESTION.sub(lambda m: {"?": "%s", "%": "%%"}.get(m.group(0), m.group(0).replace("%", "%%")), sql)

    def rows(self, sql, params=()):
        with self.connection.cursor() as cursor:
            cursor.execute(self._sql(sql), list(params))
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def execute(self, sql, params=()):
        with self.connection.cursor() as cursor:
            cursor.execute(self._sql(sql), list(params))

    def executemany(self, sql, params):
        with self.connection.cursor() as cursor:
            cursor.executemany(self._sql(sql), [list(p) for p in params])


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def postgres():
    folder = Path(tempfile.mkdtemp(prefix="trubrics-pg-"))  # not under pytest's 0700 folder: postgres reads it
    os.chmod(folder, 0o777)
    data = folder / "data"
    bin_dir = Path(INITDB).parent
    subprocess.run(_as_postgres([str(INITDB), "-D", str(data), "-U", "postgres", "--auth=trust"]),
                   check=True, capture_output=True, timeout=120)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "start",
                                 "-l", str(folder / "log")]), check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


COLUMNS = ("id", "kind", "user_id", "event", "ts_us", "received_us", "properties", "trace_id", "span_id", "thread_id",
           "prompt", "generation", "prompt_event_name", "assistant_id", "model", "latency", "input_tokens",
           "output_tokens", "error", "cost_usd")


@pytest.fixture(scope="module")
def both(postgres, tmp_path_factory):
    plain, llm = generate(users=80)
    with LocalServer(tmp_path_factory.mktemp("sqlite") / "events.sqlite3") as server:
        for kind, events in (("publish_events", plain), ("publish_llm_events", llm)):
            for start in range(0, len(events), 100):
                requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, json=events[start:start + 100],
                              timeout=30).raise_for_status()
        api.set_feedback_events(server.store, {"Thumbs down": 0.0})
        with server.store.connection() as c:
            rows = [tuple(r) for r in c.execute(f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY id")]
        with psycopg.connect(postgres, autocommit=False) as pg:
            db = PostgresReader(pg)
            db.execute("""CREATE TABLE events (id BIGINT PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT NOT NULL,
                event TEXT NOT NULL, ts_us BIGINT NOT NULL, received_us BIGINT NOT NULL, properties TEXT NOT NULL,
                trace_id TEXT, span_id TEXT, thread_id TEXT, prompt TEXT, generation TEXT, prompt_event_name TEXT,
                assistant_id TEXT, model TEXT, latency DOUBLE PRECISION, input_tokens BIGINT, output_tokens BIGINT,
                error TEXT, cost_usd DOUBLE PRECISION)""")
            schema.create(db)
            db.execute("INSERT INTO analytics_feedback_names (event, value) VALUES (?, ?)", ("Thumbs down", 0.0))
            half = len(rows) // 2  # two batches: the second folds into what the first built
            for batch, after in ((rows[:half], 0), (rows[half:], rows[half - 1][0])):
                db.executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                               batch)
                schema.apply(db, after)
            topics.refresh(db)
            pg.commit()
            yield server.store, db


CASES = [("active", {"period": "day"}), ("active", {"period": "week", "model": "gpt-4o"}), ("active", {"period": "month"}),
         ("retention", {"period": "week"}), ("retention", {"period": "day", "event": "Open app"}),
         ("funnel", {"steps": ",".join(FUNNEL), "within": "3d", "breakdown": "property:plan"}),
         ("funnel", {"steps": "Chat opened,Generation", "within": "1h", "breakdown": "model"}),
         ("feedback", {}), ("feedback", {"model": "gpt-4o"}), ("conversations", {}),
         ("conversation_list", {"q": "refund", "only": "abandoned"}), ("topics", {})]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_postgresql_answers_what_sqlite_does(both, name, params):
    store, pg = both
    want = api.answer(store, name, params)
    got = api.ANALYSES[name](pg, api.query_from(params), params)
    assert _rounded(got) == _rounded(want)


def test_the_dialect_fragments_run_on_postgresql(both):
    _, pg = both
    assert pg.rows(f"SELECT {pg.dialect.month_start_us('1772668800000000')}") == [(1772323200000000,)]  # 5 → 1 Mar 2026
    assert pg.rows(f"SELECT {pg.dialect.json_text('?', 'a.b')}", ['{"a.b": 2}']) == [("2",)]
    assert topics.topics(pg, AnalyticsQuery())["prompts"] > 0


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value

