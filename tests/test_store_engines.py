"""The store's two engines: chosen by the location, the same answers from the same events,
versioned schemas, and one clear line when something is wrong.

PostgreSQL runs for real: a throwaway cluster (tests/postgres_cluster.py, the session fixture
``postgres_cluster`` in conftest); these tests skip, saying why, where its binaries are absent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest

from old_schema import schema_before
from trubrics_otel.extras import install_command
from trubrics_otel.server import LocalServer
from trubrics_otel.server.store import SchemaTooNew, Store, StoreError, open_store

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
TRACE = "cd" * 16


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def sample() -> tuple[list[dict], list[dict]]:
    """Users, sessions (a gap of 2 h), threads with feedback, a trace tree, odd text."""
    events = [{"user_id": f"user-{i % 3}", "event": ["Page view", "Search", "Thumbs up"][i % 3],
               "timestamp": at(i * 7 + (120 if i > 20 else 0)),
               "properties": {"n": i, **({"$thread_id": f"t-{i % 4}"} if i % 3 == 2 else {})}}
              for i in range(40)]
    events.append({"user_id": "Ünïcode 50%_user", "event": "Agent run", "timestamp": at(3),
                   "properties": {"$trace_id": TRACE, "$span_id": "00000000000000a1", "it's": "quoted ?"}})
    llm = [{"user_id": f"user-{i % 3}", "prompt": f"How do I {['refund', 'rebook', 'cancel'][i % 3]} order {i}?",
            "generation": f"Answer {i}: it's 100% fine, see docs.example.com/re-book", "thread_id": f"t-{i % 4}", "timestamp": at(i * 5 + 1),
            "latency": 0.5 + i / 10, "assistant_id": "gpt-4o" if i % 2 else "claude",
            "properties": {"model": "gpt-4o" if i % 2 else "claude", "input_tokens": 10 + i, "output_tokens": 5,
                           "cost_usd": 0.001 * i, **({"$trace_id": TRACE, "$span_id": f"{i:016x}",
                                                      "$parent_span_id": "00000000000000a1"} if i < 3 else {}),
                           **({"error.type": "RateLimitError"} if i == 7 else {})}}
           for i in range(30)]
    return events, llm


READS = [
    "/api/events?limit=500", "/api/events?q=refund", "/api/events?q=order%201", "/api/events?q=it%27s",
    "/api/events?q=example", "/api/events?q=re-bo", "/api/events?q=%22%3F%21",  # words inside a host, a path
    "/api/events?q=answer.docs", "/api/events?q=com%20docs.example",  # a word's parts apart in the event
    "/api/events?user=user-1&kind=llm", "/api/events?event=Prompt", "/api/events?limit=7",
    "/api/users", "/api/users?q=%C3%BCN", "/api/users?q=50%25", "/api/users/user-2", "/api/sessions",
    "/api/sessions?user=user-0", "/api/threads", "/api/threads/t-1", "/api/traces/" + TRACE, "/api/filters",
    "/api/analytics?by=hour&by_model=1", "/api/analytics?user=user-1&by=day", "/api/stats",
    # the product analyses, through the store's own connection on each engine
    "/api/active?period=day", "/api/active?period=month", "/api/retention?period=week",
    "/api/funnel?steps=Prompt,Generation&within=1d", "/api/feedback", "/api/conversations",
    "/api/topics", "/api/conversation_list",
]


def answers(location: str) -> dict[str, object]:
    events, llm = sample()
    with LocalServer(location, session_timeout_s=3600) as server:
        server.store.insert(events, llm)
        assert server.store.insert(events[-1:], llm[:3]) == (0, 4)  # a retried batch: stored once
        result = {}
        for path in READS:
            name, _, query = path.partition("?")
            params = dict(part.split("=", 1) for part in query.split("&")) if query else {}
            from urllib.parse import unquote

            response = server.query(name, {k: unquote(v) for k, v in params.items()})
            assert response.status == 200, (path, response.body)
            result[path] = json.loads(response.payload())
        return result


def _no_times(value: object) -> object:
    """received_at differs between two loads; the rest must not (sums of floats to 12 digits:
    the engines add in different orders)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _no_times(v) for k, v in value.items() if k != "received_at"}
    if isinstance(value, list):
        return [_no_times(v) for v in value]
    return value


