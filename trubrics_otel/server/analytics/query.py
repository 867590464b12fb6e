"""The filters every analysis takes (those of ``stats``) and small shared helpers.

::

    q = AnalyticsQuery(since_us=..., until_us=None, user="alice", model=None, event=None)
    where, params = event_where(q, "e")      # SQL conditions on the events table, aliased e
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

from trubrics_otel.server.store.dialect import DAY_US, MONDAY_US, WEEK_US, Reader
from trubrics_otel.server.times import to_us

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

PERIODS = ("day", "week", "month")


class AnalyticsError(ValueError):
    """A query that cannot be answered as asked (a bad argument): shown to the user."""


@dataclasses.dataclass(frozen=True)
class AnalyticsQuery:
    """Events from ``since_us`` (inclusive) to ``until_us`` (exclusive), of one user, LLM
    events of one model, events of one name (an LLM event's generation or prompt name)."""

    since_us: int | None = None
    until_us: int | None = None
    user: str | None = None
    model: str | None = None
    event: str | None = None

    @property
    def narrowed(self) -> bool:
        """Filtered by model or event name: the per-user summary tables do not apply."""
        return self.model is not None or self.event is not None


def event_where(q: AnalyticsQuery, alias: str = "events", *, times: bool = True) -> tuple[str, list[Any]]:
    """Conditions selecting the query's events (``times=False``: every time)."""
    clauses, params = ["1 = 1"], []
    column = f"{alias}." if alias else ""
    for clause, value in ((f"{column}user_id = ?", q.user), (f"{column}model = ?", q.model)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if q.event is not None:
        clauses.append(f"({column}event = ? OR ({column}kind = 'llm' AND {column}prompt_event_name = ?))")
        params += [q.event, q.event]
    if times:
        clauses += range_where(q, f"{column}ts_us", params)
    return " AND ".join(clauses), params


def range_where(q: AnalyticsQuery, column: str, params: list[Any]) -> list[str]:
    """``column`` within the query's range; appends the bounds to ``params``."""
    clauses = []
    if q.since_us is not None:
        clauses.append(f"{column} >= ?")
        params.append(q.since_us)
    if q.until_us is not None:
        clauses.append(f"{column} < ?")
        params.append(q.until_us)
    return clauses


def nearest_ranks(db: Reader, values_sql: str, params: Sequence[Any], n: int, ps: Sequence[float],
                  few: bool = False) -> list[Any]:
    """The ``ps`` percentiles (nearest rank: the smallest value with at least ``ceil(p*n)``
    values at or below it) of the single column ``v`` that ``values_sql`` selects, of ``n``
    rows: one sort in the engine, not in Python. ``few``: the values repeat (counts), so they
    are counted per value first and the ranks found in that short histogram's running sum."""
    if n <= 0:
        return [None for _ in ps]
    ranks = [max(1, math.ceil(p * n)) for p in ps]
    if few:
        return list(db.rows(
            f"SELECT {', '.join(f'MIN(CASE WHEN c >= {int(r)} THEN v END)' for r in ranks)} "
            f"FROM (SELECT v, SUM(k) OVER (ORDER BY v) AS c FROM (SELECT v, COUNT(*) AS k FROM ({values_sql}) "
            f"AS x GROUP BY v) AS h) AS running", params)[0])
    found = dict(db.rows(f"SELECT r, v FROM (SELECT ROW_NUMBER() OVER (ORDER BY v) AS r, v FROM ({values_sql}) "
                         f"AS ranked) AS numbered WHERE r IN ({', '.join(str(int(r)) for r in ranks)})", params))
    return [found.get(r) for r in ranks]


def percentile_list(values: Sequence[Any], p: float) -> Any:
    """Nearest-rank percentile of values already in memory (the same definition)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1] if ordered else None




MAX_BUCKETS = 5000


def floor_us(period: str, us: int) -> int:
    """The start of the day, week (Monday) or calendar month holding ``us`` (UTC)."""
    if period == "day":
        return us - us % DAY_US
    if period == "week":
        return us - (us - MONDAY_US) % WEEK_US
    moment = _EPOCH + _dt.timedelta(microseconds=us)
    return to_us(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0))


def next_us(period: str, start_us: int) -> int:
    if period == "day":
        return start_us + DAY_US
    if period == "week":
        return start_us + WEEK_US
    moment = _EPOCH + _dt.timedelta(microseconds=start_us)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return to_us(moment.replace(year=year, month=month))


def starts(period: str, first_us: int | None, last_us: int | None) -> list[int]:
    """Every period start from the one holding ``first_us`` to the one holding ``last_us``."""
    if period not in PERIODS:
        raise AnalyticsError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if first_us is None or last_us is None:
        return []
    found, start = [], floor_us(period, first_us)
    while start <= last_us:
        found.append(start)
        if len(found) > MAX_BUCKETS:
            raise AnalyticsError(f"more than {MAX_BUCKETS} {period}s: choose a shorter range or a longer period")
        start = next_us(period, start)
    return found
