"""Retention cohorts: the classic triangle.

::

    retention(db, AnalyticsQuery(), period="week")
    # {"period": "week", "cohorts": [{"start": ISO, "users": N, "retained": [N0, N1, …]}, …]}

A user's cohort is the period (UTC; weeks start Monday) of their first event among those the
filters keep; ``retained[k]`` counts the cohort's users active in period cohort + k, so
``retained[0] == users``. Cohorts are the periods shown (``since``/``until``, else the data's);
each cohort's list runs to the last period shown (a triangle), zeros included.
"""

from __future__ import annotations

from typing import Any

from trubrics_otel.server.analytics.activity import grouped, shown
from trubrics_otel.server.store.dialect import Reader
from trubrics_otel.server.analytics.query import AnalyticsQuery
from trubrics_otel.server.times import iso


def retention(db: Reader, q: AnalyticsQuery, period: str = "week") -> dict[str, Any]:
    """Cohorts by the ``period`` of each user's first event: its size and how many of them were
    active 0, 1, 2… periods later (``retained[0]`` is the cohort itself)."""
    cohort = db.dialect.bucket_us(period, "a.first_us")
    rows = grouped(db, q, period, f"{cohort} AS cohort, a.start_us, COUNT(*)", f"{cohort}, a.start_us")
    periods = shown(q, period, [r[1] for r in rows])
    index = {start: i for i, start in enumerate(periods)}
    cohorts = {s: {"start": iso(s), "users": 0, "retained": [0] * (len(periods) - i)} for s, i in index.items()}
    for start, active_start, users in rows:
        if start in index:  # cohorts before the range are not shown
            k = index[active_start] - index[start]
            cohorts[start]["retained"][k] = users
            if k == 0:
                cohorts[start]["users"] = users
    return {"period": period, "cohorts": list(cohorts.values())}