def test_both_engines_give_the_same_answers(tmp_path, postgres_cluster):
    """Every read of the API (search, sessions, users, threads, traces, analytics) answers the
    same JSON from SQLite and from PostgreSQL given the same events."""
    sqlite = _no_times(answers(str(tmp_path / "events.sqlite3")))
    postgres = _no_times(answers(postgres_cluster.create_database(template=True)))
    assert sqlite["/api/events?q=refund"], "the search must find something to compare"
    assert sqlite["/api/events?q=example"], "a word inside a host name is a word"
    assert sqlite["/api/events?q=answer.docs"], "a word's parts need not be adjacent in the event"
    assert sqlite["/api/users?q=50%25"], "a user id with % is found as text"
    for path in READS:
        assert postgres[path] == sqlite[path], path


def test_the_location_chooses_the_engine(tmp_path, postgres_cluster):
    assert Store(tmp_path / "a.sqlite3").engine.name == "sqlite"
    assert open_store(f"sqlite:///{tmp_path}/b.sqlite3").path == tmp_path / "b.sqlite3"
    store = open_store(postgres_cluster.url("postgres").replace("postgres@", "postgres:pw@"))
    assert store.engine.name == "postgresql" and "pw" not in repr(store) and "pw" not in store.location
    with pytest.raises(StoreError, match="unsupported database URL mysql://"):
        Store("mysql://root@localhost/db")


def test_trubrics_db_url_is_the_default_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUBRICS_DB_URL", f"sqlite:///{tmp_path}/env.sqlite3")
    assert Store().path == tmp_path / "env.sqlite3"


def test_without_the_extra_a_postgresql_url_names_it():
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from trubrics_otel.server.store import Store, StoreError\n"
            "try:\n    Store('postgresql://u@127.0.0.1:1/db')\nexcept StoreError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert install_command("postgres") in out.stdout, out.stderr


def test_a_newer_schema_is_refused_with_one_line(db_url):
    """A database migrated by a newer trubrics-otel: neither the server nor a reader touches it."""
    store = Store(db_url)
    store.count()
    with store.connection() as c:
        c.execute("INSERT INTO schema_version VALUES (999, 0)")
        if store.engine.name == "sqlite":
            c.commit()
    store.close()
    with pytest.raises(SchemaTooNew, match="schema version 999, newer than this trubrics-otel"):
        Store(db_url).count()
    out = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "events", "--db", db_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "schema version 999" in out.stderr and "upgrade trubrics-otel" in out.stderr


def test_a_refusal_names_the_variable_that_named_the_store(tmp_path):
    """A store named by TRUBRICS_DB (a plain path) and refused: the line says where it was named."""
    path = tmp_path / "newer.sqlite3"
    store = Store(str(path))
    store.count()
    with store.connection() as c:
        c.execute("INSERT INTO schema_version VALUES (999, 0)")
        c.commit()
    store.close()
    env = {**os.environ, "TRUBRICS_DB": str(path)}
    env.pop("TRUBRICS_DB_URL", None)
    out = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "events"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and f": TRUBRICS_DB {path}: " in out.stderr, out.stderr


def test_reading_commands_take_db_url(db_url):
    events, llm = sample()
    store = Store(db_url)
    store.insert(events, llm)
    store.close()
    for command, key in (("events", "event"), ("users", "user_id"), ("threads", "thread_id"),
                         ("sessions", "session_id"), ("stats", None)):
        out = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", command, "--db", db_url, "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        if key is None:
            assert rows["totals"]["events"] == len(events) + len(llm)
        else:
            assert rows and all(key in row for row in rows), command


def test_a_database_that_does_not_answer_is_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://trubrics:hunter2@127.0.0.1:{port}/trubrics"
    for argv in (["serve", "--port", "0", "--no-grpc"], ["events"], ["stats"]):
        out = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", *argv, "--db", url],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (argv, out.stderr)
        assert "unavailable" in out.stderr and "hunter2" not in out.stderr and "***" in out.stderr


