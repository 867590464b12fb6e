"""The local Trubrics-compatible server: ``trubrics-otel serve``, or in-process::

    from trubrics_otel.server import LocalServer

    with LocalServer() as server:          # default db, ephemeral port on 127.0.0.1
        print(server.url)
"""

from trubrics_otel.server.analytics import schema as _analytics_tables
from trubrics_otel.server.app import LocalServer
from trubrics_otel.server.store import HOOKS as _HOOKS
from trubrics_otel.server.store import Store, default_db_path

if _analytics_tables not in _HOOKS:  # every Store keeps the analytics tables: the module is the store.Hook
    _HOOKS.append(_analytics_tables)

__all__ = ["LocalServer", "Store", "default_db_path"]
