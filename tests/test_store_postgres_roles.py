"""PostgreSQL as teams run it: a role that owns nothing, a schema of the store's own, another
application's tables, URLs with passwords, sockets and options, workers with different timeouts.

Real parts: a throwaway cluster (conftest's ``postgres_cluster``), roles created in it (one logs
in with a SCRAM password, the others by the cluster's trust rule), ``trubrics-otel`` processes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
from psycopg import sql
import pytest
import requests
from postgres_cluster import _free_port as free_port
from test_store_workers import KEY, serve, served

from trubrics_otel.server import Store

SECRET = "p@ss:/w%rd#?&= ü"
ENCODED = quote(SECRET, safe="")
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


def admin(cluster, database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(cluster.url(database), autocommit=True)


def new_database(cluster, owner: str = "postgres") -> str:
    """An empty database (no store in it) owned by ``owner``; its name."""
    url = cluster.create_database()
    name = url.rsplit("/", 1)[-1]
    with admin(cluster) as c:
        c.execute(f"ALTER DATABASE {name} OWNER TO {owner}")
    return name


def role(cluster, name: str, password: str | None = None) -> str:
    """A login role (``password``: for the SCRAM rule of :func:`password_role`)."""
    with admin(cluster) as c:
        c.execute(f"DROP ROLE IF EXISTS {name}")
        c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), password))
    return name


def url_as(cluster, user: str, database: str, query: str = "") -> str:
    return f"postgresql://{user}@127.0.0.1:{cluster.port}/{database}{query}"


def cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "TRUBRICS_DB_URL"}
    return subprocess.run([sys.executable, "-m", "trubrics_otel.cli", *argv], capture_output=True, text=True,
                          timeout=60, env={**environment, **(env or {})})


def one_line_refusal(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """A failure a user can fix: exit 2, one line on stderr saying ``expected``, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def tables(cluster, database: str, schema: str = "public") -> list[str]:
    with admin(cluster, database) as c:
        return [r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                                        (schema,))]


def event(user: str, minutes: float, n: int) -> dict:
    moment = (T0 + dt.timedelta(minutes=minutes)).isoformat()
    return {"user_id": user, "event": "View", "timestamp": moment,
            "properties": {"$trace_id": f"{n:032x}", "$span_id": f"{n:016x}"}}


# --- 1. a role that owns nothing; a schema of the store's own --------------------------------------


def test_a_role_that_may_not_create_in_public_is_told_the_grant_and_a_schema_of_its_own_works(postgres_cluster):
    database = new_database(postgres_cluster)
    user = role(postgres_cluster, "plain_worker")
    url = url_as(postgres_cluster, user, database)

    refused = cli("serve", "--port", "0", "--no-grpc", "--db", url)  # PostgreSQL 15+: no CREATE on public
    one_line_refusal(refused, f"role {user} may not create tables in schema public",
                     f"GRANT CREATE ON SCHEMA public TO {user}", "-csearch_path")

    with admin(postgres_cluster, database) as c:
        c.execute(f"CREATE SCHEMA trubrics AUTHORIZATION {user}")
    store = Store(url + "?options=-csearch_path%3Dtrubrics")  # libpq's options, kept by the pool
    try:
        assert store.insert([event("alice", 0, 1)]) == (1, 0)
        assert store.count()["events"] == 1 and store.sessions()[0]["user_id"] == "alice"
    finally:
        store.close()
    assert tables(postgres_cluster, database) == []  # nothing in public
    assert {"events", "sessions", "schema_version", "fold_pending"} <= set(tables(postgres_cluster, database, "trubrics"))

    other = role(postgres_cluster, "dml_only")  # may read and write the tables, owns none
    with admin(postgres_cluster, database) as c:
        c.execute(f"GRANT USAGE ON SCHEMA trubrics TO {other}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
                  f"IN SCHEMA trubrics TO {other}; ALTER ROLE {other} SET search_path = trubrics")
    one_line_refusal(cli("users", "--db", url_as(postgres_cluster, other, database)),
                     f"PostgreSQL refused {other}: permission denied", "the role that owns the store's schema")