@pytest.mark.parametrize("database, says", [
    ("postgres@{host}/no_such_db", 'database "no_such_db" does not exist'),
    ("nobody:hunter2@{host}/postgres", 'role "nobody" does not exist'),
], ids=["missing database", "unknown login"])
def test_a_database_that_refuses_us_says_why_in_one_line(postgres_cluster, database, says):
    """The server's own answer, not the pool's "couldn't get a connection after 2.00 sec"."""
    url = "postgresql://" + database.format(host=f"127.0.0.1:{postgres_cluster.port}")
    for argv in (["serve", "--port", "0", "--no-grpc"], ["events"]):
        out = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", *argv, "--db", url],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (argv, out.stderr)
        assert says in out.stderr and "couldn't get a connection" not in out.stderr, out.stderr
        assert "hunter2" not in out.stderr


def test_readers_get_positional_rows_and_the_dialect(db_url):
    """The contract with analyses (STORE_CONTRACT.md): ``store.reader()`` gives ``rows(sql,
    params)`` as plain tuples, ``?`` placeholders, ``%`` usable in LIKE, and ``dialect``."""
    events, llm = sample()
    store = Store(db_url)
    store.insert(events, llm)
    with store.reader() as db:
        d = db.dialect
        rows = db.rows("SELECT user_id, COUNT(*) FROM events WHERE user_id LIKE ? AND event LIKE 'Page%' "
                       "GROUP BY user_id ORDER BY user_id", ["user-%"])
        assert rows == [("user-0", 14)] and type(rows[0]) is tuple
        assert db.rows(f"SELECT {d.json_text('properties', 'n')} FROM events WHERE kind = 'event' "
                       "ORDER BY id LIMIT 2") == [("0",), ("1",)]
        quoted_key = d.json_text("properties", "it's")
        assert db.rows(f"SELECT {quoted_key} FROM events WHERE user_id LIKE 'Ü%'") \
            == [("quoted ?",)]
        march = int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp() * 1e6)
        assert db.rows(f"SELECT DISTINCT {d.month_start_us('ts_us')} FROM events") == [(march,)]
        assert d.name == store.engine.name
    store.close()


class _BatchSizes:
    """A store hook keeping its own table: how many rows each insert's transaction added."""

    def __init__(self) -> None:
        self.fail = False

    def ensure(self, connection) -> None:
        connection.execute("CREATE TABLE IF NOT EXISTS hook_batches (rows_added BIGINT NOT NULL)")

    def apply(self, connection, after_id: int) -> None:
        if self.fail:
            raise RuntimeError("hook failed")
        connection.execute("INSERT INTO hook_batches SELECT COUNT(*) FROM events WHERE id > ?", [after_id])


def test_a_hooks_tables_take_each_event_once_and_a_failure_loses_nothing(db_url, caplog):
    """The events commit alone, the hook takes them in the fold before the next read (both
    engines fold later, in bulk); a fold that fails leaves them stored and pending, and the
    next read folds them."""
    hook = _BatchSizes()
    store = Store(db_url, hooks=[hook])
    try:
        events = [{"user_id": "u", "event": "e", "timestamp": at(i),
                   "properties": {"$trace_id": TRACE, "$span_id": f"{i:016x}"}} for i in range(20)]
        assert store.insert(events[:10]) == (10, 0)
        assert store.count()["events"] == 10
        assert store.insert(events[:12]) == (2, 10)  # the hook sees only the new rows
        assert store.count()["events"] == 12
        hook.fail = True
        assert store.insert(events[12:20]) == (8, 0)  # acknowledged: committed
        with caplog.at_level("ERROR", logger="trubrics.server"):
            assert store.count()["events"] == 12  # what was folded, nothing half-folded
        assert "could not fold" in caplog.text and "hook failed" in caplog.text
        hook.fail = False
        with store.reader() as db:
            kept = db.rows("SELECT COUNT(*) FROM events")
            folds = db.rows("SELECT rows_added FROM hook_batches ORDER BY rows_added")
        assert kept == [(20,)] and folds == [(2,), (8,), (10,)]
    finally:
        store.close()


