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

from trubrics_otel.server.analytics.activity import periods_shown, sources
from trubrics_otel.server.analytics.dialect import Reader, bucket_us
from trubrics_otel.server.analytics.query import AnalyticsQuery
from trubrics_otel.server.times import iso


def retention(db: Reader, q: AnalyticsQuery, period: str = "week") -> dict[str, Any]:
    shown = periods_shown(db, q, period)
    index = {start: i for i, start in enumerate(shown)}
    cohorts = {s: {"start": iso(s), "users": 0, "retained": [0] * (len(shown) - i)} for s, i in index.items()}
    if shown:
        activity, params, first, first_params = sources(db, q, period)
        cohort = bucket_us(period, "first_us", db.dialect)
        rows = db.rows(
            f"SELECT f.cohort, a.start_us, COUNT(*) FROM ({activity}) AS a "
            f"JOIN (SELECT user_id, {cohort} AS cohort FROM ({first}) AS firsts) AS f ON f.user_id = a.user_id "
            f"WHERE f.cohort >= ? AND f.cohort <= ? AND a.start_us <= ? GROUP BY f.cohort, a.start_us",
            [*params, *first_params, shown[0], shown[-1], shown[-1]])
        for start, active_start, users in rows:
            k = index[active_start] - index[start]
            cohorts[start]["retained"][k] = users
            if k == 0:
                cohorts[start]["users"] = users
    return {"period": period, "cohorts": list(cohorts.values())}
