"""Versioned schemas, one SQL file per version per engine, applied in order at start.

::

    migrations.apply(connection, "postgresql")   # inside the caller's transaction (and lock)
    migrations.latest("sqlite")                  # the newest version this release knows

``schema/<engine>/NNN_name.sql`` is version ``NNN``; the ``schema_version`` table records each
applied version, and each version not recorded runs (oldest first). An engine's folder holds only
the versions it needs: SQLite's ``003_fold_watermark`` has no PostgreSQL counterpart. A database whose version is newer than this release knows was written by a
newer trubrics-otel: :class:`SchemaTooNew`, never a guess. A new version is a new file (never
an edit of an old one), tested by opening a database of the version before it.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

from trubrics_otel.server.store.errors import SchemaTooNew

_FILE = re.compile(r"^(\d{3})_\w+\.sql$")


@functools.lru_cache(maxsize=None)
def steps(engine: str) -> tuple[tuple[int, str], ...]:
    """(version, SQL) of every migration of ``engine``, oldest first."""
    folder = resources.files("trubrics_otel.server.store").joinpath("schema", engine)
    found = sorted((int(m.group(1)), f.read_text("utf-8")) for f in folder.iterdir()
                   if (m := _FILE.match(f.name)))
    return tuple(found)


def latest(engine: str) -> int:
    return steps(engine)[-1][0]


def current(connection: Any) -> int:
    """The database's schema version; 0 for one without the table (new, or from before it)."""
    return connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def apply(connection: Any, engine: str) -> int:
    """Bring the schema to :func:`latest`; return how many steps ran. Refuses a newer one."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version "
                       "(version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL)")
    check(connection, engine)
    ran = 0
    applied = {row[0] for row in connection.execute("SELECT version FROM schema_version").fetchall()}
    for version, sql in steps(engine):
        if version in applied:
            continue
        if engine == "sqlite":  # sqlite3 runs one statement per call (executescript commits)
            for statement in sql.split(";\n"):
                connection.execute(statement)
        else:  # the file as written (several statements, $$ bodies): the simple query protocol
            connection.raw.execute(sql)
        connection.execute("INSERT INTO schema_version VALUES (?, "
                           "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
                           if engine == "sqlite" else
                           "INSERT INTO schema_version VALUES (?, "
                           "CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT))", (version,))
        ran += 1
    return ran


def check(connection: Any, engine: str) -> None:
    found, known = current(connection), latest(engine)
    if found > known:
        raise SchemaTooNew(f"the database has schema version {found}, newer than this trubrics-otel "
                           f"knows ({known}): upgrade trubrics-otel to use it")
