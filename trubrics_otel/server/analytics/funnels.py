"""Funnels: ordered steps within a window measured from the first step.

::

    funnel(db, AnalyticsQuery(), ["Sign up", "Create project", "Upgrade"], within_us=7 * DAY_US)
    # {"steps": [{"event": "Sign up", "users": N, "conversion": 1.0}, …], "within_s": …,
    #  "breakdown": [{"value": "gpt-4o", "steps": [N1, N2, …]}, …]}   # with breakdown=

A step matches an event by name, or an LLM event by its generation or prompt name. A user
counts at step k if they did step 1, then step 2 after it, … step k after step k-1 (strictly
later in time, then insertion order), all within ``within`` of the step-1 event; of their
step-1 events, the one that leads furthest (the earliest among equals) is theirs. From each
step-1 event, taking each next step's earliest occurrence reaches furthest, so one ordered
look-up per step and start is enough (over the user-time index). ``since``/``until`` bound the
step-1 events; later steps may fall after ``until``. A breakdown groups users by the model
(``model``) or a property (``property:NAME``) of their step-1 event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trubrics_otel.server.store.dialect import DAY_US, Reader
from trubrics_otel.server.analytics.query import AnalyticsError, AnalyticsQuery, range_where

MAX_STEPS = 10
_MATCH = "({a}.event = ? OR ({a}.kind = 'llm' AND {a}.prompt_event_name = ?))"


def funnel(db: Reader, q: AnalyticsQuery, steps: Sequence[str], within_us: int,
           breakdown: str | None = None) -> dict[str, Any]:
    steps = [s.strip() for s in steps]
    if not 2 <= len(steps) <= MAX_STEPS or not all(steps):
        raise AnalyticsError(f"a funnel needs 2 to {MAX_STEPS} non-empty steps, got {list(steps)!r}")
    if within_us <= 0:
        raise AnalyticsError("the window (--within) must be positive")
    params: list[Any] = [steps[0], steps[0]]
    where = [_MATCH.format(a="e"), *range_where(q, "e.ts_us", params)]
    for column, value in (("user_id", q.user), ("model", q.model)):
        if value is not None:
            where.append(f"e.{column} = ?")
            params.append(value)
    key = _breakdown(db, breakdown)
    chain = f"SELECT e.user_id AS u, e.id AS i1, e.ts_us AS t1, {key} AS b FROM events e WHERE {' AND '.join(where)}"
    for k, step in enumerate(steps[1:], start=2):
        # the daily table says (from an index alone) whether the user did the step on a day in
        # reach: most starts lead nowhere, and skip the walk over their events
        reach = (f"EXISTS (SELECT 1 FROM analytics_daily d WHERE d.event = ? AND d.user_id = s.u "
                 f"AND d.day_us >= s.t{k - 1} - s.t{k - 1} % {DAY_US} AND d.day_us <= s.t1 + ?)")
        nxt = (f"(SELECT n.id FROM events n WHERE n.user_id = s.u AND {_MATCH.format(a='n')} "
               f"AND (n.ts_us > s.t{k - 1} OR (n.ts_us = s.t{k - 1} AND n.id > s.i{k - 1})) "
               f"AND n.ts_us <= s.t1 + ? ORDER BY n.ts_us, n.id LIMIT 1)")
        carried = ", ".join(f"s.i{j}, s.t{j}" for j in range(1, k))
        chain = (f"SELECT s.u, {carried}, s.b, x.id AS i{k}, x.ts_us AS t{k} FROM ({chain}) AS s "
                 f"LEFT JOIN events x ON x.id = CASE WHEN s.i{k - 1} IS NOT NULL AND {reach} THEN {nxt} END")
        params += [step, within_us, step, step, within_us]
    depth = " + ".join(f"CASE WHEN s.i{k} IS NULL THEN 0 ELSE 1 END" for k in range(2, len(steps) + 1))
    # per user: the deepest start, the earliest among equals (by time, then id)
    ranked = (f"SELECT s.u, s.b, 1 + {depth} AS d, ROW_NUMBER() OVER (PARTITION BY s.u "
              f"ORDER BY 1 + {depth} DESC, s.t1, s.i1) AS r FROM ({chain}) AS s")
    rows = db.rows(f"SELECT b, d, COUNT(*) FROM ({ranked}) AS p WHERE r = 1 GROUP BY b, d", params)
    totals = [0] * len(steps)
    groups: dict[Any, list[int]] = {}
    for value, reached, users in rows:
        for k in range(reached):
            totals[k] += users
            groups.setdefault(value, [0] * len(steps))[k] += users
    result: dict[str, Any] = {
        "within_s": within_us / 1e6,
        "steps": [{"event": s, "users": n, "conversion": round(n / totals[0], 6) if totals[0] else None,
                   "from_previous": round(n / totals[k - 1], 6) if k and totals[k - 1] else None}
                  for k, (s, n) in enumerate(zip(steps, totals))],
    }
    if breakdown:
        result["breakdown_by"] = breakdown
        result["breakdown"] = [{"value": "(none)" if v is None else str(v), "steps": counts}
                               for v, counts in sorted(groups.items(), key=lambda kv: (-kv[1][0], str(kv[0])))]
    return result


def _breakdown(db: Reader, breakdown: str | None) -> str:
    if not breakdown:
        return "NULL"
    if breakdown == "model":
        return "e.model"
    name = breakdown.removeprefix("property:")
    if breakdown.startswith("property:") and name and all(c.isalnum() or c in "_-.$ " for c in name):
        return db.dialect.json_text("e.properties", name)
    raise AnalyticsError(f"breakdown must be 'model' or 'property:NAME' (letters, digits, _-.$), got {breakdown!r}")
