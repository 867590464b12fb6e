"""Every analysis by name, from text parameters: what the CLI and the read API share.

::

    answer(store, "retention", {"period": "week", "since": "30d"})
    answer(store, "funnel", {"steps": "Sign up,Create project", "within": "7d", "breakdown": "model"})

Parameters (all text, all optional unless said): ``since``, ``until`` (ISO 8601 or a duration
ago, ``7d``), ``user``, ``model``, ``event``; ``period`` (``active``: day|week|month, default
day; ``retention``: default week); ``steps`` (``funnel``, required: comma-separated),
``within`` (``funnel``: a duration, default ``7d``), ``breakdown`` (``model`` or
``property:NAME``); ``refit`` (``topics``: ``1`` to cluster again, ``0`` by default); ``q`` (words in a prompt)
``only`` (``abandoned`` | ``failed``), ``topic`` (a number) and ``limit`` (default 100) for
``conversation_list``. A bad one raises :class:`AnalyticsError` naming it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any, Iterator

from trubrics_otel.server.analytics import (activity, conversations, feedback, funnels, retention, schema, topic_model,
                                            topics)
from trubrics_otel.server.store.dialect import Writer
from trubrics_otel.server.store.sqlite import refused_read_only, write_transaction
from trubrics_otel.server.analytics.query import PERIODS, AnalyticsError, AnalyticsQuery
from trubrics_otel.server.times import parse_time, to_us

READ_MMAP_BYTES = 1 << 30
"""SQLite: how much of the database file an analysis reads through a memory map."""
_UNITS_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000}


def query_from(p: Mapping[str, Any]) -> AnalyticsQuery:
    return AnalyticsQuery(since_us=_time(p, "since"), until_us=_time(p, "until"), user=p.get("user") or None,
                          model=p.get("model") or None, event=p.get("event") or None)


def _time(p: Mapping[str, Any], name: str) -> int | None:
    text = p.get(name)
    if not text:
        return None
    try:
        return to_us(parse_time(str(text)))
    except ValueError as exc:
        raise AnalyticsError(f"{name}: {exc}") from None


def duration_us(text: str) -> int:
    """``7d``, ``24h``, ``30m``, ``90s``, ``1w`` → microseconds."""
    unit = _UNITS_US.get(text.strip()[-1:].lower())
    try:
        amount = float(text.strip()[:-1]) if unit else None
    except ValueError:
        amount = None
    if unit is None or amount is None or not 0 < amount * unit < 2**62:  # 1e400d is no window either
        raise AnalyticsError(f"within must be a duration like 30m, 24h, 7d, got {text[:40]!r}")
    return round(amount * unit)


def _period(p: Mapping[str, Any], default: str) -> str:
    period = p.get("period") or default
    if period not in PERIODS:
        raise AnalyticsError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    return str(period)


def _integer(p: Mapping[str, Any], name: str) -> int | None:
    text = str(p.get(name) or "").strip()
    if not text:
        return None
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or not -(2**63) <= int(text) < 2**63:  # what SQL holds
        raise AnalyticsError(f"{name} must be an integer, got {text[:40]!r}")
    return int(text)


def _funnel(db: Any, q: AnalyticsQuery, p: Mapping[str, Any]) -> dict[str, Any]:
    steps = [s for s in str(p.get("steps") or "").split(",")]
    return funnels.funnel(db, q, steps, duration_us(str(p.get("within") or "7d")), p.get("breakdown") or None)


ANALYSES: dict[str, Callable[[Any, AnalyticsQuery, Mapping[str, Any]], dict[str, Any]]] = {
    "active": lambda db, q, p: activity.active(db, q, _period(p, "day")),
    "retention": lambda db, q, p: retention.retention(db, q, _period(p, "week")),
    "funnel": _funnel,
    "feedback": lambda db, q, p: feedback.feedback(db, q),
    "conversations": lambda db, q, p: conversations.conversations(db, q),
    "topics": lambda db, q, p: topics.topics(db, q),
    "conversation_list": lambda db, q, p: conversations.conversation_list(
        db, q, search=p.get("q") or None, only=p.get("only") or None, topic=_integer(p, "topic"),
        limit=_integer(p, "limit") or 100),
}


@contextmanager
def _writer(store: Any) -> Iterator[Writer]:
    """A transaction on the store: PostgreSQL's connection is one already; SQLite's autocommits
    until told otherwise."""
    with store.connection() as connection:
        if connection.dialect.name == "postgresql":
            yield connection
            return
        with write_transaction(connection):
            yield connection


def answer(store: Any, name: str, p: Mapping[str, Any]) -> dict[str, Any]:
    """Run the analysis ``name`` on ``store``; topics are brought up to date first."""
    if name not in ANALYSES:
        raise AnalyticsError(f"no analysis {name!r}")
    q = query_from(p)
    if name == "topics":
        refit = str(p.get("refit") or "0").lower()
        if refit not in ("0", "1", "false", "true"):
            raise AnalyticsError(f"refit must be 1 or 0, not {refit[:40]!r}")
        try:
            with _writer(store) as db:
                topics.refresh(db, refit=refit in ("1", "true"))
        except topic_model.MissingExtra as exc:  # the page and the CLI show the notice
            return {"topics": [], "prompts": 0, "notice": str(exc)}
        except sqlite3.OperationalError as exc:  # a reader's file it cannot write: topics as they are
            if not refused_read_only(exc):
                raise
            logging.getLogger("trubrics.server").warning(
                "%s is read-only: the topics as last fitted, newer prompts without one", store.location)
    with store.connection() as connection:
        if connection.dialect.name == "sqlite":
            # an analysis reads scattered pages of a large file once: mapped, they cost no read()
            # call each (this short-lived connection only; its page cache would start cold anyway)
            connection.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
        return ANALYSES[name](connection, q, p)


def set_feedback_events(store: Any, values: Mapping[str, float]) -> None:
    """``serve --feedback-event``: count these event names as feedback of these values."""
    with _writer(store) as db:
        schema.set_feedback_events(db, values)