def test_two_stores_in_two_schemas_of_one_database_see_only_their_own_events(postgres_cluster):
    database = new_database(postgres_cluster)
    with admin(postgres_cluster, database) as c:
        c.execute("CREATE SCHEMA team_a")
        c.execute("CREATE SCHEMA team_b")
    base = postgres_cluster.url(database)
    a = Store(base + "?options=-csearch_path%3Dteam_a")
    b = Store(base + "?options=-csearch_path%3Dteam_b&application_name=b")
    try:  # the same trace and span ids in both: each store's own unique index
        a.insert([event("alice", 0, 1), event("alice", 5, 2)])
        b.insert([event("bob", 0, 1)])
        assert [e["user_id"] for e in a.events()] == ["alice", "alice"]
        assert [e["user_id"] for e in b.events()] == ["bob"]
        assert ([u["user_id"] for u in a.users()], [u["user_id"] for u in b.users()]) == (["alice"], ["bob"])
        assert (a.count()["events"], b.count()["events"]) == (2, 1)
    finally:
        a.close()
        b.close()
    assert tables(postgres_cluster, database) == []


# --- 3. another application's tables ---------------------------------------------------------------


@pytest.mark.parametrize("theirs, named", [
    ("CREATE TABLE events (id SERIAL PRIMARY KEY, name TEXT); INSERT INTO events (name) VALUES ('theirs')", "events"),
    ("CREATE TABLE users (id SERIAL PRIMARY KEY, email TEXT); INSERT INTO users (email) VALUES ('a@b')", "users"),
    ("CREATE TABLE schema_version (version TEXT, description TEXT); "
     "INSERT INTO schema_version VALUES ('3', 'flyway')", "schema_version"),
])
def test_another_applications_table_is_refused_in_one_line_and_left_untouched(postgres_cluster, theirs, named):
    database = new_database(postgres_cluster)
    with admin(postgres_cluster, database) as c:
        c.execute(theirs)
        before = c.execute(f"SELECT * FROM {named}").fetchall()
    url = postgres_cluster.url(database)
    readers = [["events"]] if named == "events" else []  # else no store there: "nothing stored there yet"
    for command in [["serve", "--port", "0", "--no-grpc"], *readers]:
        line = one_line_refusal(cli(*command, "--db", url), f"a table named {named}", "schema of its own")
        assert "nothing was written" in line
    with admin(postgres_cluster, database) as c:
        assert c.execute(f"SELECT * FROM {named}").fetchall() == before
    assert tables(postgres_cluster, database) == [named]  # nothing created beside it


# --- 2. URL forms and connection failures -----------------------------------------------------------


@pytest.fixture(scope="module")
def password_role(postgres_cluster) -> Iterator[str]:
    """A role that logs in with :data:`SECRET` (SCRAM), owning a database of its own."""
    user = role(postgres_cluster, "pw_user", SECRET)
    hba = postgres_cluster.data / "pg_hba.conf"
    rules = hba.read_text()
    hba.write_text(f"local all {user} scram-sha-256\nhost all {user} 127.0.0.1/32 scram-sha-256\n{rules}")
    with admin(postgres_cluster) as c:
        c.execute("SELECT pg_reload_conf()")
    yield user
    hba.write_text(rules)
    with admin(postgres_cluster) as c:
        c.execute("SELECT pg_reload_conf()")


def hidden(done: subprocess.CompletedProcess[str] | str) -> None:
    text = done if isinstance(done, str) else done.stdout + done.stderr
    for form in (SECRET, ENCODED, quote(SECRET)):
        assert form not in text, text


