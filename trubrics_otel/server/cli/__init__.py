"""The server's commands, one module per family; ``trubrics_otel.cli`` wires them up.

::

    serve.py      trubrics-otel serve
    read.py       trubrics-otel events | sessions | threads | users
    analyses.py   trubrics-otel active | retention | funnel | feedback | conversations | topics
    stats.py      trubrics-otel stats
    migrate.py    trubrics-otel migrate
    common.py     the source arguments (--db, --url), fetching, tables
"""

from trubrics_otel.server.cli.common import format_conversation, format_table

__all__ = ["format_conversation", "format_table"]
