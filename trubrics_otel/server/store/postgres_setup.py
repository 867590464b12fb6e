"""What a PostgreSQL database must offer before :mod:`.postgres` migrates it, said in one line.

::

    options = connection_options(url, "-c jit=off")   # the URL's own options (search_path) kept
    with engine._transaction() as c:                  # under the migration lock, at start:
        check_target(c, migrations.latest("postgresql"))   # StoreError naming what is missing
        ...                                           # migrate, the hooks' tables, the fold
        keep_sessions(c, timeout_us, "db")            # the database's one session timeout
    not_permitted(error, url)                         # any other privilege refused: one line

Teams rarely run the store as a superuser in a fresh database: PostgreSQL 15+ grants CREATE on
``public`` to its owner only, another application may hold a table named ``events`` there, and a
schema of the store's own is named with libpq's ``options=-csearch_path=…``. Every table, the
``session_id`` function and every query are unqualified, so they follow ``search_path``: two
stores in two schemas of one database never see each other's events.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from trubrics_otel.server.store import derived
from trubrics_otel.server.store.errors import StoreError

logger = logging.getLogger("trubrics.server")

OURS = ("events", "meta", "sessions", "users", "threads", "rollup", "hourly", "latency_hist",
        "analytics_steps", "fold_pending")
"""The tables schema 001-007 create: any of them already in the schema of a new store is another
application's (a store's own are found through its ``schema_version``)."""
_SCHEMA = "a schema of its own (CREATE SCHEMA trubrics AUTHORIZATION {user}; then add ?options=-csearch_path%3Dtrubrics to the URL)"


def keep_sessions(c: Any, timeout_us: int | None, name: str) -> None:
    """Sessions for ``timeout_us`` (None: the database's), the one timeout the database records
    and every worker's reads use: a ``serve`` with another rebuilds them for all, and says so
    (each worker kept its own before, and two behind one load balancer answered differently)."""
    stored = derived.stored_timeout_us(c)
    derived.ensure_sessions(c, timeout_us)
    if stored is not None and timeout_us is not None and timeout_us != stored:
        logger.warning("%s: sessions were kept for a %g min timeout, rebuilt for %g min (this --session-timeout): "
                       "every worker on this database now answers with it; give every worker the same value",
                       name, stored / 60e6, timeout_us / 60e6)


def connection_options(url: str, ours: str) -> str:
    """libpq's ``options`` for the pool's connections: the URL's (else ``$PGOPTIONS``) first,
    then ``ours``. Passed alone, ours replaced the URL's, and a ``search_path`` set there was
    lost: the store went to ``public``. A URL libpq cannot parse: :class:`StoreError`, its
    text unquoted (the pool's error quoted a malformed password)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", "")
    except psycopg.ProgrammingError as error:  # libpq quotes the token: it may be the password
        quoted = re.sub(r'"([^"]*)"?', lambda m: m[0] if m[1] in ("=", "]") else '"…"', str(error).strip())
        reason = quoted.splitlines()[0].split(":")[0].strip()  # the "=" it wants kept, no token (a password's part)
        raise StoreError(f"libpq cannot read this URL ({reason}): percent-encode its special characters, "
                         "e.g. @ as %40, / as %2F, % as %25, and = as %3D in a parameter's value") from None
    return f"{given} {ours}".strip()


def not_permitted(error: BaseException, url: str) -> StoreError | None:
    """A privilege PostgreSQL refused while the store was made ready, as one line (None for
    another error): the checks above cover a new store; this, a role that does not own the
    tables of one that exists (``CREATE TABLE IF NOT EXISTS`` and the analytics' indexes need
    their owner even when they exist)."""
    from psycopg import errors
    from psycopg.conninfo import conninfo_to_dict

    if not isinstance(error, errors.InsufficientPrivilege):
        return None
    user = conninfo_to_dict(url).get("user") or os.environ.get("PGUSER") or "this role"
    reason = str(error).strip().splitlines()[0]
    return StoreError(f"PostgreSQL refused {user}: {reason}: run serve and the reading commands as the role that "
                      "owns the store's schema and tables (the one that created them)")


def check_target(c: Any, latest: int) -> None:
    """Before migrating (under the migration lock): refuse, in one line, a ``search_path``
    naming no schema that exists, a role that may not create the fold's TEMP table, and, when
    the schema is not a store of version ``latest`` yet, a schema the role cannot create in or
    one holding another application's table under a name the store uses. Writes nothing."""
    schema, user, database, can_create, temporary = c.execute(
        "SELECT current_schema(), current_user, current_database(), "
        "COALESCE(has_schema_privilege(current_schema(), 'CREATE'), false), "
        "has_database_privilege(current_database(), 'TEMPORARY')").fetchone()
    if schema is None:
        path = c.execute("SELECT current_setting('search_path')").fetchone()[0]
        raise StoreError(f"search_path ({path}) names no schema that exists: create it "
                         f"(CREATE SCHEMA trubrics AUTHORIZATION {user}) or fix the URL's options")
    if not temporary:
        raise StoreError(f"role {user} may not create temporary tables (the fold's): "
                         f"GRANT TEMPORARY ON DATABASE {database} TO {user}")
    ours = c.execute("SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                     "AND table_name = 'schema_version' AND column_name = 'applied_us')").fetchone()[0]
    version = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0] if ours else 0
    if version >= latest:
        return
    if not can_create:
        raise StoreError(f"role {user} may not create tables in schema {schema} (PostgreSQL 15+ lets only the "
                         f"database owner create in public): GRANT CREATE ON SCHEMA {schema} TO {user}, or give "
                         f"the store {_SCHEMA.format(user=user)}")
    if version:
        return  # a store of an older schema: migrated in place
    taken = [row[0] for row in c.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = CAST(current_schema() AS regnamespace) "
        "AND relname = ANY(?) ORDER BY relname", (list(OURS) + ([] if ours else ["schema_version"]),)).fetchall()]
    if taken:
        raise StoreError(f"schema {schema} already holds {'a table' if len(taken) == 1 else 'tables'} named "
                         f"{', '.join(taken)}, not a trubrics-otel store's (another application's?); nothing was "
                         f"written: give the store "
                         f"{_SCHEMA.format(user=user)}")
