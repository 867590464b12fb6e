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

from trubrics_otel.server.analytics.dialect import Reader, bucket_us
from trubrics_otel.server.analytics.query import AnalyticsQuery, event_where, floor_us, next_us, span, starts
from trubrics_otel.server.times import iso


def sources(db: Reader, q: AnalyticsQuery, period: str) -> tuple[str, list[Any], str, list[Any]]:
    """SQL for (start_us, user_id) active pairs and (user_id, first_us), with their parameters."""
    if not q.narrowed:
        mine = " AND user_id = ?" if q.user is not None else ""
        who = [q.user] if q.user is not None else []
        return (f"SELECT start_us, user_id FROM analytics_activity WHERE period = ?{mine}", [period, *who],
                f"SELECT user_id, first_us FROM analytics_first WHERE 1 = 1{mine}", who)
    where, params = event_where(q, "events", times=False)
    return (f"SELECT DISTINCT {bucket_us(period, 'ts_us', db.dialect)} AS start_us, user_id "
            f"FROM events WHERE {where}", params,
            f"SELECT user_id, MIN(ts_us) AS first_us FROM events WHERE {where} GROUP BY user_id", list(params))


def periods_shown(db: Reader, q: AnalyticsQuery, period: str) -> list[int]:
    """The starts of the periods to show: the range given, else the data's."""
    activity, params, _, _ = sources(db, q, period)
    first, last = span(db, q, f"SELECT MIN(start_us), MAX(start_us) FROM ({activity}) AS a", params)
    return starts(period, first, last)


def active(db: Reader, q: AnalyticsQuery, period: str = "day") -> dict[str, Any]:
    shown = periods_shown(db, q, period)
    buckets = {s: {"start": iso(s), "active": 0, "new": 0, "returning": 0} for s in shown}
    if shown:
        activity, params, first, first_params = sources(db, q, period)
        rows = db.rows(
            f"SELECT a.start_us, COUNT(*), SUM(CASE WHEN f.first_us >= a.start_us THEN 1 ELSE 0 END) "
            f"FROM ({activity}) AS a JOIN ({first}) AS f ON f.user_id = a.user_id "
            f"WHERE a.start_us >= ? AND a.start_us <= ? GROUP BY a.start_us",
            [*params, *first_params, shown[0], shown[-1]])
        for start, users, new in rows:
            buckets[start].update(active=users, new=new, returning=users - new)
    return {"period": period, "buckets": list(buckets.values()), "stickiness": stickiness(db, q, shown, period)}


def stickiness(db: Reader, q: AnalyticsQuery, shown: Sequence[int], period: str) -> list[dict[str, Any]]:
    if not shown:
        return []
    first_day = floor_us("day", shown[0])
    last_day = floor_us("day", next_us(period, shown[-1]) - 1)
    if q.until_us is not None:
        last_day = min(last_day, floor_us("day", q.until_us - 1))
    if q.since_us is not None:
        first_day = max(first_day, floor_us("day", q.since_us))
    result = []
    for month in starts("month", first_day, last_day):
        low, high = max(month, first_day), min(next_us("month", month) - 1, last_day)
        days = len(starts("day", low, high))
        daily, params, _, _ = sources(db, q, "day")
        (day_sum,), = db.rows(f"SELECT COUNT(*) FROM ({daily}) AS a WHERE a.start_us >= ? AND a.start_us <= ?",
                              [*params, low, high])
        monthly, month_params, _, _ = sources(db, q, "month")
        (mau,), = db.rows(f"SELECT COUNT(*) FROM ({monthly}) AS a WHERE a.start_us = ?", [*month_params, month])
        dau = day_sum / days if days else 0.0
        result.append({"month": iso(month), "days": days, "dau_avg": round(dau, 6), "mau": mau,
                       "stickiness": round(dau / mau, 6) if mau else None})
    return result