def test_a_postgresql_store_from_before_search_words_finds_its_old_events(postgres_cluster, monkeypatch):
    """A store of schema 2 (the text index over PostgreSQL's own parser) gains the ``words``
    column, filled for the LLM events it holds, on opening: old and new events are found alike,
    a word inside a host name and a prefix included."""
    from trubrics_otel.server import queries
    from trubrics_otel.server.store import postgres
    from trubrics_otel.server.store.rows import llm_row

    url = postgres_cluster.create_database()  # empty: not the template
    old = {"user_id": "u", "prompt": "Where is my REFUND?", "generation": "See help.example.com/refund-policy",
           "timestamp": at(1), "properties": {}}
    with monkeypatch.context() as before:
        schema_before(before, 3)
        store = Store(url)
        with store.connection() as c:  # as the release before wrote it: no words
            c.raw.execute(postgres._unnest_insert(postgres.COLUMNS),
                          postgres._columns([llm_row(old, 0)], with_ids=False)[:-1])
        store.close()
    store = Store(url)
    store.insert((), [{**old, "prompt": "another refund", "generation": "Done.", "timestamp": at(2)}])
    with store.connection() as c:
        def found(q: str) -> list[str]:
            page = queries.event_page(c, queries.EventFilter(q=q), sessions=store.sessions_lookup(c), limit=10)
            return [e["prompt"] for e in page["events"]]

        assert found("refund") == ["another refund", "Where is my REFUND?"]
        assert found("example refund-pol") == ["Where is my REFUND?"]
        assert found("WHERE is") == ["Where is my REFUND?"]
        assert found("nowhere") == []
    store.close()


class _PlanModes:
    """A hook noting the plan cache mode its statements run under: in the ingest transaction
    (side by side) and in the fold."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.prepared: list[int] = []
        self.folded: list[str] = []

    def ensure(self, connection) -> None:
        pass

    def apply_side_by_side(self, connection, after_id: int) -> None:
        self.seen.append(connection.execute("SELECT current_setting('plan_cache_mode')").fetchone()[0])
        self.prepared.append(connection.execute("SELECT COUNT(*) FROM pg_prepared_statements").fetchone()[0])

    def apply(self, connection, after_id: int, side_by_side: bool = True) -> None:
        self.folded.append(connection.execute("SELECT current_setting('plan_cache_mode')").fetchone()[0])


def test_postgresql_inserts_reuse_their_plans_and_reads_plan_for_their_values(postgres_cluster):
    """The insert's transaction runs its statements on generic plans (planning each anew per
    batch was a third of PostgreSQL's CPU for a ``track`` event), prepared from the first batch on
    a connection (not the fifth: each of a pool's connections planned its first four batches);
    the fold (thousands of events at once) and reads, before and after, are planned for their
    parameters' values, on every pooled connection."""
    hook = _PlanModes()
    store = Store(postgres_cluster.create_database(template=True), hooks=[hook])
    try:
        for i in range(3):
            store.insert([{"user_id": "u", "event": "e", "timestamp": at(i), "properties": {}}])
        assert hook.seen == ["force_generic_plan"] * 3
        assert hook.prepared[0] >= 2  # the insert's, before this one
        with contextlib.ExitStack() as held:  # every connection of the pool (8) at once
            assert {held.enter_context(store.connection()).rows("SELECT current_setting('plan_cache_mode')")[0][0]
                    for _ in range(8)} == {"force_custom_plan"}
        assert hook.folded == ["force_custom_plan"]  # the three batches in one fold, at the first read
    finally:
        store.close()


def test_postgresql_side_by_side_tables_find_a_batch_by_its_ids_alone(postgres_cluster):
    """The statements the insert's transaction runs beside other workers' (the funnels' table),
    on generic plans, read the batch's rows by the primary key alone: planned with their own
    conditions (an LLM event), PostgreSQL ANDed the key range with a partial index of every LLM
    event, read whole by each statement of each batch (a cost growing with the table)."""
    from trubrics_otel.server.analytics import schema
    from trubrics_otel.server.store.postgres import _OWN_ROWS, PostgresConnection

    store = Store(postgres_cluster.create_database(template=True))
    try:
        for k in range(20):
            store.insert((), [{"user_id": f"u{i % 7}", "prompt": "p", "generation": "g", "thread_id": f"t{i % 5}",
                               "timestamp": at(k), "latency": 1.0, "properties": {}} for i in range(50)])
        with store.connection() as c:
            c.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), "
                      "set_config('trubrics.first_id', '951', true), set_config('trubrics.last_id', '1000', true)")
            used = set()
            for n, statement in enumerate(schema._steps(PostgresConnection(c.raw, _OWN_ROWS), own=True)):
                c.execute(f"PREPARE steps_{n} (bigint) AS {statement.replace('?', '$1')}")
                plan = "\n".join(row[0] for row in c.rows(f"EXPLAIN EXECUTE steps_{n}(950)"))
                used |= {name for name in re.findall(r"(?:using|Index Scan on|Seq Scan on) (\w+)", plan)
                         if name.startswith("events")}
        assert used == {"events_pkey"}
    finally:
        store.close()