def test_url_forms_serve_with_the_password_hidden(postgres_cluster, password_role):
    database = new_database(postgres_cluster, owner=password_role)
    port, sockets = postgres_cluster.port, postgres_cluster.dir
    forms = [
        f"postgres://{password_role}:{ENCODED}@127.0.0.1:{port}/{database}?sslmode=disable&application_name=team_x",
        f"postgresql:///{database}?host={sockets}&port={port}&user={password_role}&password={ENCODED}",
    ]
    for n, url in enumerate(forms):
        with served([sys.executable, "-m", "trubrics_otel.cli", "serve", "--db", url]) as server:
            hidden(server.banner)
            assert database in server.banner
            sent = requests.post(f"{server.url}/publish_events", json=[event("alice", n, n)], headers=KEY, timeout=30)
            assert sent.status_code == 200, sent.text
            if n == 0:
                with admin(postgres_cluster) as c:
                    names = {r[0] for r in c.execute("SELECT application_name FROM pg_stat_activity "
                                                     "WHERE datname = %s", (database,))}
                assert "team_x" in names
    listed = cli("users", "--json", env={"TRUBRICS_DB_URL": forms[0]})  # the variable, --db absent
    assert listed.returncode == 0, listed.stderr
    assert '"alice"' in listed.stdout
    hidden(listed)
    doctor = cli("doctor", env={"TRUBRICS_DB_URL": forms[0]})
    assert f"{password_role}:***@" in doctor.stdout + doctor.stderr
    hidden(doctor)


@pytest.mark.parametrize("wrong, says", [
    ("password", "password authentication failed"),
    ("database", 'database "no_such_db" does not exist'),
    ("port", "Connection refused"),
])
def test_a_connection_refused_is_one_line_with_the_password_hidden(postgres_cluster, password_role, wrong, says):
    password, database, port = ENCODED, "postgres", postgres_cluster.port
    if wrong == "password":
        password = quote("not-" + SECRET, safe="")
    elif wrong == "database":
        database = "no_such_db"
    else:
        port = free_port()  # nothing listens there
    url = f"postgresql://{password_role}:{password}@127.0.0.1:{port}/{database}"
    for done in (cli("serve", "--port", "0", "--no-grpc", "--db", url),
                 cli("events", env={"TRUBRICS_DB_URL": url})):
        one_line_refusal(done, says, f"{password_role}:***@")
        hidden(done)
        assert "not-" not in done.stderr


def test_a_url_libpq_cannot_read_is_one_line_that_never_quotes_its_password(postgres_cluster):
    for url in (f"postgresql://someone:half%zzsecret@127.0.0.1:{postgres_cluster.port}/postgres",  # not %-encoded
                f"postgresql://someone:zzsecret@127.0.0.1:{postgres_cluster.port}/postgres?options=-csearch_path=x",
                f"postgresql://someone:half zzsecret@127.0.0.1:{postgres_cluster.port}/postgres"):  # a space
        for done in (cli("serve", "--port", "0", "--no-grpc", "--db", url), cli("users", "--db", url)):
            one_line_refusal(done, "libpq cannot read this URL", "percent-encode", "someone:***@")
            assert "zzsecret" not in done.stderr + done.stdout


# --- 4. workers started with different session timeouts --------------------------------------------


def test_workers_with_different_session_timeouts_answer_the_databases_one(postgres_cluster):
    db = postgres_cluster.create_database(template=True)
    gap = [event("carol", 0, 1), event("carol", 20, 2)]  # 20 minutes apart: one session or two
    with serve(db, "--session-timeout", "30") as first:
        assert requests.post(f"{first.url}/publish_events", json=gap, headers=KEY, timeout=30).status_code == 200
        with serve(db, "--session-timeout", "10") as second:  # started later, another value
            answers = []
            for worker in (first, second):
                sessions = requests.get(f"{worker.url}/api/sessions", params={"user": "carol"}, timeout=30).json()
                counts = requests.get(f"{worker.url}/api/stats", timeout=30).json()
                answers.append((len(sessions), counts["session_timeout_s"]))
    assert answers == [(2, 600.0), (2, 600.0)]  # one database, one timeout: the same answer anywhere
    with serve(db) as third:  # no --session-timeout: the database's, not rebuilt for 30 min
        assert requests.get(f"{third.url}/api/stats", timeout=30).json()["session_timeout_s"] == 600.0
    listed = cli("sessions", "--json", "--user", "carol", "--db", db)  # the reading command: the same
    assert listed.returncode == 0 and listed.stdout.count('"session_id"') == 2, listed
    store = Store(db)
    assert [s["events"] for s in store.sessions(user="carol")] == [1, 1]
    store.close()
