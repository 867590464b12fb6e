"""Active users per day, week or month: new vs returning, and stickiness (DAU / MAU).

::

    active(db, AnalyticsQuery(since_us=...), period="week")
    # {"period": "week", "buckets": [{"start": ISO, "active": N, "new": N, "returning": N}, …],
    #  "stickiness": [{"month": ISO, "dau_avg": x, "mau": N, "stickiness": x}, …]}

Definitions (UTC): a user is *active* in a period with any event or LLM event in it; *new* in
the period of their first event (ever, among the events the filters keep), *returning*
otherwise; weeks start Monday 00:00. Periods overlapping ``since``/``until`` are shown and
counted whole, empty ones included. Stickiness per calendar month: the mean of the daily
active users over the month's days in the range, divided by the month's active users.

Unfiltered (or for one user) the counts come from ``analytics_activity`` and
``analytics_first``; filtered by model or event name, from the events through their indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trubrics_otel.server.store.dialect import Reader
from trubrics_otel.server.analytics.query import AnalyticsQuery, floor_us, next_us, starts
from trubrics_otel.server.times import iso


def sources(db: Reader, q: AnalyticsQuery, period: str, first: bool = True) -> tuple[str, list[Any]]:
    """SQL for (start_us, user_id, first_us): who was active in which period, and when each
    user's first event was (its day, filtered by model or event; NULL unless ``first``, which
    costs a join or a window); with its parameters."""
    if not q.narrowed:
        mine = " AND a.user_id = ?" if q.user is not None else ""
        joined = ("f.first_us FROM analytics_activity a JOIN analytics_first f ON f.user_id = a.user_id" if first
                  else "NULL AS first_us FROM analytics_activity a")
        return (f"SELECT a.start_us, a.user_id, {joined} WHERE a.period = ?{mine}",
                [period, *([q.user] if q.user is not None else [])])
    clauses, params = [], []
    for column, value in (("user_id", q.user), ("model", q.model), ("event", q.event)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    # the user's days first (DISTINCT in the (model|event, day_us, user_id) index's order: the
    # event names and models of a day collapse before the window and the buckets see them)
    days = f"SELECT DISTINCT user_id, day_us FROM analytics_daily WHERE {' AND '.join(clauses)}"
    if first:
        days = f"SELECT user_id, day_us, MIN(day_us) OVER (PARTITION BY user_id) AS first_us FROM ({days}) AS d"
    return (f"SELECT DISTINCT {db.dialect.bucket_us(period, 'day_us')} AS start_us, user_id, "
            f"{'first_us' if first else 'NULL AS first_us'} FROM ({days}) AS u", params)


def grouped(db: Reader, q: AnalyticsQuery, period: str, select: str, group: str,
            first: bool = True) -> list[tuple[Any, ...]]:
    """``select`` over the active (start_us, user_id, first_us) rows within the query's range,
    grouped by ``group``: one pass over the source."""
    activity, params = sources(db, q, period, first)
    where = ["1 = 1"]
    if q.since_us is not None:
        where.append("a.start_us >= ?")
        params.append(floor_us(period, q.since_us))
    if q.until_us is not None:
        where.append("a.start_us < ?")
        params.append(q.until_us)
    return db.rows(f"SELECT {select} FROM ({activity}) AS a WHERE {' AND '.join(where)} GROUP BY {group}", params)


def shown(q: AnalyticsQuery, period: str, found: Sequence[int]) -> list[int]:
    """The starts of the periods to show: the range given, else the data's."""
    first = q.since_us if q.since_us is not None else min(found, default=None)
    last = q.until_us - 1 if q.until_us is not None else max(found, default=None)
    return starts(period, first, last)


def active(db: Reader, q: AnalyticsQuery, period: str = "day") -> dict[str, Any]:
    """Active, new and returning users per ``period``, every period of the range shown (zeros
    included), and the stickiness of each month."""
    rows = grouped(db, q, period, "a.start_us, COUNT(*), SUM(CASE WHEN a.first_us >= a.start_us THEN 1 ELSE 0 END)",
                   "a.start_us")
    periods = shown(q, period, [r[0] for r in rows])
    buckets = {s: {"start": iso(s), "active": 0, "new": 0, "returning": 0} for s in periods}
    for start, users, new in rows:
        buckets[start].update(active=users, new=new, returning=users - new)
    return {"period": period, "buckets": list(buckets.values()), "stickiness": stickiness(db, q, periods, period)}


def stickiness(db: Reader, q: AnalyticsQuery, shown: Sequence[int], period: str) -> list[dict[str, Any]]:
    """Per month touched by the ``shown`` periods: mean daily active users over its days in the
    range, over its monthly active users (DAU/MAU)."""
    if not shown:
        return []
    first_day = floor_us("day", shown[0])
    last_day = floor_us("day", next_us(period, shown[-1]) - 1)
    if q.until_us is not None:
        last_day = min(last_day, floor_us("day", q.until_us - 1))
    if q.since_us is not None:
        first_day = max(first_day, floor_us("day", q.since_us))
    daily = dict(grouped(db, q, "day", "a.start_us, COUNT(*)", "a.start_us", first=False))
    monthly = dict(grouped(db, q, "month", "a.start_us, COUNT(*)", "a.start_us", first=False))
    result = []
    for month in starts("month", first_day, last_day):
        low, high = max(month, first_day), min(next_us("month", month) - 1, last_day)
        days = starts("day", low, high)
        dau = sum(daily.get(day, 0) for day in days) / len(days) if days else 0.0
        mau = monthly.get(month, 0)
        result.append({"month": iso(month), "days": len(days), "dau_avg": round(dau, 6), "mau": mau,
                       "stickiness": round(dau / mau, 6) if mau else None})
    return result
