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
look-up per step and start is enough. ``since``/``until`` bound the step-1 events; later steps
may fall after ``until``. A breakdown groups users by the model (``model``) or a property
(``property:NAME``) of their step-1 event.

Why it is fast: ``analytics_steps`` (kept on insert) holds every event under each name a step
can match, keyed by (name, user, time, id), with its model. The starts are one range of it,
and each look-up is a seek into one user's occurrences of one name: a few small pages, never
the events table (read only for a breakdown by property: the winning start's row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trubrics_otel.server.analytics.query import AnalyticsError, AnalyticsQuery, range_where
from trubrics_otel.server.store.dialect import Reader

MAX_STEPS = 10


def funnel(db: Reader, q: AnalyticsQuery, steps: Sequence[str], within_us: int,
           breakdown: str | None = None) -> dict[str, Any]:
    """Users reaching each of ``steps`` in order within ``within_us`` of their first step, with
    the conversion from the first and from the previous step; by ``model`` or ``property:NAME``
    of the first step's event when ``breakdown`` is given."""
    steps = [s.strip() for s in steps]
    if not 2 <= len(steps) <= MAX_STEPS or not all(steps):
        raise AnalyticsError(f"a funnel needs 2 to {MAX_STEPS} non-empty steps, got {list(steps)!r}")
    if within_us <= 0:
        raise AnalyticsError("the window (--within) must be positive")
    key = _breakdown(db, breakdown)
    rows = db.rows(*_reached(steps, within_us, q, key))
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


def _reached(steps: Sequence[str], within_us: int, q: AnalyticsQuery, key: str | None) -> tuple[str, list[Any]]:
    """SQL counting users by (breakdown value, how many steps their best start reached)."""
    depth = "1 + " + " + ".join(f"CASE WHEN s.i{k} IS NULL THEN 0 ELSE 1 END" for k in range(2, len(steps) + 1))
    if key is None:  # no breakdown: each user's deepest start is enough
        chain, params = _chain(steps, within_us, q, "NULL")
        return (f"SELECT NULL, d, COUNT(*) FROM (SELECT s.u, MAX({depth}) AS d FROM ({chain}) AS s "
                f"GROUP BY s.u) AS p GROUP BY d"), params
    # a user with one start: its value; with several, the deepest, the earliest among equals (by
    # time, then id). Ranking only those users keeps the (slow) window off most rows. A
    # property is read from the events table for the winning start only.
    model = key == "a.model"
    one, one_params = _chain(steps, within_us, q, key if model else f"(SELECT {key} FROM events e WHERE e.id = a.id)",
                             several=False)
    many, many_params = _chain(steps, within_us, q, key if model else "NULL", several=True)
    value = "p.b" if model else f"(SELECT {key} FROM events e WHERE e.id = p.i1)"
    ranked = (f"SELECT s.i1, s.b, {depth} AS d, ROW_NUMBER() OVER (PARTITION BY s.u "
              f"ORDER BY {depth} DESC, s.t1, s.i1) AS r FROM ({many}) AS s")
    return (f"SELECT b, d, COUNT(*) FROM (SELECT s.b, {depth} AS d FROM ({one}) AS s UNION ALL "
            f"SELECT {value}, d FROM ({ranked}) AS p WHERE r = 1) AS w GROUP BY b, d"), [*one_params, *many_params]


_FENCE = " LIMIT 9223372036854775807 OFFSET 0"
"""Keeps a level of the chain a level on both engines (no flattening into its parent): each
look-up runs once per row, not once per mention of its column above. Joins to the events
table would let PostgreSQL hash all of it, hence scalar look-ups throughout."""


def _chain(steps: Sequence[str], within_us: int, q: AnalyticsQuery, value: str,
           several: bool | None = None) -> tuple[str, list[Any]]:
    """SQL of every start (user ``u``, id ``i1``, time ``t1``, ``b``: ``value`` of its row ``a``) with the
    id of each next step it reaches (``i2`` …, NULL once one is missed). ``several``: only the
    starts of users with (True) or without (False) another start."""
    params: list[Any] = [steps[0]]
    where = ["a.event = ?", *range_where(q, "a.ts_us", params)]
    if q.user is not None:
        where.append("a.user_id = ?")
        params.append(q.user)
    if q.model is not None:
        where.append("a.model = ?")
        params.append(q.model)
    if several is not None:
        other = ["o.event = a.event", "o.user_id = a.user_id", "o.id <> a.id", *range_where(q, "o.ts_us", params)]
        if q.model is not None:
            other.append("o.model = ?")
            params.append(q.model)
        where.append(f"{'' if several else 'NOT '}EXISTS (SELECT 1 FROM analytics_steps o WHERE {' AND '.join(other)})")
    chain = f"SELECT a.user_id AS u, a.id AS i1, a.ts_us AS t1, {value} AS b FROM analytics_steps a WHERE {' AND '.join(where)}"
    for k, step in enumerate(steps[1:], start=2):
        # the earliest occurrence after step k-1 (time, then id) within the window, or NULL
        chain = (f"SELECT s.*, CASE WHEN s.i{k - 1} IS NOT NULL THEN (SELECT n.id FROM analytics_steps n "
                 f"WHERE n.event = ? AND n.user_id = s.u AND (n.ts_us, n.id) > (s.t{k - 1}, s.i{k - 1}) "
                 f"AND n.ts_us <= s.t1 + ? ORDER BY n.ts_us, n.id LIMIT 1) END AS i{k} FROM ({chain}) AS s{_FENCE}")
        params = [step, within_us, *params]
        if k < len(steps):  # its time bounds the next step: among the user's few occurrences
            chain = (f"SELECT s.*, CASE WHEN s.i{k} IS NOT NULL THEN (SELECT n.ts_us FROM analytics_steps n "
                     f"WHERE n.event = ? AND n.user_id = s.u AND n.id = s.i{k}) END AS t{k} FROM ({chain}) AS s{_FENCE}")
            params = [step, *params]
    return chain, params


def _breakdown(db: Reader, breakdown: str | None) -> str | None:
    if not breakdown:
        return None
    if breakdown == "model":
        return "a.model"
    name = breakdown.removeprefix("property:")
    if breakdown.startswith("property:") and name and all(c.isalnum() or c in "_-.$ " for c in name):
        return db.dialect.json_text("e.properties", name)
    raise AnalyticsError(f"breakdown must be 'model' or 'property:NAME' (letters, digits, _-.$), got {breakdown!r}")
