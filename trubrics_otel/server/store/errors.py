"""What a store raises, whatever the engine: the server maps these to HTTP answers."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be used as asked (a bad URL, a missing extra, a schema from the future):
    the message is one line for a person."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer trubrics-otel: this one refuses to touch it."""


class StoreUnavailable(StoreError):
    """The database is down or unreachable right now: try again later (HTTP 503 + Retry-After).
    Nothing of the failed call was committed."""
