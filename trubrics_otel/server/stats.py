"""Aggregates over time for ``trubrics-otel stats``, ``/api/analytics`` and the dashboard.

::

    with store.connection() as c:
        result = stats(c, StatsQuery(since_us=..., by="day", model="gpt-4o"))
    result["totals"]["users"], result["buckets"][0]["latency_p95"]

Read from the hourly rollups of :mod:`.derived` and, for whole days and weeks, the daily
analytics tables (``analytics_activity``, ``analytics_daily``, ``analytics_latency``), so a
call costs the same at a million events as at a thousand (one user's: read from their events,
through the index by user and time); each table is read once per call (every series, the
split by model and the totals come from that pass). Consequences,
documented in docs/guide/local-server.md:

- buckets are whole UTC hours, days, or weeks starting on Monday; ``since`` is rounded down
  and ``until`` up to the hour;
- latency percentiles (nearest rank) come from 5 %-wide log bins, each with its count and sum:
  the mean of the bin the rank falls in, at most a bin's width (~5 %) from the exact value and
  exact when that bin's latencies are equal (the same latency on every call); with a ``user``
  filter they are exact (read from that user's events);
- ``event`` matches the stored event name (for an LLM event, its generation event name);
- ``cost_usd`` is the sum of the events' ``cost_usd`` property, ``None`` when none had one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from trubrics_otel.server.store.dialect import DAY_US, HOUR_US, MONDAY_US, WEEK_US, Dialect
from trubrics_otel.server.times import iso

BUCKETS = {
    "hour": ("hour_us", HOUR_US),
    "day": (f"hour_us - hour_us % {DAY_US}", DAY_US),
    "week": (f"hour_us - (hour_us - {MONDAY_US}) % {WEEK_US}", WEEK_US),
}
MAX_BUCKETS = 20_000
Hist = dict[float, list[float]]
"""Latencies: ``{bin (or one user's exact latency): [count, sum of the latencies]}``."""


def one_user(d: Dialect) -> str:
    """``hourly``'s columns over one user's events, a row per event, read by user and time
    (:meth:`.Dialect.keyed`): ``rollup`` has no index by user (each batch wrote a page per user
    to one), and the name and model are expressions here so that no index on them is chosen
    instead (SQLite took the name's and read every event of that name: seconds at a million)."""
    source, k = d.keyed("user_id")
    return (f"(SELECT {k}.ts_us AS ts_us, {k}.ts_us - {k}.ts_us % 3600000000 AS hour_us, {k}.user_id AS user_id, "
            "e.kind AS kind, e.event || '' AS event, COALESCE(e.model, '') AS model, 1 AS events, "
            "e.input_tokens AS input_tokens, e.output_tokens AS output_tokens, e.cost_usd AS cost_usd, "
            "CASE WHEN e.cost_usd IS NULL THEN 0 ELSE 1 END AS cost_events, "
            f"CASE WHEN e.error IS NULL THEN 0 ELSE 1 END AS errors, e.latency AS latency FROM {source}) AS one_user")


class StatsError(ValueError):
    """A query the dashboard cannot answer (a bad ``by``, too many buckets): HTTP 400, CLI exit 2."""


@dataclasses.dataclass(frozen=True)
class StatsQuery:
    """What ``stats`` counts: a time range (µs since the epoch, ``until`` exclusive), the bucket
    width ``by`` (one of :data:`BUCKETS`) and optional user, model and event filters."""

    since_us: int | None = None
    until_us: int | None = None
    by: str = "day"
    user: str | None = None
    model: str | None = None
    event: str | None = None


def stats(c: Any, q: StatsQuery, *, by_model: bool = False) -> dict[str, Any]:
    """The dashboard: ``{"totals": {...}, "buckets": [...]}`` (and ``by_model`` per model when asked),
    read from the hourly summary tables, never from every event."""
    """``{"totals": {...}, "buckets": [...]}``, plus ``"models": {model: [buckets]}`` (LLM
    events only) when ``by_model``. Empty buckets between the bounds are included."""
    if q.by not in BUCKETS:
        raise StatsError(f"by must be one of {', '.join(BUCKETS)}, got {q.by!r}")
    bucket_sql, width = BUCKETS[q.by]
    table, where, params = _summed(c, q)
    bounds = c.execute(f"SELECT MIN(hour_us), MAX(hour_us) FROM {table} WHERE {where}", params).fetchone()
    first = _floor(q.since_us if q.since_us is not None else bounds[0], q.by)
    last = _ceil_hour(q.until_us) - 1 if q.until_us is not None else bounds[1]
    starts = list(_bucket_starts(first, last, q.by)) if first is not None and last is not None else []
    if len(starts) > MAX_BUCKETS:
        raise StatsError(f"{len(starts)} buckets: choose a shorter range or a wider --by")

    counts = _counts(c, q, bucket_sql)  # {bucket: {model: sums}}: every series from one pass
    hists: dict[int, dict[str, Hist]] = {}  # {bucket: {model: histogram}}: likewise
    users: dict[int, int] = {}
    whole, partial = _ranges(q, starts, width)
    if whole is not None:  # whole days or weeks: the daily tables
        hists |= _latencies(c, whole, bucket_sql, by_model, daily=True)
        users |= _users(c, whole, bucket_sql, daily=True)
    for part in partial:
        hists |= _latencies(c, part, bucket_sql, by_model)
        users |= _users(c, part, bucket_sql)
    every = [(counts.get(b, {}), hists.get(b, {})) for b in starts]
    totals = _merged([v for m, _ in every for v in m.values()], [h for _, m in every for h in m.values()])
    result: dict[str, Any] = {
        "totals": {"since": iso(first), "until": iso(starts[-1] + width) if starts else None,
                   "by": q.by, **totals, "users": _total_users(c, q, users)},
        "buckets": [{"start": iso(b), **_merged(list(sums.values()), list(hist.values())), "users": users.get(b, 0)}
                    for b, (sums, hist) in zip(starts, every)],
    }
    if by_model:
        table, where, params = _summed(c, q)
        models = [m for (m,) in c.execute(
            f"SELECT DISTINCT model FROM {table} WHERE {where} AND kind = 'llm' ORDER BY model", params)]
        result["models"] = {model or "(none)": [
            {"start": iso(b), **_merged([sums[model]] if model in sums else [], [hist.get(model, {})]), "users": 0}
            for b, (sums, hist) in zip(starts, every)] for model in models}
    return result


def _ranges(q: StatsQuery, starts: list[int], width: int) -> tuple[StatsQuery | None, list[StatsQuery]]:
    """The range of the buckets wholly inside the query's (days or weeks: read from the daily
    tables, a thirtieth of the hourly rows), and the hours of each bucket cut by ``since`` or
    ``until`` (read from the hourly ones)."""
    if q.by == "hour" or q.user is not None or not starts:
        return None, [q]
    low = q.since_us - q.since_us % HOUR_US if q.since_us is not None else starts[0]
    high = _ceil_hour(q.until_us) if q.until_us is not None else starts[-1] + width
    inside = [b for b in starts if b >= low and b + width <= high]
    cut = [dataclasses.replace(q, since_us=max(b, low), until_us=min(b + width, high)) for b in starts
           if b not in inside]
    return (dataclasses.replace(q, since_us=inside[0], until_us=inside[-1] + width) if inside else None), cut


def _where(q: StatsQuery, with_user: bool = False, column: str = "hour_us") -> tuple[str, list[Any]]:
    """SQL conditions for the query's range (on ``column``) and filters (``user_id`` only where
    asked, since ``hourly`` and ``latency_hist`` have no user column)."""
    clauses, params = ["true"], []
    if q.since_us is not None:
        clauses.append(f"{column} >= ?")
        params.append(q.since_us - q.since_us % HOUR_US)
    if q.until_us is not None:
        clauses.append(f"{column} < ?")
        params.append(_ceil_hour(q.until_us))
    for name, value in (("user_id", q.user), ("model", q.model), ("event", q.event)):
        if value is not None and (name != "user_id" or with_user):
            clauses.append(f"{name} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _summed(c: Any, q: StatsQuery, table: str = "hourly") -> tuple[str, str, list[Any]]:
    """What to read the query's sums from, with its conditions: ``table``, or for one user
    :func:`one_user` (bounded on ``ts_us``, in its look-up's order)."""
    if q.user is None:
        return table, *_where(q)
    return one_user(c.dialect), *_where(q, with_user=True, column="ts_us")


def _counts(c: Any, q: StatsQuery, bucket_sql: str) -> dict[int, dict[str, tuple[Any, ...]]]:
    """Sums per bucket and model from ``hourly`` (for one user, from their events)."""
    table, where, params = _summed(c, q)
    found: dict[int, dict[str, tuple[Any, ...]]] = {}
    for b, model, *sums in c.execute(
            f"SELECT {bucket_sql} AS b, model, SUM(events), SUM(CASE WHEN kind = 'llm' THEN events ELSE 0 END), "
            f"SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), SUM(cost_events), SUM(errors) "
            f"FROM {table} WHERE {where} GROUP BY b, model", params):
        found.setdefault(b, {})[model] = tuple(sums)
    return found


def _users(c: Any, q: StatsQuery, bucket_sql: str, daily: bool = False) -> dict[int, int]:
    """Distinct users per bucket: ``rollup``, keyed by hour then user (whole days or weeks:
    ``analytics_activity``, a row per user and period, or ``analytics_daily`` by model; one
    user's, from their events)."""
    if daily and q.user is None and q.event is None:
        if q.model is None:
            where, params = _where(q, column="start_us")
            return dict(c.execute(f"SELECT start_us, COUNT(*) FROM analytics_activity WHERE period = ? AND {where} "
                                  "GROUP BY start_us", [q.by, *params]).fetchall())
        where, params = _where(q, column="day_us")  # (model, day, user): one row per name used that day
        return dict(c.execute(f"SELECT b, COUNT(*) FROM (SELECT DISTINCT {bucket_sql.replace('hour_us', 'day_us')} "
                              f"AS b, user_id FROM analytics_daily WHERE {where}) AS d GROUP BY b", params).fetchall())
    table, where, params = _summed(c, q, "rollup")
    return dict(c.execute(f"SELECT {bucket_sql} AS b, COUNT(DISTINCT user_id) FROM {table} "
                          f"WHERE {where} GROUP BY b", params).fetchall())


def _total_users(c: Any, q: StatsQuery, per_bucket: dict[int, int]) -> int:
    """Distinct users over the whole range. Unfiltered and open on one side, the ``users``
    table answers from each user's first and last event (a user is active since ``since``
    exactly when their last event is); otherwise one more pass over the hourly users."""
    if len(per_bucket) <= 1:
        return sum(per_bucket.values())
    if q.user is None and q.model is None and q.event is None and (q.since_us is None or q.until_us is None):
        if q.since_us is not None:
            return c.execute("SELECT COUNT(*) FROM users WHERE last_us >= ?",
                             (q.since_us - q.since_us % HOUR_US,)).fetchone()[0]
        if q.until_us is not None:
            return c.execute("SELECT COUNT(*) FROM users WHERE first_us < ?", (_ceil_hour(q.until_us),)).fetchone()[0]
        return c.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    if q.model is not None and q.user is None and q.event is None and q.since_us is None and q.until_us is None:
        return c.execute("SELECT COUNT(DISTINCT user_id) FROM analytics_daily WHERE model = ?", (q.model,)).fetchone()[0]
    return _users(c, q, "1").get(1, 0)


def _latencies(c: Any, q: StatsQuery, bucket_sql: str, by_model: bool,
               daily: bool = False) -> dict[int, dict[str, Hist]]:
    """Latency histograms per bucket and model: exact values from the user's events, else the
    log bins of ``latency_hist`` (whole days or weeks: ``analytics_latency``, the same bins
    per day: summing the hours' bins of 30 days took 30 times as long)."""
    table, where, params = _summed(c, q, "latency_hist")
    model, group = ("model", "b, model, bin") if by_model else ("''", "b, bin")  # split only when asked
    if q.user is not None:
        sql = (f"SELECT {bucket_sql}, model, latency, 1, latency FROM {table} "
               f"WHERE {where} AND kind = 'llm' AND latency IS NOT NULL")
    elif daily:
        where, params = _where(q, column="day_us")
        sql = (f"SELECT {bucket_sql.replace('hour_us', 'day_us')} AS b, {model}, bin, SUM(n), SUM(total) "
               f"FROM analytics_latency WHERE {where} GROUP BY {group}")
    else:
        sql = f"SELECT {bucket_sql} AS b, {model}, bin, SUM(n), SUM(total) FROM {table} WHERE {where} GROUP BY {group}"
    found: dict[int, dict[str, Hist]] = {}
    for b, name, key, n, total in c.execute(sql, params):
        _add_to(found.setdefault(b, {}).setdefault(name, {}), key, n, total)
    return found


def _add_to(hist: Hist, key: float, n: int, total: float) -> None:
    counted = hist.setdefault(key, [0, 0.0])
    counted[0] += n
    counted[1] += total


def _merged(sums: list[tuple[Any, ...]], hists: list[Hist]) -> dict[str, Any]:
    """The counts of :func:`_empty` over several (bucket, model) sums and latency histograms."""
    merged = _empty()
    if sums:
        n, llm, tin, tout, cost, cost_n, errors = (sum(v[i] or 0 for v in sums) for i in range(7))
        merged |= {"events": n, "llm_events": llm, "input_tokens": tin, "output_tokens": tout,
                   "cost_usd": cost if cost_n else None, "errors": errors}
    latencies: Hist = {}
    for hist in hists:
        for key, (n, total) in hist.items():
            _add_to(latencies, key, n, total)
    if latencies:
        merged |= {"latency_p50": percentile(latencies, 0.50), "latency_p95": percentile(latencies, 0.95)}
    return merged


def percentile(hist: Hist, p: float) -> float | None:
    """Nearest rank: the mean of the bin holding the ``ceil(p * n)``-th smallest latency (one
    user's: that latency itself, each value its own bin)."""
    ordered = sorted(hist.items())
    count = sum(n for _, (n, _) in ordered)
    if not count:
        return None
    rank, seen = max(1, math.ceil(p * count)), 0
    for _, (n, total) in ordered:
        seen += n
        if seen >= rank:
            break
    return round(total / n, 6)


def _empty() -> dict[str, Any]:
    return {"events": 0, "llm_events": 0, "users": 0, "input_tokens": 0, "output_tokens": 0,
            "cost_usd": None, "errors": 0, "latency_p50": None, "latency_p95": None}


def _ceil_hour(us: int) -> int:
    return -(-us // HOUR_US) * HOUR_US


def _floor(us: int | None, by: str) -> int | None:
    if us is None:
        return None
    if by == "week":
        return us - (us - MONDAY_US) % WEEK_US
    return us - us % BUCKETS[by][1]


def _bucket_starts(first: int, last: int, by: str) -> Iterable[int]:
    width = BUCKETS[by][1]
    start = _floor(first, by)
    assert start is not None
    while start <= last:
        yield start
        start += width
        if (start - first) // width > MAX_BUCKETS:
            yield start  # one too many: the caller reports it
            return
