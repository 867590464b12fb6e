"""A throwaway PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl`` in a temp dir, on a free
127.0.0.1 port, stopped (and deleted) at the end.

::

    with PostgresCluster() as cluster:           # skips nothing itself: see available()
        url = cluster.create_database()          # postgresql://postgres@127.0.0.1:PORT/db_1
        cluster.restart()                        # the database going away and coming back

When run as root the cluster runs as the unprivileged ``postgres`` user (PostgreSQL refuses
root): the temp dir is chowned to it and the binaries run through ``runuser``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_USER = "postgres"


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def unavailable() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if bin_dir() is None:
        return "PostgreSQL binaries absent (no /usr/lib/postgresql/*/bin/pg_ctl; apt install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_USER)
        except KeyError:
            return "running as root and no 'postgres' user to run the cluster as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'trubrics-otel[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="trubrics-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._bin = bin_dir()
        assert self._bin is not None, unavailable()

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def __enter__(self) -> PostgresCluster:
        if os.geteuid() == 0:
            user = pwd.getpwnam(_USER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", _USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        self.start()
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """Stop (ending every connection) and start again, as a database restart does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "-l",
                  str(self.dir / "log"), "restart")

    def __exit__(self, *exc: object) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    template: str | None = None
    """A database new ones are copied from (``create_database(template=True)``): a migrated
    schema copied in milliseconds instead of migrated per test."""

    def create_database(self, template: bool = False) -> str:
        """A new database (empty, or a copy of :attr:`template`); its URL."""
        import psycopg

        name = f"db_{next(self._names)}"
        source = f" TEMPLATE {self.template}" if template and self.template else ""
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}{source}")
        return self.url(name)