def test_each_event_keeps_its_own_values_whichever_columns_its_batch_leaves_empty(db_url):
    """SQLite leaves out of a batch's INSERT the columns null in all of its rows: an event
    with a value where the first has none keeps it, and an all-empty batch stores nulls."""
    full = {"user_id": "u", "prompt": "p", "generation": "g", "latency": 1.5, "thread_id": "t-1",
            "assistant_id": "bot", "properties": {"model": "m", "input_tokens": 3, "output_tokens": 4,
                                                  "cost_usd": 0.5, "error.type": "X"}}
    bare = {"user_id": "u", "prompt": "p", "generation": "g"}
    store = Store(db_url)
    try:
        assert store.insert([], [bare, full, bare]) == (3, 0)
        assert store.insert([], [bare, bare]) == (2, 0)
        assert store.insert([{"user_id": "u", "event": "E"}, {"user_id": "u", "event": "F", "properties": {
            "$thread_id": "t-2", "cost_usd": 2, "error.message": "boom"}}]) == (2, 0)
        named = {**bare, "prompt_event_name": "Ask", "generation_event_name": "Answer"}
        assert store.insert([{"user_id": "u", "event": "Generation"}], [bare, named]) == (3, 0)
        assert store.insert([], [named, bare]) == (2, 0)
        rows = store.events(newest_first=False)
    finally:
        store.close()
    kept = ("thread_id", "assistant_id", "model", "latency", "input_tokens", "output_tokens", "cost_usd", "error")
    assert [tuple(row.get(k) for k in kept) for row in rows] == [
        (None,) * 8, ("t-1", "bot", "m", 1.5, 3, 4, 0.5, "X"), (None,) * 8, (None,) * 8, (None,) * 8,
        (None,) * 8, ("t-2", None, None, None, None, None, 2.0, "boom"), *[(None,) * 8] * 5,
    ]
    # and those a batch's INSERT may write as literals (the same kind or name in every row)
    default, other = ("llm", "Generation", "Prompt"), ("llm", "Answer", "Ask")
    assert [(row["kind"], row["event"], row.get("prompt_event_name")) for row in rows] == [
        *[default] * 5, ("event", "E", None), ("event", "F", None), ("event", "Generation", None),
        default, other, other, default,
    ]


def test_a_time_to_first_token_that_is_no_number_of_seconds_is_left_out_not_the_batch(db_url):
    """Conversations average ``time_to_first_token`` over the turns that report seconds. Text,
    negative or out-of-range values are skipped: PostgreSQL's cast failed the whole batch on
    them (a 500 its senders retried for ever), SQLite's counted them as 0."""
    values = [0.5, "0.25", "fast", -1, "1e999", "NaN", "", "+0.75"]
    llm = [{"user_id": "u", "prompt": f"p{i}", "generation": "g", "thread_id": "t-1", "timestamp": at(i),
            "properties": {"time_to_first_token": value}} for i, value in enumerate(values)]
    store = Store(db_url)
    try:
        assert store.insert([], llm) == (len(values), 0)
        with store.reader() as db:
            assert db.rows("SELECT turns, ttft_s, ttft_turns FROM threads") == [(len(values), 1.5, 3)]
    finally:
        store.close()
