"""The analytics tables as a store hook: made when a store is first used, kept on each insert.

::

    Store(path, hooks=[hook.TABLES])   # what ``trubrics_otel.server`` gives every Store by default

The store calls ``ensure`` once (its own transaction: create, fill from ``events`` when new
or of another version) and ``apply`` inside each insert's transaction, so the analytics
tables commit with the events they are built from. The store knows nothing of them.
"""

from __future__ import annotations

from typing import Any

from trubrics_otel.server.analytics import schema


class AnalyticsTables:
    def ensure(self, connection: Any) -> None:
        schema.ensure(connection)

    def apply(self, connection: Any, after_id: int) -> None:
        schema.apply(connection, after_id)


TABLES = AnalyticsTables()
